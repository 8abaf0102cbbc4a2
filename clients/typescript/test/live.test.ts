// The client against a live segmentd (through Prism's validating proxy when SEGMENTD_URL
// points at one): every operation of openapi.yaml at least once, checked by comparing the
// spec's operation list with the method + path templates this suite sent; errors typed as
// problem details; and no response that Prism reports as violating the spec.
// Run by tests/client/test_ts_client.py (scripts/test-client), which sets the environment.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { parse } from "yaml";
import {
  ProblemError, ResponseError, paginate, responseError, segmentd, withIfMatch,
  type Device, type DeviceInput, type DeviceImport, type Schemas, type Segmentd,
} from "../src/index.js";

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (tests/client/test_ts_client.py sets it)`);
  return v;
}

const BASE = env("SEGMENTD_URL");
const TOKEN = env("SEGMENTD_TOKEN");
const READ_TOKEN = env("SEGMENTD_READ_TOKEN"); // segments:read only
const VIA_PRISM = process.env.SEGMENTD_VIA_PRISM === "1";

// ------------------------------------------------------------------ the spec's operations

interface Operation { key: string; method: string; template: string; rx: RegExp; public: boolean; spec: SpecOp }

type SpecResponse = { $ref?: string; content?: Record<string, unknown> };
type SpecParameter = { $ref?: string; name?: string; in?: string; example?: unknown; schema?: { enum?: unknown[]; const?: unknown } };
type SpecOp = { security?: unknown[]; parameters?: SpecParameter[]; responses?: Record<string, SpecResponse> };
const spec = parse(readFileSync(env("SEGMENTD_OPENAPI"), "utf8")) as {
  paths: Record<string, Record<string, SpecOp>>;
  components: { responses: Record<string, SpecResponse>; parameters: Record<string, SpecParameter> };
};
const METHODS = ["get", "put", "post", "patch", "delete", "head", "options", "trace"];
const operations: Operation[] = [];
for (const [template, item] of Object.entries(spec.paths)) {
  for (const m of METHODS) {
    const op = item[m];
    if (!op) continue;
    const rx = new RegExp("^" + template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{[^}]+\}/g, "[^/]+") + "$");
    operations.push({
      key: `${m.toUpperCase()} ${template}`, method: m.toUpperCase(), template, rx,
      public: Array.isArray(op.security) && op.security.length === 0, spec: op,
    });
  }
}
// a literal path wins over a templated one (/v1/devices/imports over /v1/devices/{id})
operations.sort((a, b) => (a.template.split("{").length - b.template.split("{").length));

function operationOf(method: string, pathname: string): Operation | undefined {
  return operations.find((o) => o.method === method && o.rx.test(pathname));
}

// ------------------------------------------------------------------ the recording fetch

const called = new Set<string>();
const unknownCalls: string[] = [];
const responseViolations: string[] = [];
const requestViolations: string[] = [];
let deliberate = 0; // > 0 while a test sends a request the spec does not allow, on purpose
let deliberateViolations = 0; // what Prism said about those: proof that its verdicts reach us

interface Violation { location?: string[]; severity?: string; code?: string | number; message?: string }

/**
 * Prism 5 matches a response's media type to the spec's ignoring the structured-syntax
 * suffix (wildcardMediaTypeMatch in @stoplight/prism-http: `application/problem+json` is
 * taken for `application/json`), so where one response declares both — the 422 of the bulk
 * routes: the atomic envelope or a problem — Prism checks a problem against the envelope's
 * schema, the first listed. True for exactly that case: the answer's media type has a
 * suffix and the spec lists, before it, another media type that Prism confuses with it.
 * Such a body is still checked: the client types it as a ProblemError (test "bulk …"),
 * and the black-box suite validates it against the right schema (segtest.check_against_spec).
 */
function prismConfusesMediaType(op: Operation | undefined, status: number, contentType: string): boolean {
  const sent = contentType.split(";")[0]!.trim().toLowerCase();
  const m = /^([^/]+)\/[^+]+\+(.+)$/.exec(sent);
  if (!op || !m) return false;
  let response = op.spec.responses?.[String(status)];
  if (response?.$ref) response = spec.components.responses[response.$ref.split("/").at(-1)!];
  const listed = Object.keys(response?.content ?? {});
  const before = listed.slice(0, listed.indexOf(sent));
  return listed.includes(sent) && before.some((t) => t === `${m[1]}/${m[2]}`);
}
const confusedByPrism: string[] = [];

async function recordingFetch(request: Request): Promise<Response> {
  const url = new URL(request.url);
  const op = operationOf(request.method, url.pathname);
  if (op) called.add(op.key);
  else unknownCalls.push(`${request.method} ${url.pathname}`);
  const response = await fetch(request);
  const header = response.headers.get("sl-violations");
  if (header) {
    const where = `${request.method} ${url.pathname}${url.search} → ${response.status}`;
    const confused = prismConfusesMediaType(op, response.status, response.headers.get("Content-Type") ?? "");
    if (confused) confusedByPrism.push(where);
    for (const v of JSON.parse(header) as Violation[]) {
      const line = `${where}: [${v.severity}] ${(v.location ?? []).join(".")}: ${v.message}`;
      if (v.location?.[0] === "response") {
        if (!(confused && v.location[1] === "body")) responseViolations.push(line);
      }
      else if (deliberate === 0) requestViolations.push(line);
      else deliberateViolations++;
    }
  }
  return response;
}

async function deliberately<T>(fn: () => Promise<T>): Promise<T> {
  deliberate++;
  try { return await fn(); } finally { deliberate--; }
}

const client: Segmentd = segmentd({ baseUrl: BASE, token: TOKEN, fetch: recordingFetch });
const reader: Segmentd = segmentd({ baseUrl: BASE, token: () => READ_TOKEN, fetch: recordingFetch });
const { api } = client;

/** Awaits `fn`, which must throw a ProblemError; returns it. */
async function problem(fn: () => Promise<unknown>, status: number, code: string): Promise<ProblemError> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof ProblemError, `expected a ProblemError, got ${String(e)}`);
    assert.ok(e instanceof ResponseError && e instanceof Error);
    assert.equal(e.status, status, e.message);
    assert.equal(e.code, code, e.message);
    assert.equal(e.problem.status, status);
    assert.equal(e.type, `https://segmentd.dev/problems/${code}`);
    assert.equal(typeof e.title, "string");
    assert.equal(typeof e.detail, "string");
    assert.match(e.requestId, /.+/);
    assert.equal(e.response.headers.get("Content-Type")?.split(";")[0], "application/problem+json");
    return e;
  }
  assert.fail(`expected ${status} ${code}, got no error`);
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const run = randomUUID().slice(0, 8);
const OWNER = randomUUID();
const dev = (n: number) => `ts-${run}-${n}`;
const device = (n: number, over: Partial<DeviceInput> = {}): DeviceInput & { id: string } =>
  ({ id: dev(n), country: "PL", language: "pol", type: "phone", tags: ["ts"], ...over });

