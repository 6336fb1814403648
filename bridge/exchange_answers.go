package bridge

import (
	"io"
	"slices"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// This file holds how the outcome reads the server's answers once its AME
// arrived: a copy taken under the exchange's lock (answers), so the
// outcome is computed without it.

// answers is a copy of the server's answers: to the envelope, its
// message-wide parameters and the data parts, taken at once.
type answers struct {
	dataReply  *Reply // SMTP-Error on a data part
	mail       partAnswer
	rcpts      []partAnswer
	added      []string // recipients the server added
	addHeaders []headerField
	topHeaders []headerField // Add-Header-At: top
	advice     ocpsmtp.Advice
	data       []dataAnswer     // see dataAnswers
	dataFail   *AdaptationError // an answer to the data parts that is invalid
}

// answers returns a copy of the server's answers, all taken under one
// hold of the lock.
func (x *exchange) answers() answers {
	x.mu.Lock()
	defer x.mu.Unlock()
	a := answers{
		dataReply: x.dataReply, mail: x.mail, rcpts: slices.Clone(x.rcpts), added: slices.Clone(x.added),
		addHeaders: slices.Clone(x.addHeaders), topHeaders: slices.Clone(x.topHeaders), advice: x.advice,
	}
	a.data, a.dataFail = x.dataAnswers()
	return a
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
// the flow stopped early; call with mu held.
func (x *exchange) dataAnswers() ([]dataAnswer, *AdaptationError) {
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
