-- list: GET /audiences/segments?limit=20, the newest page of tenant t1.
package.path = os.getenv("BENCH_DIR") .. "/?.lua;" .. package.path
local c = require("common")
setup, done = c.setup, c.done
wrk.method = "GET"
wrk.path = "/audiences/segments?limit=20"
wrk.headers["Authorization"] = c.read_headers["Authorization"]
