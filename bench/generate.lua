-- wrk script for bench/serve.py: POST /generate, every request with a seed no other request used.
-- Arguments after "--": model (gan_transpose), n (1), first seed (20000), style: "query" (deconv-arena's API,
-- the parameters in the query string) or "json" (the peers' API, {"seed": S, "n": N} as the body).
local threads = 0

function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

function init(args)
  counter = 0
  model = args[1] or "gan_transpose"
  n = args[2] or "1"
  first = tonumber(args[3] or "20000")
  style = args[4] or "query"
end

function request()
  counter = counter + 1
  local seed = first + id * 100000000 + counter
  if style == "json" then
    return wrk.format("POST", "/generate", {["Content-Type"] = "application/json"}, '{"seed": ' .. seed .. ', "n": ' .. n .. '}')
  end
  return wrk.format("POST", "/generate?model=" .. model .. "&n=" .. n .. "&seed=" .. seed)
end
