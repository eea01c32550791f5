-- wrk script for bench/feedback: POST /api/v1/feedback as the widget sends it. Every
-- request a random rating and text; the incident type is left empty half the time (so
-- the keyword triage infers it); the email is a seeded customer's half the time (found)
-- and otherwise one from a pool of fresh addresses (created on first use, found after).
-- Arguments after `--`: the site key, the number of seeded customers, the size of the
-- fresh pool, and a run tag (the fresh addresses differ between runs).

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local texts = {
  "My order is late, still waiting after a week.",
  "The box arrived crushed and the mug inside was broken!!",
  "The courier was rude and hung up on me. Unacceptable!",
  "I was charged twice for the same order, please refund me.",
  "Wrong size again, not what I ordered.",
  "Great service, thanks a lot.",
  "Everything arrived on time, very happy.",
  "The app is down and I can't log in.",
  "",
}

local types = { "late_delivery", "damaged_item", "wrong_item", "overcharge", "staff_attitude", "other" }

function init(args)
  site_key = args[1]
  seeded = tonumber(args[2])
  fresh = tonumber(args[3])
  run = args[4] or "run"
  math.randomseed(os.time() + id * 7919)
  headers = { ["Content-Type"] = "application/json" }
  sent, s2xx, s4xx, s5xx, other = 0, 0, 0, 0, 0
end

function request()
  sent = sent + 1
  local email
  if math.random() < 0.5 then
    email = string.format("customer%d@example.com", math.random(0, seeded - 1))
  else
    email = string.format("fresh-%s-%d@example.com", run, math.random(1, fresh))
  end
  local incident = ""
  if math.random() < 0.5 then incident = types[math.random(#types)] end
  local text = texts[math.random(#texts)]
  local rating = math.random(1, 5)
  if text == "" and math.random() < 0.5 then rating = math.random(1, 2) end
  local body = string.format(
    '{"site_key":"%s","rating":%d,"text":"%s","email":"%s","incident_type":"%s"}',
    site_key, rating, text, email, incident
  )
  return wrk.format("POST", "/api/v1/feedback", headers, body)
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
