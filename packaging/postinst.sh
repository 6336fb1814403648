#!/bin/sh
# postinst of the opes-milter .deb: create the users (systemd-sysusers), give
# the configuration to the group opes-milter, and let systemd see the units.
# Under "dpkg --root" (DPKG_ROOT set) the users are created in that root.
set -e
root="${DPKG_ROOT:-}"
case "$1" in
configure)
	if command -v systemd-sysusers >/dev/null 2>&1; then
		if [ -n "$root" ]; then
			systemd-sysusers --root="$root" "$root/usr/lib/sysusers.d/opes-milter.conf"
		else
			systemd-sysusers /usr/lib/sysusers.d/opes-milter.conf
		fi
	fi
	gid=$(awk -F: '$1 == "opes-milter" { print $3 }' "$root/etc/group" 2>/dev/null || true)
	if [ -n "$gid" ]; then
		chgrp "$gid" "$root/etc/opes-milter" "$root/etc/opes-milter/opes-milter.toml"
	fi
	if [ -z "$root" ] && [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
	fi
	;;
esac
exit 0
