-- The seed's random_rating scenario for wrk (a closed loop: each connection
-- sends its next rating when the last one is answered):
--
--   wrk -t2 -c200 -d30s --latency -s simulation/wrk/random_rating.lua http://127.0.0.1:8080
--
-- 1,000 posts (make posts N=1000), a million device ids, scores 0-5, on the
-- replaced app's route. make bench-e2e runs it as its closed-loop step.
math.randomseed(os.time())
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  local body = string.format('{"post":%d,"user_id":"device-id-%d","score":%d}',
    math.random(1, 1000), math.random(1, 1000000), math.random(0, 5))
  return wrk.format(nil, "/api/rate", nil, body)
end
