// The client: openapi-fetch over the generated `paths` (every operation, typed), plus the
// helpers the generator cannot express — cursor pages, If-Match with one retry on 412, the
// bulk envelope, NDJSON imports with progress polling, and the evaluation calls.
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./generated/schema.js";
import { ProblemError, ResponseError, responseError } from "./problem.js";

export type Schemas = components["schemas"];
export type AudienceSegment = Schemas["AudienceSegment"];
export type V1Segment = Schemas["V1Segment"];
export type Device = Schemas["Device"];
export type DeviceInput = Schemas["DeviceInput"];
export type DeviceImport = Schemas["DeviceImport"];
export type SegmentCount = Schemas["SegmentCount"];
export type SegmentPreview = Schemas["SegmentPreview"];
export type SegmentMembership = Schemas["SegmentMembership"];
export type SegmentRevision = Schemas["SegmentRevision"];
export type BulkError = Schemas["BulkError"];

/** `audiences` is `/audiences/segments`, `v1` is `/v1/segments`. */
export type Dialect = "audiences" | "v1";

export interface SegmentdOptions {
  /** e.g. `http://127.0.0.1:8080` */
  baseUrl: string;
  /** a JWT, or a function returning one (called for every request, so it may refresh) */
  token?: string | (() => string | Promise<string>);
  /** a fetch to use instead of globalThis.fetch (tests record traffic through it) */
  fetch?: (input: Request) => Promise<Response>;
  /** headers sent with every request */
  headers?: Record<string, string>;
}

/** A page of a list: the shape of every `next_cursor` answer. */
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** A representation with the `ETag` it was read with. */
export interface Tagged<T> {
  value: T;
  etag: string;
}

/**
 * Yields every item of every page, asking for the next page with the previous page's
 * `next_cursor` until it is null. `fetchPage(undefined)` asks for the first page.
 */
export async function* paginate<T>(
  fetchPage: (cursor: string | undefined) => Promise<Page<T>>,
): AsyncGenerator<T, void, undefined> {
  let cursor: string | undefined;
  for (;;) {
    const page = await fetchPage(cursor);
    yield* page.items;
    if (page.next_cursor === null) return;
    cursor = page.next_cursor;
  }
}

/**
 * Reads a representation with its ETag, lets `write` send a change with `If-Match`, and
 * when the answer is 412 (someone changed it in between) reads it again and retries once.
 * A second 412, like any other error, is thrown.
 */
export async function withIfMatch<T, R>(
  read: () => Promise<Tagged<T>>,
  write: (current: T, etag: string) => Promise<R>,
): Promise<R> {
  const first = await read();
  try {
    return await write(first.value, first.etag);
  } catch (e) {
    if (!(e instanceof ProblemError) || e.status !== 412) throw e;
  }
  const again = await read();
  return write(again.value, again.etag);
}

type FetchResult<T> = { data?: T; error?: unknown; response: Response };

/** The data of a 2xx answer, or the typed error of any other. */
async function ok<T>(call: Promise<FetchResult<T>>): Promise<{ data: T; response: Response }> {
  const { data, error, response } = await call;
  if (!response.ok || error !== undefined) throw responseError(response, error);
  return { data: data as T, response };
}

/** The data of a 2xx answer with its `ETag`, or the typed error of any other answer. */
async function tagged<T>(call: Promise<FetchResult<T>>): Promise<Tagged<T>> {
  const { data, response } = await ok(call);
  const etag = response.headers.get("ETag");
  if (etag === null) throw new ResponseError("the answer has no ETag", response, undefined);
  return { value: data, etag };
}

// ------------------------------------------------------------------ the bulk envelope

/** One request item's outcome, in request order. */
export type BulkItemResult<T> =
  | { index: number; ok: true; value: T }
  | { index: number; ok: false; errors: BulkError[] }
  /** devices: a later item of the request names the same id and is applied instead */
  | { index: number; ok: false; superseded: true; warnings: BulkWarningAny[] };

export type BulkWarningAny =
  | Schemas["BulkWarning"]
  | Schemas["DeviceBulkWarning"];

/**
 * A bulk answer as segmentd sends it (`data`, `errors`, `warnings`), with `refused` true
 * when `atomic=true` refused the request (422: nothing stored), and `results`, one per
 * request item in request order. `data` holds the applied items in request order, so the
 * n-th item without an error or `superseded` warning is the n-th element of `data`. When
 * refused, an item without errors of its own is `{ok: false, errors: []}`: not stored either.
 */
