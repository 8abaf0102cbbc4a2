-- get-by-id: GET /audiences/segments/{id}, a random seeded id of tenant t1 per request.
package.path = os.getenv("BENCH_DIR") .. "/?.lua;" .. package.path
require("common").pick_from(function(c) return c.get_requests("/audiences/segments/", c.lines("aud_t1.ids")) end)
