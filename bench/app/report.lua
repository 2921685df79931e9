-- wrk script: print the run's counts and latency percentiles as one JSON line at the end.
-- Every request that did not get a 2xx/3xx answer is in `errors`: connect (refused or
-- reset while connecting), read (connection closed or reset with the request unanswered),
-- write, timeout, status (non-2xx/3xx answers).
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
