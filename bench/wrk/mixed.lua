-- Like requests.lua (a file of METHOD <TAB> PATH [<TAB> BODY] lines, each thread from its own
-- offset), and it also times each request by its method: GET (the checks) apart from POST (the
-- writes). Run it with as many threads as connections: a thread then has one connection and one
-- request in flight, so each response() answers the last request(). Latencies are taken with
-- CLOCK_MONOTONIC through LuaJIT's ffi (wrk's own histogram does not tell requests apart).
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local now = ffi.new("bench_timespec")

local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, now)
  return tonumber(now.tv_sec) * 1000000 + tonumber(now.tv_nsec) / 1000
end

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("id", #threads)
end

local requests, methods = {}, {}
local next_index = 1
local sent_at, sent_method = nil, nil
-- Globals, one flat table or number per method (done() reads them from each thread, and wrk
-- copies only flat tables between its Lua states safely): latencies in us, answers not 2xx.
latencies_GET, latencies_POST = {}, {}
non2xx_GET, non2xx_POST = 0, 0

function init(args)
  requests, methods = common.load(args[1])
  next_index = common.first_index(id, #requests)
end

function request()
  local r = requests[next_index]
  sent_method = methods[next_index]
  next_index = next_index % #requests + 1
  sent_at = now_us()
  return r
end

function response(status, headers, body)
  if sent_at == nil then return end
  local list = _G["latencies_" .. sent_method]
  list[#list + 1] = now_us() - sent_at
  if status < 200 or status > 299 then
    _G["non2xx_" .. sent_method] = _G["non2xx_" .. sent_method] + 1
  end
  sent_at = nil
end

local function percentile(sorted, p)
  if #sorted == 0 then return 0 end
  return sorted[math.max(1, math.ceil(#sorted * p / 100))]
end

function done(summary, latency, requests)
  local parts = {}
  for _, method in ipairs({"GET", "POST"}) do
    local all, bad = {}, 0
    for _, thread in ipairs(threads) do
      local list = thread:get("latencies_" .. method)
      for i = 1, #list do all[#all + 1] = list[i] end
      bad = bad + thread:get("non2xx_" .. method)
    end
    table.sort(all)
    parts[#parts + 1] = string.format(
      '"%s":{"count":%d,"non2xx":%d,"p50":%d,"p99":%d,"max":%d}',
      method, #all, bad, percentile(all, 50), percentile(all, 99), all[#all] or 0)
  end
  common.write_summary(summary, latency, '"by_method_us":{' .. table.concat(parts, ",") .. "}")
end