// ------------------------------------------------------------------ public routes

/** A public GET operation's path with each `{name}` replaced by its parameter's example. */
function examplePath(op: Operation): string {
  return op.template.replace(/\{([^}]+)\}/g, (_all, name: string) => {
    const param = (op.spec.parameters ?? [])
      .map((p) => (p.$ref ? spec.components.parameters[p.$ref.split("/").at(-1)!] ?? p : p))
      .find((p) => p.in === "path" && p.name === name);
    const value = param?.example ?? param?.schema?.enum?.[0] ?? param?.schema?.const;
    assert.ok(value !== undefined, `${op.key}: give the path parameter ${name} an example`);
    return encodeURIComponent(String(value));
  });
}

test("public routes: every operation without security, read as text", async () => {
  // the generated paths type each of them; the loop also covers public routes added later
  for (const op of operations.filter((o) => o.public && o.method === "GET")) {
    const { data, response } = await api.GET(examplePath(op) as "/healthz", { parseAs: "text" });
    assert.equal(response.status, 200, op.key);
    assert.ok(typeof data === "string" && data.length > 0, op.key);
  }
  const { data } = await api.GET("/readyz");
  assert.equal(data?.status, "ready");
});

// ------------------------------------------------------------------ audience segments

test("audience segments: create, read with ETag, list by pages, replace, merge patch, end date, delete", async () => {
  const name = `ts aud ${run}`;
  const created = [];
  for (let i = 0; i < 3; i++) {
    const { data, error, response } = await api.POST("/audiences/segments", {
      body: { management_type: "selfmanaged", name, owner_id: OWNER, properties: { country: ["PL"] } },
    });
    assert.equal(error, undefined);
    assert.equal(response.status, 201);
    assert.ok(response.headers.get("ETag"));
    created.push(data!);
  }
  const listed = await collect(client.audienceSegments({ name, limit: 1 }));
  assert.deepEqual(listed.map((s) => s.id).sort(), created.map((s) => s.id).sort());

  const id = created[0]!.id;
  const tagged = await client.getAudienceSegment(id);
  assert.equal(tagged.value.name, name);

  // PATCH /audiences/segments replaces the fields sent, with If-Match
  const replaced = await api.PATCH("/audiences/segments", {
    params: { header: { "If-Match": tagged.etag } },
    body: { id, management_type: "selfmanaged", name: name + " replaced", owner_id: OWNER },
  });
  assert.equal(replaced.response.status, 200);
  assert.equal(replaced.data?.name, name + " replaced");

  let calls = 0;
  const patched = await client.modifyAudienceSegment(id, (current) => {
    calls++;
    return { description: `patched over ${current.description}` };
  });
  assert.equal(calls, 1);
  assert.equal(patched.value.description, "patched over null");

  // a stale ETag: the helper re-reads and succeeds on its second try
  const stale = await client.getAudienceSegment(id);
  await api.PATCH("/audiences/segments/{id}", {
    params: { path: { id } }, body: { description: "moved on" },
    headers: { "Content-Type": "application/merge-patch+json" },
  });
  let attempts = 0;
  const after412 = await withIfMatch(
    async () => (attempts === 0 ? stale : client.getAudienceSegment(id)),
    async (current, etag) => {
      attempts++;
      const { data, error, response } = await api.PATCH("/audiences/segments/{id}", {
        params: { path: { id }, header: { "If-Match": etag } },
        body: { description: `${current.description} + ${attempts}` },
        headers: { "Content-Type": "application/merge-patch+json" },
      });
      if (error !== undefined) throw responseError(response, error);
      return data;
    },
  );
  assert.equal(attempts, 2);
  assert.equal(after412.description, "moved on + 2");

  const ended = await client.setEndDate("audiences", id, { end_date: "2099-01-01T00:00:00Z", extend: false });
  assert.equal(Date.parse(ended.value.end_date!), Date.parse("2099-01-01T00:00:00Z"));

  for (const s of created) {
    const { value, etag } = await client.getAudienceSegment(s.id);
    const del = await api.DELETE("/audiences/segments/{id}", { params: { path: { id: value.id }, header: { "If-Match": etag } } });
    assert.equal(del.response.status, 204);
  }
  await problem(() => client.getAudienceSegment(id), 404, "not_found");
});

