-- The evaluation scenarios' GETs (bench/run: eval_lookup, eval_page): one path a line in
-- BENCH_WORK/$BENCH_PATHS (written by bench/eval.py: membership checks, device → segments
-- lookups, member pages), a random one per request, with the token of tenant ev.
package.path = os.getenv("BENCH_DIR") .. "/?.lua;" .. package.path
local file = assert(os.getenv("BENCH_PATHS"), "BENCH_PATHS is not set")
require("common").pick_from(function(c) return c.get_requests("", c.lines(file)) end)
