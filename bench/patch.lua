-- patch: PATCH /audiences/segments with {id, management_type, name, owner_id} for a random
-- seeded id (one UPDATE ... RETURNING; PATCH /{id} would read first).
package.path = os.getenv("BENCH_DIR") .. "/?.lua;" .. package.path
require("common").pick_from(function(c) return c.patch_requests(c.lines("aud_t1.ids"), c.lines("owners")) end)
