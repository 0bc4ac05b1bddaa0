-- GET /statistics?key=card-%011d, the key drawn uniformly from the N loaded (wrk ... -- N).
local n = 1000000
function init(args)
  n = tonumber(args[1]) or n
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end
request = function()
  return wrk.format("GET", string.format("/statistics?key=card-%011d", math.random(0, n - 1)))
end
