-- wrk script for the query benchmark: the heavy page of one busy post
-- with a different history on every request (up to the 7-day maximum),
-- so that no answer is served from the service's short cache.
request = function()
  local minutes = math.random(60, 10080)
  return wrk.format("GET", "/ui/posts/1?history=" .. minutes .. "m")
end
