-- v1 create: POST /v1/segments (seed 003 body, one AND group with one constraint).
package.path = os.getenv("BENCH_DIR") .. "/?.lua;" .. package.path
local c = require("common")
local reqs
setup, done = c.setup, c.done
function init(args)
  c.seed_random()
  reqs = c.v1_create_requests(1000)
end
function request() return c.pick(reqs) end
