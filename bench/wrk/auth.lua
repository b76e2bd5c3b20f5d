-- wrk script: the cost of authentication on a write and a read.
-- usage: AUTH_HEADER="Basic ..." wrk -t T -c C -d 15s -s auth.lua URL -- MODE RUN_ID...
--   MODE=log-metric : POST runs/log-metric to the given runs (one per thread), unique steps
--   MODE=search     : GET experiments/search?max_results=100 (filtered per caller when auth is on)
-- AUTH_HEADER empty or unset sends no Authorization header (auth off).
local nthreads = 0
function setup(thread)
  thread:set("tid", nthreads)
  nthreads = nthreads + 1
end

local mode, ids, n, hdrs
function init(args)
  mode = args[1]
  ids = {}
  for i = 2, #args do ids[#ids + 1] = args[i] end
  n = 0
  hdrs = { ["Content-Type"] = "application/json" }
  local auth = os.getenv("AUTH_HEADER")
  if auth and auth ~= "" then hdrs["Authorization"] = auth end
end

function request()
  n = n + 1
  local t = tid or 0
  if mode == "search" then
    return wrk.format("GET", "/api/2.0/mlflow/experiments/search?max_results=100", hdrs, nil)
  end
  local rid = ids[(t % #ids) + 1]
  local body = string.format('{"run_id":"%s","key":"loss","value":%.6f,"timestamp":%d,"step":%d}',
                             rid, math.random(), os.time() * 1000, t * 100000000 + n)
  return wrk.format("POST", "/api/2.0/mlflow/runs/log-metric", hdrs, body)
end

local errors = 0
function response(status, headers, body)
  if status ~= 200 then errors = errors + 1 end
end

function done(summary, latency, requests)
  io.write(string.format("AUTHJSON {\"requests\":%d,\"seconds\":%.3f,\"non2xx\":%d,\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
    summary.requests, summary.duration / 1e6, summary.errors.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
