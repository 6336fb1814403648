-- Runs against `make run` (contrib/opes-milter.toml): the services the shipped
-- configuration demonstrates, checked with mt.eom_check. One message with a
-- text part and a .exe attachment to two recipients:
--   * blocked@example.com is refused at RCPT with 550 5.1.1 (recipient-policy);
--   * the message is tagged with X-OPES-Tag (header-tag) and traced
--     (OPES-System, OPES-Via inserted by opes-milter);
--   * the text part gets the disclaimer and the .exe part is removed, as one
--     body replacement in which every other byte is unchanged.

local socket = MILTER or "inet:8890@127.0.0.1"
local conn = mt.connect(socket, 50, 0.1)
assert(conn, "cannot connect to " .. socket)
assert(mt.conninfo(conn, "client.example", "192.0.2.20") == nil, "conninfo")
assert(mt.helo(conn, "client.example") == nil, "helo")

mt.macro(conn, SMFIC_MAIL, "i", "MTSVC1")
assert(mt.mailfrom(conn, "<sender@example.org>") == nil, "mailfrom")
assert(mt.getreply(conn) == SMFIR_CONTINUE, "MAIL not continued")
assert(mt.rcptto(conn, "<blocked@example.com>") == nil, "rcptto blocked")
assert(mt.getreply(conn) == SMFIR_REPLYCODE, "blocked@example.com was not refused with a reply code")
assert(mt.rcptto(conn, "<friend@example.com>") == nil, "rcptto friend")
assert(mt.getreply(conn) == SMFIR_CONTINUE, "friend@example.com was not continued")

assert(mt.header(conn, "From", "sender@example.org") == nil, "header")
assert(mt.header(conn, "To", "friend@example.com") == nil, "header")
assert(mt.header(conn, "Subject", "services") == nil, "header")
assert(mt.header(conn, "MIME-Version", "1.0") == nil, "header")
assert(mt.header(conn, "Content-Type", "multipart/mixed; boundary=\"b1\"") == nil, "header")
assert(mt.eoh(conn) == nil, "eoh")
assert(mt.bodystring(conn,
	"This is a MIME message.\r\n" ..
	"--b1\r\n" ..
	"Content-Type: text/plain; charset=us-ascii\r\n" ..
	"\r\n" ..
	"Hello, see the attachment.\r\n" ..
	"--b1\r\n" ..
	"Content-Type: application/octet-stream; name=\"tool.exe\"\r\n" ..
	"Content-Disposition: attachment; filename=\"tool.exe\"\r\n" ..
	"Content-Transfer-Encoding: base64\r\n" ..
	"\r\n" ..
	"TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAA\r\n" ..
	"--b1--\r\n") == nil, "body")
assert(mt.eom(conn) == nil, "eom")
local r = mt.getreply(conn)
assert(r == SMFIR_ACCEPT or r == SMFIR_CONTINUE, "end of message not accepted")

assert(mt.eom_check(conn, MT_HDRINSERT, "OPES-System"), "no OPES-System trace line")
assert(mt.eom_check(conn, MT_HDRINSERT, "OPES-Via"), "no OPES-Via trace line")
assert(mt.eom_check(conn, MT_HDRADD, "X-OPES-Tag"), "no X-OPES-Tag header")
assert(mt.eom_check(conn, MT_BODYCHANGE,
	"This is a MIME message.\r\n" ..
	"--b1\r\n" ..
	"Content-Type: text/plain; charset=us-ascii\r\n" ..
	"\r\n" ..
	"Hello, see the attachment.\r\n" ..
	"This message was processed by an OPES system.\r\n" ..
	"--b1--\r\n"), "body not replaced with the disclaimer added and the .exe part removed")

mt.disconnect(conn)
