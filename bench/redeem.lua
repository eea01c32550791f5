-- wrk script for bench/redeem: POST /api/v1/redemptions, every request a code not
-- sent before. Arguments after `--`: the codes file (one plaintext a line) and the
-- number of wrk threads; thread i sends lines i, i+n, i+2n, ...
-- The API key comes from the BENCH_API_KEY environment variable.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local path, nthreads = args[1], tonumber(args[2])
  codes = {}
  local line_number = 0
  for line in io.lines(path) do
    if line_number % nthreads == id then
      codes[#codes + 1] = line
    end
    line_number = line_number + 1
  end
  next_code = 1
  headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Api-Key " .. (os.getenv("BENCH_API_KEY") or ""),
  }
  sent, exhausted, s201, s409, s4xx, s5xx, other = 0, 0, 0, 0, 0, 0, 0
end

function request()
  local code = codes[next_code]
  if code == nil then
    -- Out of fresh codes: start again (those requests will be refused), and say so.
    exhausted = 1
    next_code = 1
    code = codes[1]
  end
  next_code = next_code + 1
  sent = sent + 1
  local body = string.format(
    '{"code":"%s","order_id":"bench-%d-%d","order_total":"40.00","currency":"USD"}', code, id, sent
  )
  return wrk.format("POST", "/api/v1/redemptions", headers, body)
end

function response(status, headers, body)
  if status == 201 then
    s201 = s201 + 1
  elseif status == 409 then
    s409 = s409 + 1
  elseif status >= 500 then
    s5xx = s5xx + 1
  elseif status >= 400 then
    s4xx = s4xx + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local totals = { sent = 0, exhausted = 0, s201 = 0, s409 = 0, s4xx = 0, s5xx = 0, other = 0 }
  for _, thread in ipairs(threads) do
    for key, _ in pairs(totals) do
      totals[key] = totals[key] + (thread:get(key) or 0)
    end
  end
  local errors = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p95_us=%d p99_us=%d max_us=%d mean_us=%d "
      .. "sent=%d exhausted=%d s201=%d s409=%d s4xx=%d s5xx=%d other=%d "
      .. "connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, latency.mean,
    totals.sent, totals.exhausted, totals.s201, totals.s409, totals.s4xx, totals.s5xx, totals.other,
    errors.connect, errors.read, errors.write, errors.timeout
  ))
end