// ------------------------------------------------------------------ v1 segments

test("v1 segments: create, read, list by pages, update with If-Match, end date, delete", async () => {
  const name = `ts v1 ${run}`;
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const { value } = await client.createV1Segment({
      name, constraints: [{ type: "AND", constraints: [{ field: "country", relation: "==", value: "PL" }] }],
    });
    ids.push(value.id);
  }
  const listed = await collect(client.v1Segments({ name, limit: 2 }));
  assert.deepEqual(listed.map((s) => s.id).sort(), [...ids].sort());

  const id = ids[0]!;
  const changed = await client.modifyV1Segment(id, (current) => ({ description: `was ${current.description ?? "none"}` }));
  assert.equal(changed.value.description, "was none");
  const ended = await client.setEndDate("v1", id, { endDate: 4070908800000 });
  assert.equal(ended.value.endDate, 4070908800000);

  for (const sid of ids) {
    const { etag } = await client.getV1Segment(sid);
    const del = await api.DELETE("/v1/segments/{id}", { params: { path: { id: sid }, header: { "If-Match": etag } } });
    assert.equal(del.response.status, 204);
  }
});

// ------------------------------------------------------------------ devices

test("devices: PUT create and replace with If-Match, merge patch, sync pages, delete", async () => {
  const created = await api.PUT("/v1/devices/{id}", {
    params: { path: { id: dev(0) }, header: { "If-None-Match": "*" } },
    body: device(0),
  });
  assert.equal(created.response.status, 201);
  assert.equal(created.response.headers.get("ETag"), '"1"');

  const patched = await client.modifyDevice(dev(0), () => ({ tags: ["ts", "patched"] }));
  assert.deepEqual(patched.value.tags, ["ts", "patched"]);
  const replaced = await client.replaceDevice(dev(0), (d) => ({ ...d, sessionCount: 7 }));
  assert.equal(replaced.value.sessionCount, 7);
  assert.deepEqual(replaced.value.tags, ["ts", "patched"]);

  // a second device, then sync: both, oldest change first, one per page
  await api.PUT("/v1/devices/{id}", { params: { path: { id: dev(1) } }, body: device(1) });
  const since = patched.value.updatedAt - 1;
  const synced = (await collect(client.devices({ updated_since: since, limit: 1 })))
    .filter((d) => d.id.startsWith(`ts-${run}-`));
  assert.deepEqual(synced.map((d) => d.id), [dev(0), dev(1)]);

  const { etag } = await client.getDevice(dev(1));
  const del = await api.DELETE("/v1/devices/{id}", { params: { path: { id: dev(1) }, header: { "If-Match": etag } } });
  assert.equal(del.response.status, 204);
});

