-- wrk_consent.lua - POST /v1/consents: a grant (with the notice privacy/1)
-- or a withdrawal, half and half, of a random purpose for a random
-- existing subject.
--
--   wrk ... -s wrk_consent.lua URL -- IDS_FILE API_KEY
--
-- IDS_FILE holds one subject id (sub_...) per line. Every status is
-- counted; done() prints one line:
--   LUA ok=N other=M seconds=S ok_per_s=R statuses=201:N,... socket_errors=E ...
-- where ok counts 201 (durable) answers only.

local purposes = {"processing", "marketing", "profiling"}
local threads = {}
local ids, nids = {}, 0

function setup(thread)
   table.insert(threads, thread)
   thread:set("tid", #threads)
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
   wrk.headers["Content-Type"] = "application/json"
   math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
   counts = {} -- global: done() reads it through thread:get
end

function request()
   local s, p = ids[math.random(nids)], purposes[math.random(3)]
   local body
   if math.random(2) == 1 then
      body = '{"subject":"' .. s .. '","purpose":"' .. p ..
         '","action":"grant","notice":{"notice":"privacy","version":"1"},"collected_via":"api"}'
   else
      body = '{"subject":"' .. s .. '","purpose":"' .. p ..
         '","action":"withdraw","collected_via":"api"}'
   end
   return wrk.format("POST", "/v1/consents", nil, body)
end

function response(status, headers, body)
   counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
   local total, ok, other, parts = {}, 0, 0, {}
   for _, t in ipairs(threads) do
      for k, v in pairs(t:get("counts") or {}) do total[k] = (total[k] or 0) + v end
   end
   for k, v in pairs(total) do
      if k == 201 then ok = ok + v else other = other + v end
      table.insert(parts, k .. ":" .. v)
   end
   table.sort(parts)
   local e = summary.errors
   local secs = summary.duration / 1e6
   io.write(string.format("LUA ok=%d other=%d seconds=%.3f ok_per_s=%.0f statuses=%s " ..
                             "socket_errors=%d p50_ms=%.3f p99_ms=%.3f\n",
                          ok, other, secs, ok / secs, #parts > 0 and table.concat(parts, ",") or "none",
                          e.connect + e.read + e.write + e.timeout,
                          latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
