-- Runs against `make run` (contrib/opes-milter.toml): recipient changes of
-- the recipient-policy service (deny blocked@example.com), checked with
-- mt.eom_check.
--   1. SMTP path: blocked@example.com is refused at RCPT with a reply code,
--      so the MTA drops it itself and no recipient change follows.
--   2. Non-SMTP path ({daemon_name} LOCAL, milter.non_smtp_daemon_names,
--      what Postfix's pickup cleanup sends with contrib/postfix/master.cf):
--      a recipient must never be refused there, so blocked@example.com is
--      continued at RCPT and deleted at end of message; the other stays.
--   3. Non-SMTP path, blocked@example.com the only recipient: with every
--      recipient deleted the message would go nowhere, so it is discarded.
--
-- Globals set with miltertest -D (optional):
--   MILTER  the milter socket; default inet:8890@127.0.0.1

local socket = MILTER or "inet:8890@127.0.0.1"
local BLOCKED, FRIEND = "<blocked@example.com>", "<friend@example.com>"

-- transaction runs one message on conn: rcpts lists {address, expected RCPT
-- reply}; it returns the reply to end of message.
local function transaction(conn, id, rcpts)
	mt.macro(conn, SMFIC_MAIL, "i", id)
	assert(mt.mailfrom(conn, "<sender@example.org>") == nil, "mailfrom")
	assert(mt.getreply(conn) == SMFIR_CONTINUE, id .. ": MAIL not continued")
	for _, r in ipairs(rcpts) do
		assert(mt.rcptto(conn, r[1]) == nil, "rcptto")
		assert(mt.getreply(conn) == r[2], id .. ": unexpected reply to RCPT " .. r[1])
	end
	assert(mt.header(conn, "From", "sender@example.org") == nil, "header")
	assert(mt.header(conn, "Subject", id) == nil, "header")
	assert(mt.eoh(conn) == nil, "eoh")
	assert(mt.bodystring(conn, "Recipient test.\r\n") == nil, "body")
	assert(mt.eom(conn) == nil, "eom")
	return mt.getreply(conn)
end

-- connect opens a milter connection; daemon is the {daemon_name} macro.
local function connect(daemon)
	local conn = mt.connect(socket, 50, 0.1)
	assert(conn, "cannot connect to " .. socket)
	assert(mt.test_action(conn, SMFIF_DELRCPT), "milter did not negotiate SMFIF_DELRCPT")
	mt.macro(conn, SMFIC_CONNECT, "{daemon_name}", daemon)
	assert(mt.conninfo(conn, "localhost", "127.0.0.1") == nil, "conninfo")
	assert(mt.helo(conn, "localhost") == nil, "helo")
	return conn
end

local smtp = connect("mx.example.com")
local r = transaction(smtp, "MTRCPT1", { { BLOCKED, SMFIR_REPLYCODE }, { FRIEND, SMFIR_CONTINUE } })
assert(r == SMFIR_ACCEPT or r == SMFIR_CONTINUE, "message 1: end of message not accepted")
assert(not mt.eom_check(smtp, MT_RCPTDELETE, BLOCKED), "message 1: refused recipient deleted again")
assert(not mt.eom_check(smtp, MT_RCPTDELETE, FRIEND), "message 1: friend deleted")
assert(mt.disconnect(smtp) == nil, "disconnect")
mt.echo("message 1 (SMTP): blocked refused at RCPT")

local local1 = connect("LOCAL")
r = transaction(local1, "MTRCPT2", { { FRIEND, SMFIR_CONTINUE }, { BLOCKED, SMFIR_CONTINUE } })
assert(r == SMFIR_ACCEPT or r == SMFIR_CONTINUE, "message 2: end of message not accepted")
assert(mt.eom_check(local1, MT_RCPTDELETE, BLOCKED), "message 2: blocked not deleted at end of message")
assert(not mt.eom_check(local1, MT_RCPTDELETE, FRIEND), "message 2: friend deleted")
assert(mt.eom_check(local1, MT_HDRINSERT, "OPES-System"), "message 2: no trace line")
assert(mt.disconnect(local1) == nil, "disconnect")
mt.echo("message 2 (non-SMTP): blocked deleted at end of message")

local local2 = connect("LOCAL")
r = transaction(local2, "MTRCPT3", { { BLOCKED, SMFIR_CONTINUE } })
assert(r == SMFIR_DISCARD, "message 3: not discarded with its only recipient deleted")
assert(mt.disconnect(local2) == nil, "disconnect")
mt.echo("message 3 (non-SMTP): discarded")

mt.echo("make-run-recipients.lua: ok")
