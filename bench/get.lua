-- get-by-id: GET /audiences/segments/{id}, a random seeded id of tenant t1 per request.
package.path = os.getenv("BENCH_DIR") .. "/?.lua;" .. package.path
local c = require("common")
local reqs
setup, done = c.setup, c.done
function init(args)
  c.seed_random()
  reqs = c.get_requests("/audiences/segments/", c.lines("aud_t1.ids"))
end
function request() return c.pick(reqs) end
