-- wrk script for the Spangate bench: POST (or GET) one fixed request, report one JSON line.
-- Environment: BENCH_METHOD (default POST), BENCH_BODY_FILE (request body), BENCH_AUTH (bearer key).
local method = os.getenv("BENCH_METHOD") or "POST"
local body_file = os.getenv("BENCH_BODY_FILE")
local auth = os.getenv("BENCH_AUTH")

wrk.method = method
if body_file then
  local f = assert(io.open(body_file, "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "application/json"
end
if auth then
  wrk.headers["Authorization"] = "Bearer " .. auth
end

-- One machine-readable line; latencies in microseconds. Non-2xx answers count as errors so a
-- failing gateway can never pass for a fast one.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p90_us": %d, ' ..
    '"p99_us": %d, "mean_us": %.1f, "max_us": %d, "non_2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max,
    e.status, e.connect + e.read + e.write + e.timeout))
end
