-- Smoke test of `make run` (opes-milter with contrib/opes-milter.toml), run by
-- .ci/miltertest.sh: the milter negotiates, and two ordinary messages on one
-- connection are neither rejected nor tempfailed (a tempfail would mean that
-- opes-milter could not reach opes-callout).
--
-- Globals set with miltertest -D (optional):
--   MILTER  the milter socket; default inet:8890@127.0.0.1

local socket = MILTER or "inet:8890@127.0.0.1"
local conn = mt.connect(socket, 50, 0.1)
assert(conn, "cannot connect to " .. socket)

-- passed reports whether a reply lets the transaction go on.
local function passed(reply)
	return reply == SMFIR_CONTINUE or reply == SMFIR_ACCEPT or reply == SMFIR_SKIP
end

assert(mt.conninfo(conn, "client.example", "192.0.2.1") == nil, "conninfo failed")
assert(passed(mt.getreply(conn)), "connect refused")
assert(mt.helo(conn, "client.example") == nil, "helo failed")
assert(passed(mt.getreply(conn)), "HELO refused")

for n = 1, 2 do
	local what = "message " .. n
	assert(mt.mailfrom(conn, "<sender@example.org>") == nil, "mailfrom failed")
	assert(passed(mt.getreply(conn)), what .. ": MAIL refused")
	assert(mt.rcptto(conn, "<user" .. n .. "@example.com>") == nil, "rcptto failed")
	assert(passed(mt.getreply(conn)), what .. ": RCPT refused")
	assert(mt.header(conn, "From", "<sender@example.org>") == nil, "header failed")
	assert(mt.header(conn, "To", "<user" .. n .. "@example.com>") == nil, "header failed")
	assert(mt.header(conn, "Subject", "smoke " .. n) == nil, "header failed")
	assert(mt.eoh(conn) == nil, "eoh failed")
	assert(mt.bodystring(conn, "plain text " .. n .. "\r\n") == nil, "body failed")
	assert(mt.eom(conn) == nil, "eom failed")
	local reply = mt.getreply(conn)
	assert(reply == SMFIR_ACCEPT or reply == SMFIR_CONTINUE,
		what .. ": end of message answered '" .. tostring(reply) .. "', not accept")
	mt.echo(what .. ": accepted")
end

assert(mt.disconnect(conn) == nil, "disconnect failed")
