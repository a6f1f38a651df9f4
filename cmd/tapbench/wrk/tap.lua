-- wrk script: POST /api/tap with a player's bearer token, rotating over the
-- tokens that `tapbench -tokens-out FILE -duration 0` wrote (one a line).
--
--   go run ./cmd/tapbench -url http://127.0.0.1:8080 -tokens-out /tmp/tokens.txt -duration 0
--   wrk -t2 -c64 -d10s -s cmd/tapbench/wrk/tap.lua http://127.0.0.1:8080 -- /tmp/tokens.txt
--
-- The same script against `tapbench -noop-server 127.0.0.1:9999` gives the
-- do-nothing baseline (it ignores the token). Non-2xx answers are printed
-- at the end ("Non-2xx or 3xx responses" counts them too).

local tokens = {}
local i = 0
local bad = 0

function init(args)
  local path = args[1] or os.getenv("TOKENS") or "tokens.txt"
  for line in io.lines(path) do
    if #line > 0 then tokens[#tokens + 1] = line end
  end
  if #tokens == 0 then error("no tokens in " .. path) end
  -- Each thread starts at a different place in the list.
  i = math.random(#tokens)
end

function request()
  i = i % #tokens + 1
  return wrk.format("POST", "/api/tap", { ["Authorization"] = "Bearer " .. tokens[i] }, nil)
end

function response(status, headers, body)
  if status ~= 202 then bad = bad + 1 end
end

function done(summary, latency, requests)
  io.write(string.format("requests %d, errors(connect %d read %d write %d status %d timeout %d)\n",
    summary.requests, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout))
  io.write(string.format("latency p50 %.1f ms p99 %.1f ms\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