// ------------------------------------------------------------------ bulk

test("bulk on both dialects: per-item results and errors, atomic refusal", async () => {
  const good = { management_type: "selfmanaged" as const, name: `ts bulk ${run}`, owner_id: OWNER };
  // items the spec refuses, on purpose: the envelope reports them one by one
  const aud = await deliberately(() => client.bulkCreate("audiences", [good, { ...good, owner_id: "not-a-uuid" }, good]));
  assert.equal(aud.refused, false);
  assert.equal(aud.data.length, 2);
  assert.deepEqual(aud.results.map((r) => r.ok), [true, false, true]);
  const bad = aud.results[1]!;
  assert.ok(!bad.ok && "errors" in bad && bad.errors[0]!.source.pointer === "/data/1/owner_id");
  const [a0, a2] = [aud.results[0]!, aud.results[2]!];
  assert.ok(a0.ok && a2.ok);

  const audUpd = await client.bulkUpdate("audiences", [
    { ...good, id: a0.value.id, name: "ts bulk renamed" },
    { ...good, id: randomUUID() },
  ]);
  assert.deepEqual(audUpd.results.map((r) => r.ok), [true, false]);
  assert.equal(audUpd.errors[0]?.code, "not_found");

  const atomic = await deliberately(() => client.bulkCreate("audiences", [good, { ...good, name: "" }], { atomic: true }));
  assert.equal(atomic.refused, true);
  assert.equal(atomic.data.length, 0);
  assert.deepEqual(atomic.results.map((r) => (r.ok ? -1 : "errors" in r ? r.errors.length : -2)), [0, 1]);

  const audDel = await client.bulkDelete("audiences", [a0.value.id, a2.value.id, randomUUID()]);
  assert.deepEqual(audDel.results.map((r) => r.ok), [true, true, false]);

  const rule: Schemas["V1ConstraintGroupsInput"] = [{ type: "AND", constraints: [{ field: "country", relation: "==", value: "DE" }] }];
  const v1 = await deliberately(() => client.bulkCreate("v1", [{ name: `ts v1 bulk ${run}`, constraints: rule }, { name: "", constraints: rule }]));
  assert.deepEqual(v1.results.map((r) => r.ok), [true, false]);
  const v1first = v1.results[0]!;
  assert.ok(v1first.ok);
  const v1Upd = await client.bulkUpdate("v1", [{ id: v1first.value.id, name: "ts v1 bulk renamed" }]);
  assert.equal(v1Upd.data[0]?.name, "ts v1 bulk renamed");
  const v1Del = await client.bulkDelete("v1", [v1first.value.id]);
  assert.deepEqual(v1Del.data, [{ id: v1first.value.id }]);

  // devices: the last item naming an id wins, the earlier one is superseded
  const up = await deliberately(() => client.bulkUpsertDevices([
    device(10, { sessionCount: 1 }), device(11, { country: "pl" }), device(10, { sessionCount: 2 }), device(12),
  ]));
  assert.deepEqual(up.results.map((r) => (r.ok ? "ok" : "superseded" in r ? "superseded" : "error")),
    ["superseded", "error", "ok", "ok"]);
  const last = up.results[2]!;
  assert.ok(last.ok && last.value.id === dev(10) && last.value.sessionCount === 2);
  const gone = await client.bulkDeleteDevices([dev(12), `ts-${run}-nobody`]);
  assert.deepEqual(gone.results.map((r) => r.ok), [true, false]);
  assert.equal(gone.errors[0]?.code, "not_found");

  // a body refused as a whole is a problem, not an envelope
  const whole = await deliberately(() => problem(() => client.bulkCreate("v1", [] as Parameters<Segmentd["createV1Segment"]>[0][]), 422, "validation_failed"));
  assert.ok(whole.pointers.length > 0);
});

