-- v1 create: POST /v1/segments (seed 003 body, one AND group with one constraint).
package.path = os.getenv("BENCH_DIR") .. "/?.lua;" .. package.path
require("common").pick_from(function(c) return c.v1_create_requests(1000) end)
