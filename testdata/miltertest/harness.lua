-- Harness self-test for e2e.TestMiltertestHarness: drives the in-process harness
-- milter (adds "X-Harness: ok" at end of message, rejects RCPT <blocked@example.com>
-- with 550 5.1.1) through two messages on one milter connection.
--
-- Globals set with miltertest -D:
--   MILTER  the milter socket, e.g. inet:10025@127.0.0.1

assert(MILTER, "run with -D MILTER=inet:PORT@127.0.0.1")

local conn = mt.connect(MILTER, 20, 0.1)
assert(conn, "cannot connect to " .. MILTER)
assert(mt.test_action(conn, SMFIF_ADDHDRS), "milter did not negotiate SMFIF_ADDHDRS")

assert(mt.conninfo(conn, "client.example", "192.0.2.1") == nil, "conninfo failed")
assert(mt.getreply(conn) == SMFIR_CONTINUE, "connect not continued")
assert(mt.helo(conn, "client.example") == nil, "helo failed")

-- send_message runs one transaction; rcpts are accepted, blocked is rejected.
local function send_message(n, rcpts, blocked)
	assert(mt.mailfrom(conn, "<a@example.org>") == nil, "mailfrom failed")
	assert(mt.getreply(conn) == SMFIR_CONTINUE, "message " .. n .. ": MAIL not continued")
	for _, rcpt in ipairs(rcpts) do
		assert(mt.rcptto(conn, rcpt) == nil, "rcptto failed")
		assert(mt.getreply(conn) == SMFIR_CONTINUE, "message " .. n .. ": " .. rcpt .. " not continued")
	end
	if blocked then
		assert(mt.rcptto(conn, blocked) == nil, "rcptto failed")
		assert(mt.getreply(conn) == SMFIR_REPLYCODE, "message " .. n .. ": " .. blocked .. " not rejected")
	end
	assert(mt.header(conn, "Subject", "message " .. n) == nil, "header failed")
	assert(mt.eoh(conn) == nil, "eoh failed")
	assert(mt.bodystring(conn, "hello " .. n .. "\r\n") == nil, "body failed")
	assert(mt.eom(conn) == nil, "eom failed")
	assert(mt.getreply(conn) == SMFIR_ACCEPT, "message " .. n .. ": not accepted at end of message")
	assert(mt.eom_check(conn, MT_HDRADD, "X-Harness", "ok"), "message " .. n .. ": no X-Harness: ok")
	mt.echo("message " .. n .. ": accepted with X-Harness: ok")
end

send_message(1, { "<b@example.com>" }, "<blocked@example.com>")
send_message(2, { "<c@example.com>", "<d@example.com>" }, nil)

assert(mt.disconnect(conn) == nil, "disconnect failed")
mt.echo("harness.lua: ok")