// ------------------------------------------------------------------ imports

test("NDJSON import with progress polling, then the list of imports", async () => {
  const devices: DeviceInput[] = [];
  for (let i = 20; i < 30; i++) devices.push(device(i, { country: i % 2 ? "PL" : "DE" }));
  const seen: DeviceImport["status"][] = [];
  const lines = devices.map((d) => JSON.stringify(d)).join("\n") + "\n" + '{"id":"bad","country":"pl"}\n';
  const done = await client.importDevices(lines, { intervalMs: 50, timeoutMs: 30_000, onProgress: (s) => seen.push(s.status) });
  assert.equal(done.status, "done");
  assert.deepEqual(done.lines, { received: 11, upserted: 10, invalid: 1 });
  assert.equal(done.errors[0]?.line, 11);
  assert.equal(done.errors[0]?.pointer, "/country");
  assert.equal(seen.at(-1), "done");

  // devices as objects, and the poll by hand
  const started = await client.startImport([device(30), device(31)]);
  const finished = await client.waitForImport(started.id, { intervalMs: 50, timeoutMs: 30_000 });
  assert.equal(finished.lines.upserted, 2);

  const mine = (await collect(client.imports({ limit: 1 }))).map((i) => i.id);
  assert.ok(mine.includes(done.id) && mine.includes(started.id));
  assert.ok(mine.indexOf(started.id) < mine.indexOf(done.id), "newest first");
});

// ------------------------------------------------------------------ evaluation

