-- The ingest benchmark's wrk script (bench/ingest.py runs it; one wrk thread).
-- It cycles through webhook bodies that bench/ingest.py signed beforehand (wrk cannot
-- compute an HMAC), gives every request a delivery id of its own, counts the response
-- statuses and ends the run after a fixed number of responses.
-- Arguments after `--`: the bodies file, a delivery-id prefix, the responses to wait for.

local ffi = require("ffi")
ffi.cdef [[
int getpid(void);
int tgkill(int tgid, int tid, int sig);
]]
local SIGINT = 2

local threads = {}
local signatures, bodies = {}, {}
local prefix, quota
local sent, reserved, received = 0, 0, 0
statuses = {} -- global, so done() can read it from each thread

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  prefix, quota = args[2], tonumber(args[3])
  for line in io.lines(args[1]) do
    local signature, body = line:match("^(%S+)\t(.*)$")
    table.insert(signatures, signature)
    table.insert(bodies, body)
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["User-Agent"] = "GitHub-Hookshot/bench"
  wrk.headers["X-GitHub-Event"] = "issue_comment"
end

-- Called before each request on a connection: once `quota` requests are under way, the
-- connection parks instead of sending more, so exactly `quota` requests reach the server.
function delay()
  reserved = reserved + 1
  if reserved > quota then
    return 3600 * 1000
  end
  return 0
end

function request()
  sent = sent + 1
  local i = (sent - 1) % #bodies + 1
  wrk.headers["X-GitHub-Delivery"] = string.format("%s-%012x", prefix, sent)
  wrk.headers["X-Hub-Signature-256"] = signatures[i]
  return wrk.format(nil, nil, nil, bodies[i])
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  received = received + 1
  if received == quota then
    wrk.thread:stop()
    -- wrk's main thread sleeps for the whole -d duration whatever the threads do; a SIGINT
    -- to that thread (the process id is its thread id) ends the run now, so the duration
    -- wrk reports is the time these requests took.
    if ffi.C.tgkill(ffi.C.getpid(), ffi.C.getpid(), SIGINT) ~= 0 then
      io.stderr:write("ingest.lua: could not signal wrk's main thread; the run lasts -d\n")
    end
  end
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("statuses")) do
      counts[#counts + 1] = code .. ":" .. n
    end
  end
  local e = summary.errors
  io.write(string.format(
    "INGEST-BENCH requests=%d duration_us=%d p50_us=%d p95_us=%d p99_us=%d max_us=%d " ..
    "socket_errors=%d statuses=%s\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, e.connect + e.read + e.write + e.timeout,
    table.concat(counts, ",")))
end
