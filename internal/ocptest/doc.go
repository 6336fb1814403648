// Package ocptest is the one scripted OCP peer of the project's tests, for
// either role:
//
//   - Server is a callout server on a loopback port whose transactions a
//     Script answers (Answers builds the usual scripts: per-part answers,
//     refusals, replacements, hangs); it records what the processor sent.
//     The bridge tests run opes-milter's processor against it.
//   - Processor plays a processor (opes-milter's side) against a callout
//     server: it negotiates a profile, sends parts as opes-milter does and
//     collects the answers (Process runs a whole transaction). The callout
//     and cmd/opes-callout tests run opes-callout against it.
//   - ReadTranscript reads a golden transcript of testdata/profile.
//
// It uses ocp and ocp/ocpsmtp only, so that bridge and callout tests may
// both import it (internal/layering).
package ocptest
