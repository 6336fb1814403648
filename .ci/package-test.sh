#!/usr/bin/env bash
# The .deb round trip of `make test` (make package-test): installs the newest
# build/opes-milter_*.deb with dpkg into a scratch root (dpkg --root, the
# maintainer scripts run for that root: systemd-sysusers --root), checks what
# is installed (binaries under /usr/bin, manual pages, units naming
# /usr/bin, the sysusers group membership, the configuration as a conffile of
# mode 0640 and group opes-milter), runs the installed binaries' version and
# check on the installed configuration, then purges the package and checks
# that nothing of it is left.
set -euo pipefail
cd "$(dirname "$0")/.."
deb=$(ls -t build/opes-milter_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || { echo "no build/opes-milter_*.deb: run make deb" >&2; exit 1; }

root=$(mktemp -d /tmp/opes-deb-root.XXXXXX)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/etc"
: > "$root/var/lib/dpkg/status"
: > "$root/etc/passwd"; : > "$root/etc/group"; : > "$root/etc/shadow"; : > "$root/etc/gshadow"
dpkg=(dpkg --root="$root" --force-script-chrootless --force-not-root --log=/dev/null)

fail() { echo "package-test: $*" >&2; exit 1; }

"${dpkg[@]}" -i "$deb" >/dev/null
echo "ok   installed $(basename "$deb") into $root"

for f in usr/bin/opes-milter usr/bin/opes-callout; do
	[ -x "$root/$f" ] || fail "/$f is not installed or not executable"
done
for f in usr/share/man/man8/opes-milter.8 usr/share/man/man8/opes-callout.8 \
	usr/lib/sysusers.d/opes-milter.conf usr/share/doc/opes-milter/LICENSE; do
	[ -s "$root/$f" ] || fail "/$f is missing"
done
grep -q '^\.TH OPES-MILTER 8' "$root/usr/share/man/man8/opes-milter.8" || fail "opes-milter.8 is no manual page"
grep -q '^\.SS opes\\-milter try \[flags\] MESSAGE' "$root/usr/share/man/man8/opes-milter.8" || fail "opes-milter.8 lacks try"
if command -v groff >/dev/null; then
	out=$(groff -man -Tutf8 -ww -z "$root/usr/share/man/man8/opes-milter.8" 2>&1) || fail "groff: $out"
	[ -z "$out" ] || fail "groff warns about opes-milter.8: $out"
fi
for u in opes-milter opes-callout; do
	unit="$root/usr/lib/systemd/system/$u.service"
	grep -q "^ExecStart=/usr/bin/$u run -config /etc/opes-milter/opes-milter.toml$" "$unit" || fail "$u.service does not run /usr/bin/$u"
	grep -q "^ExecStartPre=/usr/bin/$u check -config /etc/opes-milter/opes-milter.toml$" "$unit" || fail "$u.service does not check first"
	! grep -q '^Exec.*\(@BINDIR@\|/usr/local\)' "$unit" || fail "$u.service still names @BINDIR@ or /usr/local"
done

conf=$root/etc/opes-milter/opes-milter.toml
[ "$(stat -c %a "$conf")" = 640 ] || fail "the configuration has mode $(stat -c %a "$conf"), want 640"
dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Conffiles}\n' opes-milter | grep -q ' /etc/opes-milter/opes-milter.toml ' ||
	fail "the configuration is not a conffile"
gid=$(awk -F: '$1 == "opes-milter" { print $3 }' "$root/etc/group")
[ -n "$gid" ] || fail "postinst created no group opes-milter"
[ "$(stat -c %g "$conf")" = "$gid" ] || fail "the configuration's group is $(stat -c %g "$conf"), want opes-milter ($gid)"
grep -q '^opes-milter:[^:]*:[0-9]*:\(.*,\)\?opes-callout\(,.*\)\?$' "$root/etc/group" ||
	fail "opes-callout is not a member of the group opes-milter: $(grep '^opes-milter:' "$root/etc/group")"
grep -q '^opes-callout:' "$root/etc/passwd" || fail "postinst created no user opes-callout"
echo "ok   files, units, manual pages, users and the conffile"

"$root/usr/bin/opes-milter" version | grep -q '^opes-milter ' || fail "opes-milter version"
"$root/usr/bin/opes-milter" check -config "$conf" >/dev/null || fail "opes-milter check of the installed configuration"
"$root/usr/bin/opes-callout" check -config "$conf" >/dev/null || fail "opes-callout check of the installed configuration"
echo "ok   the installed opes-milter and opes-callout check the installed configuration"

"${dpkg[@]}" -P opes-milter >/dev/null
left=$(cd "$root" && find usr etc/opes-milter -mindepth 1 \( -type f -o -type l \) 2>/dev/null || true)
[ -z "$left" ] || fail "left after purge: $left"
echo "ok   purged; nothing of the package is left"
