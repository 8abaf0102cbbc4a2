-- patch: PATCH /audiences/segments with {id, management_type, name, owner_id} for a random
-- seeded id (one UPDATE ... RETURNING; PATCH /{id} would read first).
package.path = os.getenv("BENCH_DIR") .. "/?.lua;" .. package.path
local c = require("common")
local reqs
setup, done = c.setup, c.done
function init(args)
  c.seed_random()
  reqs = c.patch_requests(c.lines("aud_t1.ids"), c.lines("owners"))
end
function request() return c.pick(reqs) end
