-- v1 get: GET /v1/segments/{id}, a random seeded seg_ id of tenant t1 per request.
package.path = os.getenv("BENCH_DIR") .. "/?.lua;" .. package.path
local c = require("common")
local reqs
setup, done = c.setup, c.done
function init(args)
  c.seed_random()
  reqs = c.get_requests("/v1/segments/", c.lines("v1_t1.ids"))
end
function request() return c.pick(reqs) end
