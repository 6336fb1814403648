package bridge

import (
	"io"
	"slices"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// This file holds how the outcome reads the server's answers once its AME
// arrived: copies taken under the exchange's lock (answers, dataAnswers),
// so the outcome is computed without it.

// answers is a copy of the server's answers to the envelope and its
// message-wide parameters.
type answers struct {
	dataReply  *Reply // SMTP-Error on a data part
	mail       partAnswer
	rcpts      []partAnswer
	added      []string // recipients the server added
	addHeaders []headerField
	topHeaders []headerField // Add-Header-At: top
	advice     ocpsmtp.Advice
}

// answers returns a copy of the server's answers to the envelope.
func (x *exchange) answers() answers {
	x.mu.Lock()
	defer x.mu.Unlock()
	return answers{
		dataReply: x.dataReply, mail: x.mail, rcpts: slices.Clone(x.rcpts), added: slices.Clone(x.added),
		addHeaders: slices.Clone(x.addHeaders), topHeaders: slices.Clone(x.topHeaders), advice: x.advice,
	}
}

// dataAnswer is the server's answer to one adaptive data-part instance
// that changes it.
type dataAnswer struct {
	part  ocpsmtp.Part
	index string    // AM-Index, "" for single-instance parts
	r     io.Reader // the adapted octets
	size  int64
}

// dataAnswers returns the answers that change an adaptive data-part
// instance, in the order the instances were sent. Answers given before the
// flow stopped early are completed with the original (completeWithOriginal);
// an unanswered single-instance adaptive part is a protocol error, unless
// the flow stopped early.
func (x *exchange) dataAnswers() ([]dataAnswer, *AdaptationError) {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []dataAnswer
	for _, d := range x.insts {
		if !x.adaptive(d.part) {
			continue
		}
		if !d.answered {
			if d.part.Instanced() || x.stopped || x.partial {
				continue // unanswered instances and parts after a stop stay unchanged
			}
			return nil, protocolError("adaptive %s was not answered", d.part)
		}
		if x.partial || x.keepRest {
			x.completeWithOriginal(d)
		}
		if d.unchanged(x.dataStart) {
			continue
		}
		r, err := x.content(d)
		if err != nil {
			return nil, failure(FailLocal, err)
		}
		out = append(out, dataAnswer{part: d.part, index: d.index, r: r, size: d.answerSize()})
	}
	return out, nil
}
