-- Runs against `make run` (contrib/opes-milter.toml): body replacements of
-- the disclaimer and attachment-filter services, each checked byte for byte
-- with mt.eom_check(MT_BODYCHANGE). Five messages on one connection:
--   1. multipart/alternative: the disclaimer goes after the text of the
--      text/plain part and, escaped, before </body> of the text/html part;
--   2. multipart/mixed with a quoted-printable ISO-8859-1 text part and a
--      text attachment: the footer is added to the first part in its own
--      encoding, the attachment is left as it is;
--   3. a PDF alone: no text to add to, nothing to remove, so no body
--      replacement (but the trace lines all the same);
--   4. a single-part text message: the footer goes on a line of its own and
--      the body still ends with a line break;
--   5. a base64 UTF-8 text part: the footer is added to the decoded text,
--      which is encoded again in lines of 76.
--
-- Globals set with miltertest -D (optional):
--   MILTER  the milter socket; default inet:8890@127.0.0.1

local socket = MILTER or "inet:8890@127.0.0.1"
local FOOTER = "This message was processed by an OPES system."

local conn = mt.connect(socket, 50, 0.1)
assert(conn, "cannot connect to " .. socket)
assert(mt.test_action(conn, SMFIF_CHGBODY), "milter did not negotiate SMFIF_CHGBODY")
assert(mt.conninfo(conn, "client.example", "192.0.2.41") == nil, "conninfo")
assert(mt.helo(conn, "client.example") == nil, "helo")

-- message sends one message and returns after its end of message.
local function message(n, content_type, extra, body)
	local what = "message " .. n
	mt.macro(conn, SMFIC_MAIL, "i", "MTBODY" .. n)
	assert(mt.mailfrom(conn, "<sender@example.org>") == nil, "mailfrom")
	assert(mt.getreply(conn) == SMFIR_CONTINUE, what .. ": MAIL not continued")
	assert(mt.rcptto(conn, "<friend@example.com>") == nil, "rcptto")
	assert(mt.getreply(conn) == SMFIR_CONTINUE, what .. ": RCPT not continued")
	assert(mt.header(conn, "From", "sender@example.org") == nil, "header")
	assert(mt.header(conn, "Subject", "body " .. n) == nil, "header")
	assert(mt.header(conn, "MIME-Version", "1.0") == nil, "header")
	assert(mt.header(conn, "Content-Type", content_type) == nil, "header")
	for _, f in ipairs(extra) do
		assert(mt.header(conn, f[1], f[2]) == nil, "header " .. f[1])
	end
	assert(mt.eoh(conn) == nil, "eoh")
	assert(mt.bodystring(conn, body) == nil, "body")
	assert(mt.eom(conn) == nil, "eom")
	local r = mt.getreply(conn)
	assert(r == SMFIR_ACCEPT or r == SMFIR_CONTINUE, what .. ": end of message not accepted")
	assert(mt.eom_check(conn, MT_HDRINSERT, "OPES-System"), what .. ": no OPES-System trace line")
end

message(1, "multipart/alternative; boundary=\"a1\"", {},
	"--a1\r\n" ..
	"Content-Type: text/plain; charset=utf-8\r\n" ..
	"\r\n" ..
	"Hi <there> & bye.\r\n" ..
	"--a1\r\n" ..
	"Content-Type: text/html; charset=utf-8\r\n" ..
	"\r\n" ..
	"<html><body><p>Hi &lt;there&gt; &amp; bye.</p></body></html>\r\n" ..
	"--a1--\r\n")
assert(mt.eom_check(conn, MT_BODYCHANGE,
	"--a1\r\n" ..
	"Content-Type: text/plain; charset=utf-8\r\n" ..
	"\r\n" ..
	"Hi <there> & bye.\r\n" ..
	FOOTER .. "\r\n" ..
	"--a1\r\n" ..
	"Content-Type: text/html; charset=utf-8\r\n" ..
	"\r\n" ..
	"<html><body><p>Hi &lt;there&gt; &amp; bye.</p><p>" .. FOOTER .. "</p>\r\n</body></html>\r\n" ..
	"--a1--\r\n"), "message 1: alternative parts not both given the footer")
