-- Rotates through the requests of a file, one per line: METHOD <TAB> PATH [<TAB> BODY].
-- Each wrk thread starts at its own offset; done() prints one JSON line for bench/run.py.
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("id", thread_count)
end

local requests = {}
local next_index = 1

function init(args)
  requests = common.load(args[1])
  next_index = common.first_index(id, #requests)
end

function request()
  local r = requests[next_index]
  next_index = next_index % #requests + 1
  return r
end

function done(summary, latency, requests)
  common.write_summary(summary, latency)
end
