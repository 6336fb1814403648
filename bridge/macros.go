package bridge

import "github.com/opes-milter/opes-milter/ocp/ocpsmtp"

// optMacro pairs an AM-OPT keyword of the profile with the milter macro
// that holds its value.
type optMacro struct {
	key, macro string
}

// optMacros returns the AM-OPT keywords with the milter macro that holds
// each value, in the order the bridge sends them (docs/profile.md 5.4).
// The keywords are the profile's (ocpsmtp); the macro names are the MTA's,
// read through Macros.
func optMacros() []optMacro {
	return []optMacro{
		{ocpsmtp.OptTLSVersion, "{tls_version}"},
		{ocpsmtp.OptTLSCipher, "{cipher}"},
		{ocpsmtp.OptTLSCipherBits, "{cipher_bits}"},
		{ocpsmtp.OptAuthType, "{auth_type}"},
		{ocpsmtp.OptAuthAuthen, "{auth_authen}"},
		{ocpsmtp.OptAuthAuthor, "{auth_author}"},
		{ocpsmtp.OptQueueID, "i"},
		{ocpsmtp.OptDaemonName, "{daemon_name}"},
		{ocpsmtp.OptClientName, "{client_name}"},
	}
}