export interface BulkOutcome<T> {
  data: T[];
  errors: BulkError[];
  warnings: BulkWarningAny[];
  refused: boolean;
  results: BulkItemResult<T>[];
}

/** The request item an error or warning points at (`/data/<index>/…`), or -1. */
export function bulkItemIndex(pointer: string): number {
  const m = /^\/data\/(\d+)(?:\/|$)/.exec(pointer);
  return m ? Number(m[1]) : -1;
}

function bulkOutcome<T>(
  count: number,
  env: { data: T[]; errors: BulkError[]; warnings: BulkWarningAny[] },
  refused: boolean,
): BulkOutcome<T> {
  const errors = new Map<number, BulkError[]>();
  for (const e of env.errors) {
    const i = bulkItemIndex(e.source.pointer);
    errors.set(i, [...(errors.get(i) ?? []), e]);
  }
  const superseded = new Map<number, BulkWarningAny[]>();
  for (const w of env.warnings) {
    if (w.code !== "superseded") continue;
    const i = bulkItemIndex(w.source.pointer);
    superseded.set(i, [...(superseded.get(i) ?? []), w]);
  }
  const results: BulkItemResult<T>[] = [];
  let next = 0;
  for (let index = 0; index < count; index++) {
    const errs = errors.get(index);
    const sup = superseded.get(index);
    if (errs) results.push({ index, ok: false, errors: errs });
    else if (sup) results.push({ index, ok: false, superseded: true, warnings: sup });
    else if (refused) results.push({ index, ok: false, errors: [] }); // atomic: not stored either
    else results.push({ index, ok: true, value: env.data[next++] as T });
  }
  return { ...env, refused, results };
}

/**
 * The envelope of a bulk call: 200, or 422 `application/json` when `atomic=true` refused
 * it (the envelope with every error). A 422 problem (the body as a whole was refused)
 * and every other status are thrown.
 */
async function bulk<T>(
  count: number,
  call: Promise<FetchResult<unknown>>,
): Promise<BulkOutcome<T>> {
  const { data, error, response } = await call;
  type Env = { data: T[]; errors: BulkError[]; warnings: BulkWarningAny[] };
  if (response.ok) return bulkOutcome(count, data as Env, false);
  const type = response.headers.get("Content-Type") ?? "";
  if (response.status === 422 && type.startsWith("application/json")) {
    return bulkOutcome(count, error as Env, true);
  }
  throw responseError(response, error);
}

/** `?atomic=true` when asked for (the spec's parameter is the string "true" or "false"). */
function atomicQuery(opts: { atomic?: boolean }): { query: { atomic?: "true" } } {
  return { query: opts.atomic ? { atomic: "true" } : {} };
}

// ------------------------------------------------------------------ imports

export interface WaitOptions {
  /** milliseconds between polls (default 250) */
  intervalMs?: number;
  /** give up (throw) after this many milliseconds (default: never) */
  timeoutMs?: number;
  /** called with every status read, the last one included */
  onProgress?: (status: DeviceImport) => void;
  signal?: AbortSignal;
}

/** An NDJSON body: text or bytes as they are, or devices written one a line. */
export type NdjsonBody = string | Uint8Array | Blob | Iterable<DeviceInput>;

function ndjson(body: NdjsonBody): string | Uint8Array | Blob {
  if (typeof body === "string" || body instanceof Uint8Array || body instanceof Blob) return body;
  let text = "";
  for (const device of body) text += JSON.stringify(device) + "\n";
  return text;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(t); reject(signal.reason); }, { once: true });
  });

// ------------------------------------------------------------------ NDJSON lines

/**
 * The non-blank lines of a stream. A caller that stops early cancels the stream, which
 * closes the connection: the server ends the export and frees its evaluation session.
 */
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  const reader = stream.getReader();
  let rest = "";
  let finished = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) { finished = true; break; }
      rest += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = rest.indexOf("\n")) >= 0) {
        const line = rest.slice(0, nl).trim();
        rest = rest.slice(nl + 1);
        if (line !== "") yield line;
      }
    }
    rest += decoder.decode();
    if (rest.trim() !== "") yield rest.trim();
  } finally {
    if (!finished) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}

// ------------------------------------------------------------------ the client

export type SegmentdApi = Client<paths>;

export interface SegmentdClient {
  /** every operation of openapi.yaml, typed: `api.GET("/v1/devices/{id}", …)` */
  readonly api: SegmentdApi;
}

