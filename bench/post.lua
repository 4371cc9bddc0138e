-- SPDX-License-Identifier: GPL-2.0-only
--
-- wrk script for bench/compare.sh: POST a body of SIZE bytes (lower-case
-- text, so every handler has work to do) and, when done, print one line
--   requests=N duration_us=D rps=R p50_us=X p99_us=Y errors=E non2xx=F
--
--   wrk -t1 -c32 -d3s -s bench/post.lua http://127.0.0.1:PORT/CHAIN -- SIZE
local text = "the quick brown fox jumps over the lazy dog\n"
local req

function init(args)
	local size = tonumber(args[1] or "1024")
	local reps = math.floor(size / #text) + 1
	local body = string.sub(string.rep(text, reps), 1, size)
	req = wrk.format("POST", nil,
		{ ["Content-Type"] = "application/octet-stream" }, body)
end

function request()
	return req
end

function done(summary, latency, requests)
	local e = summary.errors
	local secs = summary.duration / 1e6
	io.write(string.format(
		"requests=%d duration_us=%d rps=%.1f p50_us=%.1f p99_us=%.1f errors=%d non2xx=%d\n",
		summary.requests, summary.duration, summary.requests / secs,
		latency:percentile(50), latency:percentile(99),
		e.connect + e.read + e.write + e.timeout, e.status))
end
