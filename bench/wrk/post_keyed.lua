-- POST /transactions like post.lua, each with a fresh Idempotency-Key (never a retry).
local counter = 0
local id = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
function init(args)
  id = wrk.thread:get("id") or 0
end
request = function()
  counter = counter + 1
  local ms = math.floor(os.time() * 1000) - (counter % 5000)
  local body = string.format('{"amount":"%d.%02d","timestamp":%d}', counter % 1000, counter % 100, ms)
  local key = string.format('bench-%d-%d-%d', os.time(), id, counter)
  return wrk.format("POST", "/transactions",
                    {["Content-Type"] = "application/json", ["Idempotency-Key"] = key}, body)
end