/** The generated client with the token middleware; `segmentd()` wraps it with the helpers. */
export function createApi(options: SegmentdOptions): SegmentdApi {
  const api = createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    ...(options.fetch ? { fetch: options.fetch } : {}),
    ...(options.headers ? { headers: options.headers } : {}),
  });
  const token = options.token;
  if (token !== undefined) {
    api.use({
      async onRequest({ request }) {
        if (!request.headers.has("Authorization")) {
          const t = typeof token === "function" ? await token() : token;
          request.headers.set("Authorization", `Bearer ${t}`);
        }
        return request;
      },
    });
  }
  return api;
}

export function segmentd(options: SegmentdOptions): Segmentd {
  return new Segmentd(createApi(options));
}

export class Segmentd implements SegmentdClient {
  constructor(readonly api: SegmentdApi) {}

  // ---------------------------------------------------------------- pages

  /** Every audience segment matching `query`, newest first, across pages. */
  audienceSegments(query: Omit<NonNullable<paths["/audiences/segments"]["get"]["parameters"]["query"]>, "cursor"> = {}) {
    return paginate<AudienceSegment>(async (cursor) => (await ok(this.api.GET("/audiences/segments", {
      params: { query: { ...query, ...(cursor ? { cursor } : {}) } },
    }))).data);
  }

  /** Every v1 segment matching `query`, newest first, across pages. */
  v1Segments(query: Omit<NonNullable<paths["/v1/segments"]["get"]["parameters"]["query"]>, "cursor"> = {}) {
    return paginate<V1Segment>(async (cursor) => (await ok(this.api.GET("/v1/segments", {
      params: { query: { ...query, ...(cursor ? { cursor } : {}) } },
    }))).data);
  }

  /** Every device by `updatedAt` then id, oldest change first (for sync). */
  devices(query: Omit<NonNullable<paths["/v1/devices"]["get"]["parameters"]["query"]>, "cursor"> = {}) {
    return paginate<Device>(async (cursor) => (await ok(this.api.GET("/v1/devices", {
      params: { query: { ...query, ...(cursor ? { cursor } : {}) } },
    }))).data);
  }

  /** Every import of the tenant, newest first. */
  imports(query: { limit?: number } = {}) {
    return paginate<DeviceImport>(async (cursor) => (await ok(this.api.GET("/v1/devices/imports", {
      params: { query: { ...query, ...(cursor ? { cursor } : {}) } },
    }))).data);
  }

  // ---------------------------------------------------------------- creates

  /** Creates an audience segment; resolves to it with its ETag. */
  createAudienceSegment(body: Schemas["AudienceSegmentCreate"]): Promise<Tagged<AudienceSegment>> {
    return tagged(this.api.POST("/audiences/segments", { body }));
  }

  /** Creates a v1 segment; resolves to it (with its `warnings`, if any) and its ETag. */
  async createV1Segment(body: Schemas["V1SegmentCreate"]): Promise<Tagged<Schemas["V1SegmentWithWarnings"]>> {
    // Accept: application/json asks for the segment, not the bare id (text/plain)
    const created = await tagged(this.api.POST("/v1/segments", {
      body, headers: { Accept: "application/json" },
    }));
    return created as Tagged<Schemas["V1SegmentWithWarnings"]>;
  }

  // ---------------------------------------------------------------- reads with ETags

  getAudienceSegment(id: string): Promise<Tagged<AudienceSegment>> {
    return tagged(this.api.GET("/audiences/segments/{id}", { params: { path: { id } } }));
  }

  getV1Segment(id: string): Promise<Tagged<V1Segment>> {
    return tagged(this.api.GET("/v1/segments/{id}", { params: { path: { id } } }));
  }

  getDevice(id: string): Promise<Tagged<Device>> {
    return tagged(this.api.GET("/v1/devices/{id}", { params: { path: { id } } }));
  }

  // ---------------------------------------------------------------- If-Match changes

  /**
   * Reads the segment, sends `change(segment)` as a JSON Merge Patch with `If-Match`, and
   * on 412 reads it again and retries once. Resolves to the changed segment.
   */
  modifyAudienceSegment(id: string, change: (current: AudienceSegment) => Schemas["AudienceSegmentMergePatch"]) {
    return withIfMatch(() => this.getAudienceSegment(id), (current, etag) =>
      tagged(this.api.PATCH("/audiences/segments/{id}", {
        params: { path: { id }, header: { "If-Match": etag } },
        body: change(current),
        headers: { "Content-Type": "application/merge-patch+json" },
      })));
  }