test("evaluation on both dialects: count, estimate, members, export, check, preview, explicit members, device → segments", async () => {
  // this run's devices with country PL and tag "ts": 0 and 10 (PUT and bulk above), the odd
  // ones of 20..29 and 30, 31 (imported above)
  const pl = [0, 10, 21, 23, 25, 27, 29, 30, 31].map(dev).sort();
  const v1id = (await client.createV1Segment({
    name: `ts eval ${run}`, constraints: [{ type: "AND", constraints: [
      { field: "country", relation: "==", value: "PL" }, { field: "tags", relation: "contains", value: "ts" },
    ] }],
  })).value.id;
  const audId = (await client.createAudienceSegment({
    management_type: "selfmanaged", name: `ts eval ${run}`, owner_id: OWNER, properties: { run: [run] },
  })).value.id;

  // only this run's devices carry tags "ts" and country PL, but earlier runs' devices may
  // too: compare on this run's ids
  const mine = (ids: string[]) => ids.filter((i) => i.startsWith(`ts-${run}-`));
  const members = mine(await collect(client.members("v1", v1id, { limit: 2 })));
  assert.deepEqual(members, pl);
  const exported = mine((await collect(client.exportMembers("v1", v1id))).map((m) => m.id));
  assert.deepEqual(exported, members);
  const whole = await collect(client.exportMembers("v1", v1id, { fields: "all" }));
  assert.ok(whole.some((d: Device) => d.id === dev(21) && d.country === "PL"));
  for await (const first of client.exportMembers("v1", v1id)) { // stopping early cancels the stream
    assert.equal(typeof first.id, "string");
    break;
  }

  const count = await client.count("v1", v1id);
  assert.equal(count.precision, "exact");
  assert.ok(count.count >= members.length);
  const estimate = await client.estimate("v1", v1id);
  assert.ok(estimate.precision === "exact" || estimate.precision === "estimate");

  const check = await client.isMember("v1", v1id, dev(21));
  assert.deepEqual([check.member, check.reason], [true, "rule"]);
  const no = await client.isMember("v1", v1id, dev(20));
  assert.deepEqual([no.member, no.reason], [false, "no_match"]);

  const preview = await client.preview("v1", { name: "p", constraints: [{ type: "AND", constraints: [{ field: "id", relation: "==", value: dev(21) }] }] });
  assert.equal(preview.count, 1);
  assert.deepEqual(preview.sample, [dev(21)]);

  // audiences: no device has attributes.run, so only explicit members count
  assert.equal((await client.count("audiences", audId)).count, 0);
  const added = await client.addMembers("audiences", audId, [dev(20), dev(21), `ts-${run}-nobody`]);
  assert.equal(added.applied, 2);
  assert.deepEqual(added.unknown_ids, [`ts-${run}-nobody`]);
  const removed = await client.removeMembers("v1", v1id, [dev(21)]);
  assert.equal(removed.applied, 1);
  assert.deepEqual(await collect(client.members("audiences", audId, { limit: 1 })), [dev(20), dev(21)]);
  assert.deepEqual((await collect(client.exportMembers("audiences", audId))).map((m) => m.id), [dev(20), dev(21)]);
  assert.equal((await client.estimate("audiences", audId)).count, 2);
  assert.deepEqual(await client.isMember("audiences", audId, dev(20)), { member: true, reason: "added", status: "active" });
  const v1removed = await client.isMember("v1", v1id, dev(21));
  assert.equal(v1removed.reason, "removed");
  const audPreview = await client.preview("audiences", { management_type: "selfmanaged", name: "p", owner_id: OWNER, properties: { run: [run] } }, { precision: "exact" });
  assert.equal(audPreview.count, 0);

  const segments = await client.deviceSegments(dev(23));
  assert.ok(segments.v1.includes(v1id));
  const of21 = await client.deviceSegments(dev(21));
  assert.ok(of21.audiences.includes(audId) && !of21.v1.includes(v1id));
});

