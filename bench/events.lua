-- wrk script for bench/feedback: POST /api/v1/events as a merchant's systems send them.
-- Every request a new event id (run tag, wrk thread, counter) naming one new customer;
-- delivery_delayed with a delay below the automatic rule's threshold, so the intake is
-- measured, not an issuance. The API key comes from the BENCH_API_KEY environment
-- variable. Arguments after `--`: a run tag and the delay in minutes.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  run = args[1] or "run"
  delay = tonumber(args[2] or "30")
  headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Api-Key " .. (os.getenv("BENCH_API_KEY") or ""),
  }
  sent, s2xx, s4xx, s5xx, other = 0, 0, 0, 0, 0
end

function request()
  sent = sent + 1
  local body = string.format(
    '{"event_id":"%s-%d-%d","event_type":"delivery_delayed","data":{"delay_minutes":%d,'
      .. '"order_reference":"ORD-%s-%d-%d","customer":{"email":"ev-%s-%d-%d@example.com","name":"Event customer"}}}',
    run, id, sent, delay, run, id, sent, run, id, sent
  )
  return wrk.format("POST", "/api/v1/events", headers, body)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    s2xx = s2xx + 1
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
  local totals = { sent = 0, s2xx = 0, s4xx = 0, s5xx = 0, other = 0 }
  for _, thread in ipairs(threads) do
    for key, _ in pairs(totals) do
      totals[key] = totals[key] + (thread:get(key) or 0)
    end
  end
  local errors = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p95_us=%d p99_us=%d max_us=%d "
      .. "sent=%d s2xx=%d s4xx=%d s5xx=%d other=%d connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, totals.sent, totals.s2xx, totals.s4xx, totals.s5xx, totals.other,
    errors.connect, errors.read, errors.write, errors.timeout
  ))
end
