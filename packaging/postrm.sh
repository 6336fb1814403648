#!/bin/sh
# postrm of the opes-milter .deb: let systemd forget the units. The users
# stay (files they own may remain); purge removes the configuration (dpkg
# does, as a conffile).
set -e
if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
exit 0
