-- mixed: 80 % get-by-id, 10 % create, 10 % patch (the same requests as get, create, patch).
package.path = os.getenv("BENCH_DIR") .. "/?.lua;" .. package.path
local c = require("common")
local gets, creates, patches
setup, done = c.setup, c.done
function init(args)
  c.seed_random()
  local ids, owners = c.lines("aud_t1.ids"), c.lines("owners")
  gets = c.get_requests("/audiences/segments/", ids)
  creates = c.create_requests(1000, owners)
  patches = c.patch_requests(ids, owners)
end
function request()
  local x = math.random(100)
  if x <= 80 then return c.pick(gets) end
  if x <= 90 then return c.pick(creates) end
  return c.pick(patches)
end
