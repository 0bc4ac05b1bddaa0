-- POST /transactions with a fresh in-window timestamp (epoch ms) and a varying amount.
local counter = 0
request = function()
  counter = counter + 1
  local ms = math.floor(os.time() * 1000) - (counter % 5000)
  local body = string.format('{"amount":"%d.%02d","timestamp":%d}', counter % 1000, counter % 100, ms)
  return wrk.format("POST", "/transactions", {["Content-Type"] = "application/json"}, body)
end