// ------------------------------------------------------------------ history

test("history on both dialects: every change a revision, newest first, page by page, after a delete too", async () => {
  const aud = (await client.createAudienceSegment({
    management_type: "selfmanaged", name: `ts hist ${run}`, owner_id: OWNER,
  })).value;
  await client.modifyAudienceSegment(aud.id, () => ({ description: "changed" }));
  await client.setEndDate("audiences", aud.id, { end_date: "2031-01-01T00:00:00.000000Z" });
  const audHistory = await collect(client.history("audiences", aud.id, { limit: 1 }));
  assert.deepEqual(audHistory.map((r) => r.operation), ["end_date", "merge_patch", "create"]);
  assert.deepEqual(audHistory[1]!.patch.find((p) => p.path === "/description"),
    { op: "replace", path: "/description", value: "changed" });
  assert.ok(audHistory[0]!.revision > audHistory[1]!.revision);

  const v1 = (await client.createV1Segment({
    name: `ts hist ${run}`, constraints: [{ type: "AND", constraints: [{ field: "country", relation: "==", value: "PL" }] }],
  })).value;
  const { response } = await api.DELETE("/v1/segments/{id}", { params: { path: { id: v1.id } } });
  assert.equal(response.status, 204);
  const v1History = await collect(client.history("v1", v1.id));
  assert.deepEqual(v1History.map((r) => [r.operation, r.version]), [["delete", 1], ["create", 1]]);
  assert.deepEqual(v1History[0]!.patch, [{ op: "replace", path: "", value: {} }]);
  await problem(() => client.history("audiences", randomUUID()).next(), 404, "not_found");
});

// ------------------------------------------------------------------ webhooks

test("webhooks: subscribe (secret once), list, read, rotate, the delivery log and its retry, delete", async () => {
  const created = await api.POST("/v1/webhooks", {
    body: { url: `https://hooks.example.com/ts-${run}`, events: ["segment.created", "segment.deleted"] },
  });
  assert.equal(created.response.status, 201);
  const hook = created.data!;
  assert.match(hook.secret, /^whsec_/);
  assert.equal(created.response.headers.get("Location"), `/v1/webhooks/${hook.id}`);
  const path = { params: { path: { id: hook.id } } };
  const read = await api.GET("/v1/webhooks/{id}", path);
  assert.equal(read.data?.id, hook.id);
  assert.ok(!("secret" in (read.data ?? {})));
  const listed = await api.GET("/v1/webhooks", { params: { query: { limit: 50 } } });
  assert.ok(listed.data?.items.some((w) => w.id === hook.id));
  const rotated = await api.POST("/v1/webhooks/{id}/rotate-secret", path);
  assert.notEqual(rotated.data?.secret, hook.secret);
  // a segment created now is an event for the subscription: one pending delivery
  await client.createV1Segment({
    name: `ts hook ${run}`, constraints: [{ type: "AND", constraints: [{ field: "country", relation: "==", value: "PL" }] }],
  });
  const log = await api.GET("/v1/webhooks/{id}/deliveries", { params: { path: { id: hook.id }, query: { limit: 10 } } });
  assert.equal(log.data?.items.length, 1);
  const delivery = log.data!.items[0]!;
  assert.equal(delivery.type, "segment.created");
  const retried = await api.POST("/v1/webhooks/{id}/deliveries/{delivery}/retry", {
    params: { path: { id: hook.id, delivery: delivery.id } },
  });
  assert.equal(retried.data?.status, "pending");
  const bad = await api.POST("/v1/webhooks", { body: { url: "http://127.0.0.1/x", events: ["segment.created"] } });
  assert.equal(bad.response.status, 422);
  const gone = await api.DELETE("/v1/webhooks/{id}", path);
  assert.equal(gone.response.status, 204);
  await problem(() => client.api.GET("/v1/webhooks/{id}", path).then((r) => {
    if (r.error) throw responseError(r.response, r.error);
    return r;
  }), 404, "not_found");
});

