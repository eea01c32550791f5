-- wrk script for bench/feedback: reps claiming the next case, POST /api/v1/cases/next.
-- Each wrk thread is one rep (one connection) with its own staff token (line `id` of
-- the tokens file, the only argument after `--`). 200: a case claimed; 204: the queue
-- was empty; anything else is an error.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local line_number = 0
  for line in io.lines(args[1]) do
    if line_number == id then token = line end
    line_number = line_number + 1
  end
  headers = { ["Authorization"] = "Token " .. token }
  sent, s2xx, s204, s4xx, s5xx, other = 0, 0, 0, 0, 0, 0
end

function request()
  sent = sent + 1
  return wrk.format("POST", "/api/v1/cases/next", headers)
end

function response(status, headers, body)
  if status == 200 then
    s2xx = s2xx + 1
  elseif status == 204 then
    s204 = s204 + 1
  elseif status >= 500 then
    s5xx = s5xx + 1
  elseif status >= 400 then
    s4xx = s4xx + 1
    if s4xx <= 3 then io.stderr:write(string.format("HTTP %d: %s\n", status, body)) end
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local totals = { sent = 0, s2xx = 0, s204 = 0, s4xx = 0, s5xx = 0, other = 0 }
  for _, thread in ipairs(threads) do
    for key, _ in pairs(totals) do
      totals[key] = totals[key] + (thread:get(key) or 0)
    end
  end
  local errors = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p95_us=%d p99_us=%d max_us=%d "
      .. "sent=%d s2xx=%d s204=%d s4xx=%d s5xx=%d other=%d connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, totals.sent, totals.s2xx, totals.s204, totals.s4xx, totals.s5xx,
    totals.other, errors.connect, errors.read, errors.write, errors.timeout
  ))
end
