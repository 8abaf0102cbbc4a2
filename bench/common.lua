-- Shared by the wrk scripts of bench/run: the bearer token, the seeded ids, request
-- builders, and one machine-readable summary line (BENCH key=value ...) from done().
-- Environment: BENCH_TOKEN (a real JWT from `segmentd token`), BENCH_WORK (the folder
-- holding aud_t1.ids, v1_t1.ids and owners, written by bench/seed.py).
local M = {}

local token = assert(os.getenv("BENCH_TOKEN"), "BENCH_TOKEN is not set")
local work = assert(os.getenv("BENCH_WORK"), "BENCH_WORK is not set")

M.read_headers = { ["Authorization"] = "Bearer " .. token }
M.write_headers = { ["Authorization"] = "Bearer " .. token,
                    ["Content-Type"] = "application/json" }

function M.lines(name)
  local t = {}
  for line in io.lines(work .. "/" .. name) do
    if line ~= "" then t[#t + 1] = line end
  end
  assert(#t > 0, name .. " is empty")
  return t
end

-- Every thread gets its own number, so that threads draw different random sequences.
local nthreads = 0
function M.setup(thread)
  nthreads = nthreads + 1
  thread:set("thread_no", nthreads)
end

function M.seed_random()
  math.randomseed(os.time() * 1000 + (thread_no or 0) * 7919)
  for _ = 1, 10 do math.random() end
end

-- Requests are built once at init and picked at random per request, so that wrk spends
-- its time sending rather than formatting.
function M.get_requests(prefix, ids)
  local r = {}
  for i, id in ipairs(ids) do
    r[i] = wrk.format("GET", prefix .. id, M.read_headers)
  end
  return r
end

local desc = "Created by bench/run: users who match the benchmark rules"
local props = '{"country":["PL","DE"],"interest":["sports","music"]}'

function M.create_requests(n, owners)
  local r = {}
  for i = 1, n do
    local body = string.format(
      '{"management_type":"selfmanaged","name":"bench create %05d","owner_id":"%s",' ..
      '"approximated_size":%d,"description":"%s","properties":%s}',
      math.random(0, 99999), owners[math.random(#owners)], math.random(1000, 10000000), desc, props)
    r[i] = wrk.format("POST", "/audiences/segments", M.write_headers, body)
  end
  return r
end

-- The one-statement update (PATCH /audiences/segments, seed 000 body): id and the three
-- required fields, so the server's mask is 7 and no If-Match is sent.
function M.patch_requests(ids, owners)
  local r = {}
  for i, id in ipairs(ids) do
    local body = string.format(
      '{"id":"%s","management_type":"selfmanaged","name":"bench patched %05d","owner_id":"%s"}',
      id, math.random(0, 99999), owners[math.random(#owners)])
    r[i] = wrk.format("PATCH", "/audiences/segments", M.write_headers, body)
  end
  return r
end

function M.v1_create_requests(n)
  local countries = { "PL", "DE", "FR", "US", "GB", "ES", "IT", "NL" }
  local r = {}
  for i = 1, n do
    local body = string.format(
      '{"name":"bench v1 create %05d","constraints":[{"type":"AND","constraints":' ..
      '[{"field":"country","relation":"==","value":"%s"}]}]}',
      math.random(0, 99999), countries[math.random(#countries)])
    r[i] = wrk.format("POST", "/v1/segments", M.write_headers, body)
  end
  return r
end

-- The device of bench/pgbench_scripts.py's device_put, field for field.
function M.device_put_requests(n)
  local r = {}
  local body = '{"country":"PL","language":"pol","timezone":"Europe/Warsaw","appVersion":"5.2.1",' ..
    '"appVersionCode":521,"osApi":"33","osVersion":"14","email":"user@example.com","type":"phone",' ..
    '"firstSession":1764748800000,"lastSession":1764748800000,"sessionCount":12,' ..
    '"createdAt":1764748800000,"deviceModel":"Pixel 8","deviceManufacturer":"Google",' ..
    '"tags":["vip","beta"],"attributes":{"interest":["sports"]}}'
  for i = 1, n do
    r[i] = wrk.format("PUT", string.format("/v1/devices/bench-%d", math.random(1, 100000)),
                      M.write_headers, body)
  end
  return r
end

function M.pick(list)
  return list[math.random(#list)]
end

-- wrk counts responses with a status above 399 in errors.status; segmentd sends no 3xx,
-- so that is the non-2xx count.
function M.done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d bytes=%d non2xx=%d connect_errors=%d read_errors=%d " ..
    "write_errors=%d timeouts=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.1f\n",
    summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read, e.write,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end

-- The shape of every one-kind scenario script: build(c) makes the requests once per wrk
-- thread at init, and each request picks one of them at random.
function M.pick_from(build)
  local reqs
  setup, done = M.setup, M.done
  init = function(args)
    M.seed_random()
    reqs = build(M)
  end
  request = function() return M.pick(reqs) end
end

return M