  /** As modifyAudienceSegment, through `PATCH /v1/segments` (only the fields sent change). */
  modifyV1Segment(id: string, change: (current: V1Segment) => Omit<Schemas["V1SegmentPatch"], "id">) {
    return withIfMatch(() => this.getV1Segment(id), (current, etag) =>
      tagged(this.api.PATCH("/v1/segments", {
        params: { header: { "If-Match": etag } },
        body: { ...change(current), id },
      })));
  }

  /** As modifyAudienceSegment for a device (JSON Merge Patch). */
  modifyDevice(id: string, change: (current: Device) => Schemas["DeviceMergePatch"]) {
    return withIfMatch(() => this.getDevice(id), (current, etag) =>
      tagged(this.api.PATCH("/v1/devices/{id}", {
        params: { path: { id }, header: { "If-Match": etag } },
        body: change(current),
        headers: { "Content-Type": "application/merge-patch+json" },
      })));
  }

  /** Reads the device and stores `change(device)` whole with `PUT` and `If-Match`. */
  replaceDevice(id: string, change: (current: Device) => DeviceInput) {
    return withIfMatch(() => this.getDevice(id), (current, etag) =>
      tagged(this.api.PUT("/v1/devices/{id}", {
        params: { path: { id }, header: { "If-Match": etag } },
        body: change(current),
      })));
  }

  /** Sets a segment's end date (and optionally `extend`) with `If-Match`, retrying once on 412. */
  setEndDate(dialect: "audiences", id: string, body: Schemas["AudienceSegmentEndDate"]): Promise<Tagged<AudienceSegment>>;
  setEndDate(dialect: "v1", id: string, body: Schemas["V1SegmentEndDate"]): Promise<Tagged<V1Segment>>;
  setEndDate(dialect: Dialect, id: string, body: Schemas["AudienceSegmentEndDate"] | Schemas["V1SegmentEndDate"]) {
    if (dialect === "v1") {
      return withIfMatch(() => this.getV1Segment(id), (_current, etag) =>
        tagged(this.api.POST("/v1/segments/{id}/end-date", {
          params: { path: { id }, header: { "If-Match": etag } },
          body: body as Schemas["V1SegmentEndDate"],
        })));
    }
    return withIfMatch(() => this.getAudienceSegment(id), (_current, etag) =>
      tagged(this.api.POST("/audiences/segments/{id}/end-date", {
        params: { path: { id }, header: { "If-Match": etag } },
        body: body as Schemas["AudienceSegmentEndDate"],
      })));
  }

  // ---------------------------------------------------------------- bulk

  bulkCreate(dialect: "audiences", items: Schemas["AudienceSegmentCreate"][], opts?: { atomic?: boolean }): Promise<BulkOutcome<AudienceSegment>>;
  bulkCreate(dialect: "v1", items: Schemas["V1SegmentCreate"][], opts?: { atomic?: boolean }): Promise<BulkOutcome<V1Segment>>;
  bulkCreate(dialect: Dialect, items: unknown[], opts: { atomic?: boolean } = {}) {
    const query = atomicQuery(opts);
    return dialect === "v1"
      ? bulk<V1Segment>(items.length, this.api.POST("/v1/segments/bulk",
        { params: query, body: { data: items as Schemas["V1SegmentCreate"][] } }))
      : bulk<AudienceSegment>(items.length, this.api.POST("/audiences/segments/bulk",
        { params: query, body: { data: items as Schemas["AudienceSegmentCreate"][] } }));
  }

  bulkUpdate(dialect: "audiences", items: Schemas["AudienceSegmentReplace"][], opts?: { atomic?: boolean }): Promise<BulkOutcome<AudienceSegment>>;
  bulkUpdate(dialect: "v1", items: Schemas["V1SegmentPatch"][], opts?: { atomic?: boolean }): Promise<BulkOutcome<V1Segment>>;
  bulkUpdate(dialect: Dialect, items: unknown[], opts: { atomic?: boolean } = {}) {
    const query = atomicQuery(opts);
    return dialect === "v1"
      ? bulk<V1Segment>(items.length, this.api.PATCH("/v1/segments/bulk",
        { params: query, body: { data: items as Schemas["V1SegmentPatch"][] } }))
      : bulk<AudienceSegment>(items.length, this.api.PATCH("/audiences/segments/bulk",
        { params: query, body: { data: items as Schemas["AudienceSegmentReplace"][] } }));
  }

