-- Runs against `make run` (opes-milter on inet:127.0.0.1:8890 with
-- contrib/opes-milter.toml, opes-callout behind it). Two messages on one
-- milter connection: blocked@example.com is refused at RCPT with the callout
-- server's 550 5.1.1, the other recipient continues, and end of message adds
-- the OPES-System trace line and the header-tag service's header.

conn = mt.connect("inet:8890@127.0.0.1", 40, 0.25)
assert(conn, "cannot connect to opes-milter at inet:8890@127.0.0.1")
assert(mt.conninfo(conn, "client.example", "192.0.2.10") == nil, "conninfo")
assert(mt.helo(conn, "client.example") == nil, "helo")

for n = 1, 2 do
	mt.macro(conn, SMFIC_MAIL, "i", "MT" .. n)
	assert(mt.mailfrom(conn, "<sender@example.org>") == nil, "mailfrom")
	assert(mt.getreply(conn) == SMFIR_CONTINUE, "MAIL not continued")

	assert(mt.rcptto(conn, "<blocked@example.com>") == nil, "rcptto blocked")
	assert(mt.getreply(conn) == SMFIR_REPLYCODE, "message " .. n .. ": blocked@example.com was not refused with a reply code")

	assert(mt.rcptto(conn, "<friend@example.com>") == nil, "rcptto friend")
	assert(mt.getreply(conn) == SMFIR_CONTINUE, "message " .. n .. ": friend@example.com was not continued")

	assert(mt.header(conn, "From", "sender@example.org") == nil, "header From")
	assert(mt.header(conn, "To", "friend@example.com") == nil, "header To")
	assert(mt.header(conn, "Subject", "skeleton " .. n) == nil, "header Subject")
	assert(mt.eoh(conn) == nil, "eoh")
	assert(mt.bodystring(conn, "Hello from the walking skeleton.\r\n") == nil, "body")
	assert(mt.eom(conn) == nil, "eom")
	local r = mt.getreply(conn)
	assert(r == SMFIR_ACCEPT or r == SMFIR_CONTINUE, "message " .. n .. ": end of message not accepted")
	assert(mt.eom_check(conn, MT_HDRINSERT, "OPES-System"), "message " .. n .. ": no OPES-System trace line")
	assert(mt.eom_check(conn, MT_HDRADD, "X-OPES-Tag"), "message " .. n .. ": no X-OPES-Tag header from header-tag")
end

mt.disconnect(conn)