mt.echo("message 1: footer in the text and the HTML part")

message(2, "multipart/mixed; boundary=\"m1\"", {},
	"--m1\r\n" ..
	"Content-Type: text/plain; charset=iso-8859-1\r\n" ..
	"Content-Transfer-Encoding: quoted-printable\r\n" ..
	"\r\n" ..
	"Gr=FC=DFe aus M=FCnchen.\r\n" ..
	"--m1\r\n" ..
	"Content-Type: text/plain; name=\"notes.txt\"\r\n" ..
	"Content-Disposition: attachment; filename=\"notes.txt\"\r\n" ..
	"\r\n" ..
	"Attached notes stay as they are.\r\n" ..
	"--m1--\r\n")
assert(mt.eom_check(conn, MT_BODYCHANGE,
	"--m1\r\n" ..
	"Content-Type: text/plain; charset=iso-8859-1\r\n" ..
	"Content-Transfer-Encoding: quoted-printable\r\n" ..
	"\r\n" ..
	"Gr=FC=DFe aus M=FCnchen.\r\n" ..
	FOOTER .. "\r\n" ..
	"--m1\r\n" ..
	"Content-Type: text/plain; name=\"notes.txt\"\r\n" ..
	"Content-Disposition: attachment; filename=\"notes.txt\"\r\n" ..
	"\r\n" ..
	"Attached notes stay as they are.\r\n" ..
	"--m1--\r\n"), "message 2: footer not added to the quoted-printable part alone")
mt.echo("message 2: footer in the quoted-printable part, attachment untouched")

message(3, "application/pdf; name=\"report.pdf\"", { { "Content-Transfer-Encoding", "base64" } },
	"JVBERi0xLjQKJcOkw7zDtsOfCjEgMCBvYmoKPDwvVHlwZS9DYXRhbG9nPj4KZW5kb2JqCg==\r\n")
assert(not mt.eom_check(conn, MT_BODYCHANGE), "message 3: a PDF-only body was replaced")
mt.echo("message 3: PDF alone left as it is")

message(4, "text/plain; charset=us-ascii", {}, "Line one.\r\nLine two.\r\n")
assert(mt.eom_check(conn, MT_BODYCHANGE, "Line one.\r\nLine two.\r\n" .. FOOTER .. "\r\n"),
	"message 4: footer not on a line of its own, or the final line break lost")
mt.echo("message 4: footer after the single text part")

-- "Grüße aus München.\r\n" in UTF-8, base64.
message(5, "multipart/mixed; boundary=\"m2\"", {},
	"--m2\r\n" ..
	"Content-Type: text/plain; charset=utf-8\r\n" ..
	"Content-Transfer-Encoding: base64\r\n" ..
	"\r\n" ..
	"R3LDvMOfZSBhdXMgTcO8bmNoZW4uDQo=\r\n" ..
	"--m2--\r\n")
-- The same text with FOOTER .. "\r\n" after it, base64.
assert(mt.eom_check(conn, MT_BODYCHANGE,
	"--m2\r\n" ..
	"Content-Type: text/plain; charset=utf-8\r\n" ..
	"Content-Transfer-Encoding: base64\r\n" ..
	"\r\n" ..
	"R3LDvMOfZSBhdXMgTcO8bmNoZW4uDQpUaGlzIG1lc3NhZ2Ugd2FzIHByb2Nlc3NlZCBieSBhbiBP\r\n" ..
	"UEVTIHN5c3RlbS4NCg==\r\n" ..
	"--m2--\r\n"), "message 5: footer not added to the base64 part")
mt.echo("message 5: footer in the base64 part")

assert(mt.disconnect(conn) == nil, "disconnect")
mt.echo("make-run-body.lua: ok")
