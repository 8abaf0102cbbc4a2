-- The evaluation scenarios' GETs (bench/run: eval_lookup, eval_page): one path a line in
-- BENCH_WORK/$BENCH_PATHS (written by bench/eval.py: membership checks, device → segments
-- lookups, member pages), a random one per request, with the token of tenant ev. With
-- BENCH_STATUS=1 the answers above 399 are also counted by status (a Lua call per answer:
-- only where the rate is low, the member pages) and printed as "BENCH_STATUS 503:12 …".
package.path = os.getenv("BENCH_DIR") .. "/?.lua;" .. package.path
local c = require("common")
local file = assert(os.getenv("BENCH_PATHS"), "BENCH_PATHS is not set")
c.pick_from(function(m) return m.get_requests("", m.lines(file)) end)
if os.getenv("BENCH_STATUS") == "1" then
  local threads = {}
  local base_setup, base_done = setup, done
  setup = function(thread)
    base_setup(thread)
    threads[#threads + 1] = thread
  end
  statuses = {}
  response = function(status, headers, body)
    if status > 399 then statuses[status] = (statuses[status] or 0) + 1 end
  end
  done = function(summary, latency, requests)
    base_done(summary, latency, requests)
    local total = {}
    for _, t in ipairs(threads) do
      local s = t:get("statuses")
      for k, v in pairs(s or {}) do total[k] = (total[k] or 0) + v end
    end
    local parts = {}
    for k, v in pairs(total) do parts[#parts + 1] = k .. "×" .. v end
    io.write("BENCH_STATUS " .. table.concat(parts, " ") .. "\n")
  end
end
