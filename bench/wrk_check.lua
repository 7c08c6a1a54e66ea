-- wrk_check.lua - GET /v1/check for random subjects and purposes.
--
--   wrk ... -s wrk_check.lua URL -- IDS_FILE [API_KEY]
--
-- IDS_FILE holds one subject id (sub_...) per line. No response() hook, so
-- that wrk spends as little as it can per answer (the same script loads
-- nginx for the ceiling); non-2xx answers are counted by wrk itself.
-- done() prints one line:
--   LUA ok=N other=M seconds=S ok_per_s=R socket_errors=E p50_ms=.. p99_ms=..

local purposes = {"processing", "marketing", "profiling"}
local ids, nids = {}, 0
local nthreads = 0

function setup(thread)
   nthreads = nthreads + 1
   thread:set("tid", nthreads)
end

function init(args)
   local path, key = args[1], args[2]
   if not path then error("give the ids file after --") end
   for line in io.lines(path) do
      if #line > 0 then
         nids = nids + 1
         ids[nids] = line
      end
   end
   if nids == 0 then error("no subject ids in " .. path) end
   if key and key ~= "" then wrk.headers["Authorization"] = "Bearer " .. key end
   math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
end

function request()
   return wrk.format("GET", "/v1/check?subject=" .. ids[math.random(nids)] ..
                        "&purpose=" .. purposes[math.random(3)])
end

function done(summary, latency, requests)
   local e = summary.errors
   local secs = summary.duration / 1e6
   local ok = summary.requests - e.status
   io.write(string.format("LUA ok=%d other=%d seconds=%.3f ok_per_s=%.0f socket_errors=%d " ..
                             "p50_ms=%.3f p99_ms=%.3f\n",
                          ok, e.status, secs, ok / secs, e.connect + e.read + e.write + e.timeout,
                          latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