  /** Deletes segments by id; `data` of the outcome holds `{id}` of those deleted. */
  bulkDelete(dialect: Dialect, ids: string[], opts: { atomic?: boolean } = {}): Promise<BulkOutcome<{ id: string }>> {
    const query = atomicQuery(opts);
    const body = { data: ids.map((id) => ({ id })) };
    return dialect === "v1"
      ? bulk(ids.length, this.api.POST("/v1/segments/bulk-delete", { params: query, body }))
      : bulk(ids.length, this.api.POST("/audiences/segments/bulk-delete", { params: query, body }));
  }

  /** Creates or replaces devices whole; a repeated id: the last item wins, earlier ones are `superseded`. */
  bulkUpsertDevices(devices: Schemas["DeviceBulkItem"][], opts: { atomic?: boolean } = {}): Promise<BulkOutcome<Device>> {
    return bulk(devices.length, this.api.POST("/v1/devices/bulk", {
      params: atomicQuery(opts), body: { data: devices },
    }));
  }

  bulkDeleteDevices(ids: string[], opts: { atomic?: boolean } = {}): Promise<BulkOutcome<{ id: string }>> {
    return bulk(ids.length, this.api.POST("/v1/devices/bulk-delete", {
      params: atomicQuery(opts), body: { data: ids.map((id) => ({ id })) },
    }));
  }

  // ---------------------------------------------------------------- imports

  /** Sends an NDJSON body to `POST /v1/devices/imports`; resolves to the 202's status. */
  async startImport(body: NdjsonBody): Promise<DeviceImport> {
    const { data } = await ok(this.api.POST("/v1/devices/imports", {
      body: ndjson(body) as unknown as string,
      bodySerializer: (b: unknown) => b,
      headers: { "Content-Type": "application/x-ndjson" },
    }));
    return data;
  }

  async getImport(id: string): Promise<DeviceImport> {
    return (await ok(this.api.GET("/v1/devices/imports/{id}", { params: { path: { id } } }))).data;
  }

  /** Polls an import until it is `done` or `failed`; resolves to that last status. */
  async waitForImport(id: string, opts: WaitOptions = {}): Promise<DeviceImport> {
    const interval = opts.intervalMs ?? 250;
    const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
    for (;;) {
      const status = await this.getImport(id);
      opts.onProgress?.(status);
      if (status.status === "done" || status.status === "failed") return status;
      if (Date.now() + interval > deadline) {
        throw new Error(`import ${id} is still ${status.status} after ${opts.timeoutMs} ms`);
      }
      await sleep(interval, opts.signal);
    }
  }

  /**
   * Imports devices from NDJSON and waits for the merge: resolves to the final status,
   * `done` (`lines.invalid` counts skipped lines, `errors` lists the first 100) or
   * `failed` (with `failure`).
   */
  async importDevices(body: NdjsonBody, opts: WaitOptions = {}): Promise<DeviceImport> {
    const started = await this.startImport(body);
    opts.onProgress?.(started);
    if (started.status === "done" || started.status === "failed") return started;
    return this.waitForImport(started.id, opts);
  }

  /**
   * Every revision of a segment, newest first, page by page (`limit` per page): who changed it, when, and the RFC 6902
   * patch. Answers after the segment was deleted, until its revisions are purged.
   */
  history(dialect: Dialect, id: string, opts: { limit?: number } = {}) {
    return paginate<SegmentRevision>(async (cursor) => {
      const params = { path: { id }, query: { ...opts, ...(cursor ? { cursor } : {}) } };
      return (await ok(dialect === "v1"
        ? this.api.GET("/v1/segments/{id}/history", { params })
        : this.api.GET("/audiences/segments/{id}/history", { params }))).data;
    });
  }

  // ---------------------------------------------------------------- evaluation

  /** The exact member count. */
  count(dialect: Dialect, id: string): Promise<SegmentCount> {
    return this.countWith(dialect, id, "exact");
  }

  /** An estimated count with its `margin` (exact on small tables; see `precision`). */
  estimate(dialect: Dialect, id: string): Promise<SegmentCount> {
    return this.countWith(dialect, id, "estimate");
  }

