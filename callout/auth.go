package callout

// AuthResults is what a message authentication service (auth-verify) found
// about the message: its DKIM signatures, SPF and DMARC. It is set on the
// Tx for the services after it in the chain, so that a cosmetic service can
// leave a message with a verified signature unchanged and a policy service
// can act on a DMARC failure.
type AuthResults struct {
	// AuthservID is the authserv-id the results were written with.
	AuthservID string
	// DKIM holds one result per signature verified, in header order.
	DKIM []DKIMResult
	// SPF is the SPF result ("pass", "fail", "softfail", "neutral",
	// "none", "temperror", "permerror"; "" when not checked), for
	// SPFDomain (the MAIL FROM domain, or the HELO name for a null sender).
	SPF, SPFDomain string
	// DMARC is the DMARC result ("pass", "fail", "none", "temperror",
	// "permerror"; "" when not checked) for FromDomain, whose policy
	// ("none", "quarantine", "reject") is DMARCPolicy.
	DMARC, DMARCPolicy, FromDomain string
}

// DKIMResult is the result of one DKIM signature.
type DKIMResult struct {
	// Result is "pass", "fail", "neutral", "temperror" or "permerror".
	Result string
	// Domain and Selector are the signature's d= and s=.
	Domain, Selector string
	// Reason explains a result other than pass.
	Reason string
}

// DKIMPass reports whether at least one DKIM signature verified.
func (a *AuthResults) DKIMPass() bool {
	if a == nil {
		return false
	}
	for _, r := range a.DKIM {
		if r.Result == "pass" {
			return true
		}
	}
	return false
}
