-- wrk script for bench/issue: each wrk thread is one rep (one connection) posting
-- POST /api/v1/issuances with its own staff token, a random customer and a fresh
-- Idempotency-Key. Arguments after `--`: tokens file, offer id, reason code,
-- lowest and highest customer id, and the mean think time in ms between requests.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local path = args[1]
  offer, reason = args[2], args[3]
  customer_lo, customer_hi = tonumber(args[4]), tonumber(args[5])
  think_ms = tonumber(args[6] or "0")
  run = args[7] or "run"
  local line_number = 0
  for line in io.lines(path) do
    if line_number == id then token = line end
    line_number = line_number + 1
  end
  math.randomseed(os.time() + id * 7919)
  sent, s201, s4xx, s5xx, other = 0, 0, 0, 0, 0
end

function request()
  sent = sent + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Token " .. token,
    ["Idempotency-Key"] = string.format("bench-%s-%d-%d", run, id, sent),
  }
  local body = string.format(
    '{"customer_id":%d,"offer_id":%s,"reason_code":"%s","note":"bench"}',
    math.random(customer_lo, customer_hi), offer, reason
  )
  return wrk.format("POST", "/api/v1/issuances", headers, body)
end

-- A rep's pause between two appeasements (0: back to back, the server's saturation).
function delay()
  if think_ms > 0 then return math.random(math.floor(think_ms / 2), math.floor(think_ms * 3 / 2)) end
  return 0
end

function response(status, headers, body)
  if status == 201 then
    s201 = s201 + 1
  elseif status >= 500 then
    s5xx = s5xx + 1
  elseif status >= 400 then
    s4xx = s4xx + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local totals = { sent = 0, s201 = 0, s4xx = 0, s5xx = 0, other = 0 }
  for _, thread in ipairs(threads) do
    for key, _ in pairs(totals) do
      totals[key] = totals[key] + (thread:get(key) or 0)
    end
  end
  local errors = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p95_us=%d p99_us=%d max_us=%d "
      .. "sent=%d s201=%d s4xx=%d s5xx=%d other=%d connect_errors=%d read_errors=%d timeouts=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, totals.sent, totals.s201, totals.s4xx, totals.s5xx, totals.other,
    errors.connect, errors.read, errors.timeout
  ))
end
