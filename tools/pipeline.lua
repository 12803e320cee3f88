-- wrk script for the TechEmpower "plaintext" shape: HTTP/1.1 pipelining, `depth` requests (16
-- by default) in each write, with TechEmpower's request headers. wrk counts every response, so
-- req/s is requests, not batches.
--   wrk -s tools/pipeline.lua http://host:port/plaintext -- 16
local batch

function init(args)
  local depth = tonumber(args[1]) or 16
  local one = wrk.format("GET", nil, {
    ["Host"] = "localhost",
    ["Accept"] = "text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7",
    ["Connection"] = "keep-alive",
  })
  local all = {}
  for i = 1, depth do
    all[i] = one
  end
  batch = table.concat(all)
end

function request()
  return batch
end
