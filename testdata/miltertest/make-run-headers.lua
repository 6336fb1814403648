-- Runs against `make run` (contrib/opes-milter.toml): the header changes of
-- opes-milter and the header-tag service, values and positions checked with
-- mt.eom_check. Three messages on one connection:
--   1. two Received lines, no trace yet: OPES-System and OPES-Via go right
--      below the Received block (index 3: the MTA's own Received line, which
--      the milter does not see, counts too);
--   2. an upstream OPES system's trace line below one Received line: the new
--      lines go directly above it (index 2), and it is neither changed nor
--      removed;
--   3. no Received line at all: the new lines go right below the MTA's own
--      (index 1).
-- Every message also gets X-OPES-Tag added. opes-milter negotiates
-- SMFIP_HDR_LEADSPC, so values start with the space after the colon.
--
-- Globals set with miltertest -D (optional):
--   MILTER  the milter socket; default inet:8890@127.0.0.1

local socket = MILTER or "inet:8890@127.0.0.1"
local SYSTEM_URI = " http://opes.example.net/opes-milter"
-- [trace] privacy_uri of contrib/opes-milter.toml, a parameter of the
-- OPES-System entry only (docs/profile.md §12).
local SYSTEM = SYSTEM_URI .. '; privacy-policy="http://opes.example.net/privacy"'
local VIA = SYSTEM_URI .. ",\n" ..
	"\thttp://opes-milter.example/services/recipient-policy,\n" ..
	"\thttp://opes-milter.example/services/header-tag,\n" ..
	"\thttp://opes-milter.example/services/disclaimer,\n" ..
	"\thttp://opes-milter.example/services/attachment-filter"
local TAG = " tagged by opes-callout"

local conn = mt.connect(socket, 50, 0.1)
assert(conn, "cannot connect to " .. socket)
assert(mt.test_action(conn, SMFIF_ADDHDRS), "milter did not negotiate SMFIF_ADDHDRS")
assert(mt.test_option(conn, SMFIP_HDR_LEADSPC), "milter did not negotiate SMFIP_HDR_LEADSPC")
assert(mt.conninfo(conn, "client.example", "192.0.2.40") == nil, "conninfo")
assert(mt.helo(conn, "client.example") == nil, "helo")

-- message sends one message with the given header fields and checks the
-- trace lines at index and the tag.
local function message(n, fields, index)
	local what = "message " .. n
	mt.macro(conn, SMFIC_MAIL, "i", "MTHDR" .. n)
	assert(mt.mailfrom(conn, "<sender@example.org>") == nil, "mailfrom")
	assert(mt.getreply(conn) == SMFIR_CONTINUE, what .. ": MAIL not continued")
	assert(mt.rcptto(conn, "<friend@example.com>") == nil, "rcptto")
	assert(mt.getreply(conn) == SMFIR_CONTINUE, what .. ": RCPT not continued")
	for _, f in ipairs(fields) do
		assert(mt.header(conn, f[1], f[2]) == nil, "header " .. f[1])
	end
	assert(mt.eoh(conn) == nil, "eoh")
	assert(mt.bodystring(conn, "Header test " .. n .. ".\r\n") == nil, "body")
	assert(mt.eom(conn) == nil, "eom")
	local r = mt.getreply(conn)
	assert(r == SMFIR_ACCEPT or r == SMFIR_CONTINUE, what .. ": end of message not accepted")
	assert(mt.eom_check(conn, MT_HDRINSERT, "OPES-System", SYSTEM, index),
		what .. ": no OPES-System '" .. SYSTEM .. "' inserted at index " .. index)
	assert(mt.eom_check(conn, MT_HDRINSERT, "OPES-Via", VIA, index),
		what .. ": no OPES-Via naming the four services inserted at index " .. index)
	assert(mt.eom_check(conn, MT_HDRADD, "X-OPES-Tag", TAG), what .. ": no X-OPES-Tag '" .. TAG .. "'")
	assert(not mt.eom_check(conn, MT_HDRCHANGE, "OPES-System"), what .. ": an OPES-System line was changed")
	assert(not mt.eom_check(conn, MT_HDRDELETE, "OPES-System"), what .. ": an OPES-System line was removed")
	mt.echo(what .. ": trace at index " .. index .. ", tag added")
end

message(1, {
	{ "Received", "from relay.example.org by mx.example.com; Sat, 28 Nov 2026 10:00:00 +0000" },
	{ "Received", "from client.example.org by relay.example.org; Sat, 28 Nov 2026 09:59:58 +0000" },
	{ "From", "sender@example.org" },
	{ "To", "friend@example.com" },
	{ "Subject", "no trace yet" },
}, 3)

message(2, {
	{ "Received", "from relay.example.org by mx.example.com; Sat, 28 Nov 2026 10:00:00 +0000" },
	{ "OPES-System", "http://upstream.example.net/opes" },
	{ "From", "sender@example.org" },
	{ "Subject", "traced upstream" },
}, 2)

message(3, {
	{ "From", "sender@example.org" },
	{ "Subject", "no Received line" },
}, 1)

assert(mt.disconnect(conn) == nil, "disconnect")
mt.echo("make-run-headers.lua: ok")