  private async countWith(dialect: Dialect, id: string, precision: "exact" | "estimate") {
    const params = { path: { id }, query: { precision } };
    return (await ok(dialect === "v1"
      ? this.api.GET("/v1/segments/{id}/count", { params })
      : this.api.GET("/audiences/segments/{id}/count", { params }))).data;
  }

  /** The member device ids, in ascending byte order, page by page (`limit` per page). */
  members(dialect: Dialect, id: string, opts: { limit?: number } = {}) {
    return paginate<string>(async (cursor) => {
      const params = { path: { id }, query: { ...opts, ...(cursor ? { cursor } : {}) } };
      return (await ok(dialect === "v1"
        ? this.api.GET("/v1/segments/{id}/members", { params })
        : this.api.GET("/audiences/segments/{id}/members", { params }))).data as Page<string>;
    });
  }

  /**
   * Every member from one snapshot as NDJSON (`format=ndjson`): `{id}` objects (`fields: "ids"`, the default), or whole
   * devices with `fields: "all"`, read as the server streams them.
   */
  exportMembers(dialect: Dialect, id: string, opts: { fields: "all" }): AsyncGenerator<Device>;
  exportMembers(dialect: Dialect, id: string, opts?: { fields?: "ids" }): AsyncGenerator<{ id: string }>;
  async *exportMembers(dialect: Dialect, id: string, opts: { fields?: "ids" | "all" } = {}): AsyncGenerator<unknown> {
    const params = { path: { id }, query: { format: "ndjson" as const, ...(opts.fields ? { fields: opts.fields } : {}) } };
    const init = { params, parseAs: "stream" as const, headers: { Accept: "application/x-ndjson" } };
    const { data } = await ok<unknown>(dialect === "v1"
      ? this.api.GET("/v1/segments/{id}/members", init)
      : this.api.GET("/audiences/segments/{id}/members", init));
    const stream = data as ReadableStream<Uint8Array> | null;
    if (stream === null) return;
    for await (const line of lines(stream)) yield JSON.parse(line);
  }

  /** Whether one device is a member, and why. */
  async isMember(dialect: Dialect, id: string, deviceId: string): Promise<SegmentMembership> {
    const params = { path: { id, deviceId } };
    return (await ok(dialect === "v1"
      ? this.api.GET("/v1/segments/{id}/members/{deviceId}", { params })
      : this.api.GET("/audiences/segments/{id}/members/{deviceId}", { params }))).data;
  }

  /** Counts and samples a segment body without storing it. */
  preview(dialect: "audiences", body: Schemas["AudienceSegmentCreate"], opts?: { precision?: "exact" | "estimate" }): Promise<SegmentPreview>;
  preview(dialect: "v1", body: Schemas["V1SegmentCreate"], opts?: { precision?: "exact" | "estimate" }): Promise<SegmentPreview>;
  async preview(dialect: Dialect, body: unknown, opts: { precision?: "exact" | "estimate" } = {}) {
    const params = { query: opts.precision ? { precision: opts.precision } : {} };
    return (await ok(dialect === "v1"
      ? this.api.POST("/v1/segments/preview", { params, body: body as Schemas["V1SegmentCreate"] })
      : this.api.POST("/audiences/segments/preview", { params, body: body as Schemas["AudienceSegmentCreate"] }))).data;
  }

  /** Adds devices as explicit members (a member whatever the rule says). */
  addMembers(dialect: Dialect, id: string, ids: string[]) {
    return this.changeMembers(dialect, id, { operation: "add", ids });
  }

  /** Removes devices explicitly (never a member, whatever the rule says). */
  removeMembers(dialect: Dialect, id: string, ids: string[]) {
    return this.changeMembers(dialect, id, { operation: "remove", ids });
  }

  private async changeMembers(dialect: Dialect, id: string, body: Schemas["SegmentMembersChange"]) {
    const params = { path: { id } };
    return (await ok(dialect === "v1"
      ? this.api.PATCH("/v1/segments/{id}/members", { params, body })
      : this.api.PATCH("/audiences/segments/{id}/members", { params, body }))).data;
  }

  /** The active segments of both dialects the device is a member of. */
  async deviceSegments(deviceId: string): Promise<Schemas["DeviceSegments"]> {
    return (await ok(this.api.GET("/v1/devices/{id}/segments", { params: { path: { id: deviceId } } }))).data;
  }
}

/**
 * For calls made on `api` directly: `await unwrap(api.GET(…))` resolves to `{data, response}`
 * of a 2xx answer and throws a ProblemError (or ResponseError) for any other.
 */
export { ok as unwrap };
