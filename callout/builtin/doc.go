// Package builtin holds the OPES mail services that opes-callout ships:
// RecipientPolicy, SenderRewrite, HeaderTag, SubjectTag, Disclaimer,
// AttachmentFilter, Command and SizeLimit. NewService and NewServices build
// them from the [callout] configuration of package mapping. Each is a
// callout.Service and uses only the public API of package callout, as a
// third party's service would.
package builtin
