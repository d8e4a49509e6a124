-- wrk script for bench/serve/run.sh: POSTs one non-streaming chat request (max_tokens from the
-- environment's WRK_MAX_TOKENS, default 16, temperature 0) on every connection, and counts the
-- replies by HTTP status (printed at the end, next to wrk's own "Non-2xx" line).
local max_tokens = os.getenv("WRK_MAX_TOKENS") or "16"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"messages":[{"role":"user","content":"Write a haiku about the sea."}],' ..
           '"max_tokens":' .. max_tokens .. ',"temperature":0,"seed":1234}'

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for k, v in pairs(s) do total[k] = (total[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(total) do table.insert(parts, tostring(k) .. ": " .. tostring(v)) end
  table.sort(parts)
  io.write("statuses: " .. table.concat(parts, ", ") .. "\n")
end
