package mapping

import "time"

// Defaults of the spam and authentication services (defaults.go holds
// the others).
const (
	DefaultSpamdAddress      = "127.0.0.1:783"
	DefaultRspamdAddress     = "127.0.0.1:11333"
	DefaultScanTimeout       = 30 * time.Second
	DefaultScanConnections   = 8
	DefaultSpamdMaxSize      = 512 << 10 // spamc's 500 KiB, rounded
	DefaultRspamdMaxSize     = 20 << 20
	DefaultSpamHeaderPrefix  = "X-Spam-"
	DefaultSpamTag           = 2.0 // amavisd-new's $sa_tag_level_deflt
	DefaultSpamTag2          = 6.2 // $sa_tag2_level_deflt
	DefaultSpamKill          = 6.9 // $sa_kill_level_deflt
	DefaultSpamSubjectPrefix = "***SPAM***"
	DefaultSpamReply         = "550 5.7.1 Message rejected as spam"
	DefaultSpamTempfailReply = "451 4.7.1 Try again later"
	DefaultRspamdSpamHeader  = "X-Spam"
	DefaultRspamdMaxResponse = 1 << 20
	DefaultAuthTimeout       = 10 * time.Second
	DefaultAuthSignatures    = 5
	DefaultDMARCReply        = "550 5.7.1 Rejected by the sender domain's DMARC policy"
)

func (s *rawSpamd) setDefaults() {
	s.rawScanner = rawScanner{Address: DefaultSpamdAddress, Timeout: duration(DefaultScanTimeout),
		MaxConnections: DefaultScanConnections, MaxSize: DefaultSpamdMaxSize, DKIM: DKIMSkip}
	s.Request = "SYMBOLS"
	s.HeaderPrefix = DefaultSpamHeaderPrefix
	s.Tag, s.Tag2, s.Kill = DefaultSpamTag, DefaultSpamTag2, DefaultSpamKill
	s.Tag2Action = []string{"subject"}
	s.SubjectPrefix = DefaultSpamSubjectPrefix
	s.KillAction = "reject"
	s.Reply = DefaultSpamReply
}

func (s *rawRspamd) setDefaults() {
	s.rawScanner = rawScanner{Address: DefaultRspamdAddress, Timeout: duration(DefaultScanTimeout),
		MaxConnections: DefaultScanConnections, MaxSize: DefaultRspamdMaxSize, DKIM: DKIMSkip}
	s.Greylist = "accept"
	s.SpamHeader = DefaultRspamdSpamHeader
	s.SubjectPrefix = DefaultSpamSubjectPrefix
	s.RejectReply = DefaultSpamReply
	s.TempfailReply = DefaultSpamTempfailReply
	s.MaxResponse = DefaultRspamdMaxResponse
}

func (a *rawAuthVerify) setDefaults() {
	a.Timeout = duration(DefaultAuthTimeout)
	a.MaxSignatures = DefaultAuthSignatures
	a.DKIM, a.SPF, a.DMARC = true, true, true
	a.DMARCReject = "none"
	a.Reply = DefaultDMARCReply
}

func (d *rawDKIMSign) setDefaults() {
	d.Headers = DefaultDKIMSignHeaders()
}

func (s *rawSubjectTag) setDefaults() { s.DKIM = DKIMSkip }

func (d *rawDisclaimer) setDefaults() { d.DKIM = DKIMSkip }
