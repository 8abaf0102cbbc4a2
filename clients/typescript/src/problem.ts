// Errors of the client: every non-2xx answer becomes a ResponseError, and a ProblemError
// when its body is RFC 9457 problem details (application/problem+json), as segmentd sends.
import type { components } from "./generated/schema.js";

export type Problem = components["schemas"]["Problem"];
export type ProblemItem = components["schemas"]["ProblemItem"];

/** An answer outside 2xx. `body` is the parsed JSON body, or the text when it is not JSON. */
export class ResponseError extends Error {
  readonly status: number;
  readonly response: Response;
  readonly body: unknown;

  constructor(message: string, response: Response, body: unknown) {
    super(message);
    this.name = "ResponseError";
    this.status = response.status;
    this.response = response;
    this.body = body;
  }
}

/**
 * A problem details answer (RFC 9457) with segmentd's members: the stable `code`, the
 * `requestId`, and for validation failures every problem at its JSON Pointer in `errors`.
 */
export class ProblemError extends ResponseError {
  readonly type: string;
  readonly title: string;
  readonly detail: string;
  readonly code: string;
  readonly requestId: string;
  readonly errors: ProblemItem[];
  /** true when the server listed only the first 50 problems */
  readonly errorsTruncated: boolean;
  /** seconds from `Retry-After` (503 busy answers), or undefined */
  readonly retryAfter: number | undefined;
  readonly problem: Problem;

  constructor(response: Response, problem: Problem) {
    super(`${problem.status} ${problem.code}: ${problem.detail}`, response, problem);
    this.name = "ProblemError";
    this.problem = problem;
    this.type = problem.type;
    this.title = problem.title;
    this.detail = problem.detail;
    this.code = problem.code;
    this.requestId = problem.request_id;
    this.errors = problem.errors ?? [];
    this.errorsTruncated = problem.errors_truncated === true;
    const retry = response.headers.get("Retry-After");
    this.retryAfter = retry !== null && /^\d+$/.test(retry) ? Number(retry) : undefined;
  }

  /** The JSON Pointers of `errors`, in the server's order. */
  get pointers(): string[] {
    return this.errors.map((e) => e.pointer);
  }
}

export function isProblem(value: unknown): value is Problem {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.type === "string" && typeof v.title === "string" &&
    typeof v.status === "number" && typeof v.code === "string" && typeof v.detail === "string";
}

/** The error for a non-2xx `response` whose body openapi-fetch already read into `body`. */
export function responseError(response: Response, body: unknown): ResponseError {
  const type = response.headers.get("Content-Type") ?? "";
  if (type.startsWith("application/problem+json") && isProblem(body)) {
    return new ProblemError(response, body);
  }
  return new ResponseError(`${response.status} ${response.statusText} (${type || "no body"})`,
    response, body);
}
