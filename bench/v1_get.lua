-- v1 get: GET /v1/segments/{id}, a random seeded seg_ id of tenant t1 per request.
package.path = os.getenv("BENCH_DIR") .. "/?.lua;" .. package.path
require("common").pick_from(function(c) return c.get_requests("/v1/segments/", c.lines("v1_t1.ids")) end)
