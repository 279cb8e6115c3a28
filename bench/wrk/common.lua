-- Shared by requests.lua and mixed.lua, which load it from their own folder: the file of
-- requests, each thread's offset into it, and the BENCH_JSON line bench/loadgen.py reads.
local common = {}

-- The requests of a file, one per line: METHOD <TAB> PATH [<TAB> BODY]; and each one's method.
function common.load(file)
  local requests, methods = {}, {}
  for line in io.lines(file) do
    local method, path, body = line:match("^(%u+)\t([^\t]+)\t?(.*)$")
    if body == "" then body = nil end
    requests[#requests + 1] = wrk.format(method, path, nil, body)
    methods[#methods + 1] = method
  end
  return requests, methods
end

-- Where thread id starts in a list of count requests: each thread at its own offset.
function common.first_index(id, count)
  math.randomseed(id * 1000003 + os.time())
  return math.random(count)
end

-- The BENCH_JSON line: wrk's totals and latencies, then extra (more JSON members) if given.
function common.write_summary(summary, latency, extra)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}%s}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, extra and ("," .. extra) or ""))
end

return common
