-- create: POST /audiences/segments (seed 001 body, about 270 bytes).
package.path = os.getenv("BENCH_DIR") .. "/?.lua;" .. package.path
require("common").pick_from(function(c) return c.create_requests(1000, c.lines("owners")) end)
