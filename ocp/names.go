package ocp

// The 24 OCP Core message names (RFC 4037 §11). Names are case-sensitive.
const (
	MsgCS   = "CS"   // Connection Start
	MsgCE   = "CE"   // Connection End
	MsgSGC  = "SGC"  // Service Group Created
	MsgSGD  = "SGD"  // Service Group Destroyed
	MsgTS   = "TS"   // Transaction Start
	MsgTE   = "TE"   // Transaction End
	MsgAMS  = "AMS"  // Application Message Start
	MsgAME  = "AME"  // Application Message End
	MsgDUM  = "DUM"  // Data Use Mine
	MsgDUY  = "DUY"  // Data Use Yours
	MsgDPI  = "DPI"  // Data Preservation Interest
	MsgDWSS = "DWSS" // Want Stop Sending Data
	MsgDWSR = "DWSR" // Want Stop Receiving Data
	MsgDSS  = "DSS"  // Stop Sending Data
	MsgDWP  = "DWP"  // Want Data Paused
	MsgDPM  = "DPM"  // Paused My Data
	MsgDWM  = "DWM"  // Want More Data
	MsgNO   = "NO"   // Negotiation Offer
	MsgNR   = "NR"   // Negotiation Response
	MsgPQ   = "PQ"   // Progress Query
	MsgPA   = "PA"   // Progress Answer
	MsgPR   = "PR"   // Progress Report
	MsgAQ   = "AQ"   // Ability Query
	MsgAA   = "AA"   // Ability Answer
)

// Named parameters defined by OCP Core (RFC 4037 §11).
const (
	ParamServices     = "Services"      // AMS
	ParamAsIs         = "As-is"         // DUM
	ParamKept         = "Kept"          // DUM: org-offset org-size
	ParamModp         = "Modp"          // DUM
	ParamSizeRequest  = "Size-request"  // DWM
	ParamSG           = "SG"            // NO, NR
	ParamOfferPending = "Offer-Pending" // NO, NR
	ParamRejects      = "Rejects"       // NR
	ParamUnknowns     = "Unknowns"      // NR
	ParamOrgData      = "Org-Data"      // PA, PR
)

// intern returns a shared string for the well-known names in b, so the
// decoder does not allocate for them, and a fresh string otherwise.
func intern(b []byte) string {
	switch string(b) {
	case MsgCS:
		return MsgCS
	case MsgCE:
		return MsgCE
	case MsgSGC:
		return MsgSGC
	case MsgSGD:
		return MsgSGD
	case MsgTS:
		return MsgTS
	case MsgTE:
		return MsgTE
	case MsgAMS:
		return MsgAMS
	case MsgAME:
		return MsgAME
	case MsgDUM:
		return MsgDUM
	case MsgDUY:
		return MsgDUY
	case MsgDPI:
		return MsgDPI
	case MsgDWSS:
		return MsgDWSS
	case MsgDWSR:
		return MsgDWSR
	case MsgDSS:
		return MsgDSS
	case MsgDWP:
		return MsgDWP
	case MsgDPM:
		return MsgDPM
	case MsgDWM:
		return MsgDWM
	case MsgNO:
		return MsgNO
	case MsgNR:
		return MsgNR
	case MsgPQ:
		return MsgPQ
	case MsgPA:
		return MsgPA
	case MsgPR:
		return MsgPR
	case MsgAQ:
		return MsgAQ
	case MsgAA:
		return MsgAA
	case ParamServices:
		return ParamServices
	case ParamAsIs:
		return ParamAsIs
	case ParamKept:
		return ParamKept
	case ParamModp:
		return ParamModp
	case ParamSizeRequest:
		return ParamSizeRequest
	case ParamSG:
		return ParamSG
	case ParamOfferPending:
		return ParamOfferPending
	case ParamRejects:
		return ParamRejects
	case ParamUnknowns:
		return ParamUnknowns
	case ParamOrgData:
		return ParamOrgData
	case "AM-Part":
		return "AM-Part"
	case "Allow":
		return "Allow"
	case "SMTP-Error":
		return "SMTP-Error"
	case "Add-Header":
		return "Add-Header"
	case "AM-EL":
		return "AM-EL"
	}
	return string(b)
}
