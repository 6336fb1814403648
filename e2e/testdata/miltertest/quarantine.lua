-- Run by e2e.TestScenarioQuarantine against opes-milter whose chain has
-- on_failure connect = "quarantine" and whose callout server is down (no
-- shipped service produces Advice Quarantine, so the failure policy is the
-- way to a quarantine). The message is accepted at end of message into the
-- MTA's quarantine, unadapted and traced so.
--
-- Globals set with miltertest -D:
--   MILTER  the milter socket, e.g. inet:10025@127.0.0.1
--   SYSTEM  the OPES-System entry of the configuration
--   PARAMS  the trace parameters after status (privacy-policy), optional

assert(MILTER, "run with -D MILTER=inet:PORT@127.0.0.1")
assert(SYSTEM, "run with -D SYSTEM=<system URI>")

local conn = mt.connect(MILTER, 50, 0.1)
assert(conn, "cannot connect to " .. MILTER)
assert(mt.test_action(conn, SMFIF_QUARANTINE), "milter did not negotiate SMFIF_QUARANTINE")
assert(mt.conninfo(conn, "client.example", "192.0.2.30") == nil, "conninfo")
assert(mt.helo(conn, "client.example") == nil, "helo")

mt.macro(conn, SMFIC_MAIL, "i", "MTQ1")
assert(mt.mailfrom(conn, "<sender@example.org>") == nil, "mailfrom")
assert(mt.getreply(conn) == SMFIR_CONTINUE, "MAIL not continued")
-- The callout server is unreachable from the first RCPT on: the policy lets
-- the recipient through, even the one the recipient policy would refuse.
assert(mt.rcptto(conn, "<blocked@example.com>") == nil, "rcptto")
assert(mt.getreply(conn) == SMFIR_CONTINUE, "RCPT not continued under the quarantine policy")
assert(mt.header(conn, "From", "sender@example.org") == nil, "header")
assert(mt.header(conn, "Subject", "held") == nil, "header")
assert(mt.eoh(conn) == nil, "eoh")
assert(mt.bodystring(conn, "Held while the callout server is down.\r\n") == nil, "body")
assert(mt.eom(conn) == nil, "eom")
local r = mt.getreply(conn)
assert(r == SMFIR_ACCEPT or r == SMFIR_CONTINUE, "end of message not accepted")

assert(mt.eom_check(conn, MT_QUARANTINE), "message not quarantined")
-- opes-milter negotiates SMFIP_HDR_LEADSPC, so it sends the space after the
-- colon itself.
assert(mt.eom_check(conn, MT_HDRINSERT, "OPES-System", " " .. SYSTEM .. "; status=unadapted" .. (PARAMS or "")),
	"no OPES-System line with status=unadapted")
assert(not mt.eom_check(conn, MT_HDRADD, "X-OPES-Tag"), "a service's header was added")
assert(not mt.eom_check(conn, MT_BODYCHANGE), "the body was changed")

mt.disconnect(conn)
mt.echo("quarantine.lua: ok")
