-- POST /transactions/batch: one NDJSON body of 1,000 transactions, built once (timestamps from
-- the start of the run: valid for the window's 60 s, longer than a run).
local body
function init(args)
  local ms = math.floor(os.time() * 1000)
  local lines = {}
  for i = 1, 1000 do
    lines[i] = string.format('{"amount":"%d.%02d","timestamp":%d}', i % 1000, i % 100, ms - i % 5000)
  end
  body = table.concat(lines, "\n") .. "\n"
end
request = function()
  return wrk.format("POST", "/transactions/batch", {["Content-Type"] = "application/x-ndjson"}, body)
end