// ------------------------------------------------------------------ typed errors

test("errors arrive typed as problem details", async () => {
  const missing = await problem(() => client.getV1Segment("seg_0000000000000"), 404, "not_found");
  assert.equal(missing.title, "Not Found");

  const invalid = await deliberately(() => problem(async () => {
    const { error, response } = await api.POST("/v1/segments", {
      body: { name: "", constraints: [{ type: "AND", constraints: [{ field: "country", relation: "==", value: "pl" }] }] },
    });
    throw responseError(response, error);
  }, 422, "validation_failed"));
  assert.deepEqual(invalid.pointers.sort(), ["/constraints/0/constraints/0/value", "/name"]);
  assert.ok(invalid.errors.every((e) => typeof e.detail === "string"));

  const badPath = await deliberately(() => problem(() => client.getImport("nope"), 400, "invalid_path_parameter"));
  assert.deepEqual(badPath.pointers, ["/path/id"]);

  await problem(() => reader.bulkDeleteDevices([dev(0)]), 403, "insufficient_scope");

  // If-Match stale on both tries: the helper gives up after its one retry
  let tries = 0;
  const twice = await problem(() => withIfMatch(
    async () => ({ value: null, etag: '"999"' }),
    async (_v, etag) => {
      tries++;
      const { error, response } = await api.PATCH("/v1/devices/{id}", {
        params: { path: { id: dev(0) }, header: { "If-Match": etag } }, body: { sessionCount: 1 },
      });
      throw responseError(response, error);
    }), 412, "precondition_failed");
  assert.equal(tries, 2);
  assert.equal(twice.status, 412);

  const exists = await problem(() => client.api.PUT("/v1/devices/{id}", {
    params: { path: { id: dev(0) }, header: { "If-None-Match": "*" } }, body: device(0),
  }).then(async ({ error, response }) => { throw responseError(response, error); }),
  412, "precondition_failed");
  assert.match(exists.detail, /.+/);

  const noToken = segmentd({ baseUrl: BASE, fetch: recordingFetch });
  await deliberately(() => problem(() => noToken.count("v1", "seg_0000000000000"), 401, "unauthorized"));
});

// ------------------------------------------------------------------ paginate by itself

test("paginate follows next_cursor until null", async () => {
  const pages: Record<string, { items: number[]; next_cursor: string | null }> = {
    first: { items: [1, 2], next_cursor: "b" }, b: { items: [3], next_cursor: "c" }, c: { items: [], next_cursor: null },
  };
  const got = await collect(paginate(async (cursor) => pages[cursor ?? "first"]!));
  assert.deepEqual(got, [1, 2, 3]);
});

// ------------------------------------------------------------------ the contract

test("every operation of openapi.yaml was called, and Prism found no violation", () => {
  const missing = operations.filter((o) => !called.has(o.key)).map((o) => o.key);
  assert.deepEqual(missing, [], `operations of openapi.yaml this suite never called:\n${missing.join("\n")}`);
  assert.deepEqual(unknownCalls, [], "requests matching no operation of openapi.yaml");
  assert.deepEqual(responseViolations, [], "responses Prism reports as violating openapi.yaml");
  assert.deepEqual(requestViolations, [], "requests Prism reports as violating openapi.yaml (not sent on purpose)");
  if (VIA_PRISM) {
    assert.ok(deliberateViolations > 0, "Prism reported nothing about the requests that break the spec on purpose: is it validating?");
    process.stdout.write(`# prism: ${called.size} operations checked, no violations` +
      ` (${confusedByPrism.length} problem bodies Prism matched to the wrong media type, not counted:` +
      ` ${confusedByPrism.join(", ") || "none"})\n`);
  }
  process.stdout.write(`# operations: ${called.size} of ${operations.length} called\n`);
});
