-- wrk script of bench:scorer: POSTs the body in the file $WRK_BODY to /score and
-- counts an answer as served only if it is HTTP 200 with a "result" (or a "model",
-- for named records; the original answers its errors with HTTP 200 and
-- {"error": ...}). Prints one JSON line.
local file = assert(io.open(os.getenv("WRK_BODY"), "rb"))
wrk.method = "POST"
wrk.path = "/score"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  bad = 0
end

function response(status, headers, body)
  local head = string.sub(body, 1, 16)
  if status ~= 200 or not (string.find(head, "result", 1, true) or string.find(head, "{\"model\":", 1, true)) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local bad_total = 0
  for _, thread in ipairs(threads) do
    bad_total = bad_total + thread:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "duration_us": %d, "bad": %d, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, bad_total, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
