-- device put: PUT /v1/devices/{id}, a typical device, ids drawn from 100 000 (creates at
-- first, then mostly replaces, as an SDK that reports its devices again and again).
package.path = os.getenv("BENCH_DIR") .. "/?.lua;" .. package.path
require("common").pick_from(function(c) return c.device_put_requests(1000) end)
