-- create: POST /audiences/segments (seed 001 body, about 270 bytes).
package.path = os.getenv("BENCH_DIR") .. "/?.lua;" .. package.path
local c = require("common")
local reqs
setup, done = c.setup, c.done
function init(args)
  c.seed_random()
  reqs = c.create_requests(1000, c.lines("owners"))
end
function request() return c.pick(reqs) end
