-- GET /statistics.
request = function()
  return wrk.format("GET", "/statistics")
end
