#!/usr/bin/env bash
# Installs the real peers that the end-to-end tests in e2e/ run against:
#   Postfix (with smtp-sink), swaks, miltertest, SpamAssassin (spamd, spamc), rspamd
#   (run offline by the tests), an independent DKIM verifier (opendkim-tools,
#   python3-dkim with python3-nacl for Ed25519), Cyrus SASL for Postfix's
#   SMTP AUTH (sasl2-bin for saslpasswd2, libsasl2-modules for PLAIN and
#   LOGIN; the tests keep their own sasldb, no saslauthd runs), and
#   Sendmail unpacked into $OPES_SENDMAIL_ROOT (default /opt/opes-milter-peers/sendmail),
#   because Debian's sendmail-bin conflicts with postfix, plus m4 and the
#   libraries the unpacked Sendmail binary needs.
#
# Debian 12, as root, non-interactive and idempotent: what is already there is
# skipped, so a second run takes about a second. It never leaves the system Postfix
# or spamd running: the tests start their own instances on free loopback ports.
set -euo pipefail

SENDMAIL_ROOT=${OPES_SENDMAIL_ROOT:-/opt/opes-milter-peers/sendmail}
PACKAGES=(postfix swaks miltertest spamassassin spamc spamd m4 liblockfile1 libwrap0 systemd
	rspamd opendkim-tools python3-dkim python3-nacl
	clamav-daemon clamav-milter c-icap libc-icap-mod-virus-scan
	sasl2-bin libsasl2-modules)
SENDMAIL_PACKAGES=(sendmail-bin sendmail-cf sendmail-base)

log() { printf 'install-peers: %s\n' "$*"; }
die() { printf 'install-peers: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"

export DEBIAN_FRONTEND=noninteractive
cleanup_paths=()
cleanup() { [ ${#cleanup_paths[@]} -eq 0 ] || rm -rf "${cleanup_paths[@]}"; }
trap cleanup EXIT

updated=0
apt_update_once() {
	if [ "$updated" -eq 0 ]; then
		log "apt-get update"
		apt-get update -qq
		updated=1
	fi
}

# missing_packages prints the packages of $@ that dpkg does not list as installed.
missing_packages() {
	local pkg
	for pkg in "$@"; do
		dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -qx 'install ok installed' ||
			printf '%s\n' "$pkg"
	done
}

# system_postfix_running reports whether the default instance (/etc/postfix) runs.
# The test instances have their own configuration directories and are not touched.
system_postfix_running() {
	[ -f /etc/postfix/main.cf ] && postfix -c /etc/postfix status >/dev/null 2>&1
}

install_packages() {
	local missing
	mapfile -t missing < <(missing_packages "${PACKAGES[@]}")
	if [ ${#missing[@]} -eq 0 ]; then
		log "packages present: ${PACKAGES[*]}"
		return
	fi
	apt_update_once
	# Postfix without a configuration: no /etc/postfix/main.cf, nothing to start.
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	# Keep maintainer scripts from starting the system postfix and spamd services.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		cleanup_paths+=(/usr/sbin/policy-rc.d)
	fi
	log "apt-get install ${missing[*]}"
	apt-get install -y -qq --no-install-recommends \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
		"${missing[@]}" >/dev/null
	if system_postfix_running; then
		log "stopping the system Postfix"
		postfix -c /etc/postfix stop >/dev/null 2>&1 || true
	fi
	if [ -f /run/spamd.pid ] && kill -0 "$(cat /run/spamd.pid)" 2>/dev/null; then
		log "stopping the system spamd"
		kill "$(cat /run/spamd.pid)" || true
	fi
}

sendmail_ready() {
	[ -x "$SENDMAIL_ROOT/usr/libexec/sendmail/sendmail" ] &&
		[ -f "$SENDMAIL_ROOT/usr/share/sendmail/cf/m4/cf.m4" ]
}

unpack_sendmail() {
	if sendmail_ready; then
		log "Sendmail present in $SENDMAIL_ROOT"
		return
	fi
	apt_update_once
	local tmp new
	tmp=$(mktemp -d)
	new="$SENDMAIL_ROOT.new.$$"
	cleanup_paths+=("$tmp" "$new")
	# apt-get download writes as the _apt user when it can.
	chown _apt "$tmp" 2>/dev/null || true
	log "apt-get download ${SENDMAIL_PACKAGES[*]}"
	(cd "$tmp" && apt-get download -qq "${SENDMAIL_PACKAGES[@]}" >/dev/null)
	mkdir -p "$new"
	local deb
	for deb in "$tmp"/*.deb; do
		dpkg-deb -x "$deb" "$new"
	done
	[ -x "$new/usr/libexec/sendmail/sendmail" ] || die "sendmail binary missing from ${SENDMAIL_PACKAGES[*]}"
	rm -rf "$SENDMAIL_ROOT"
	mkdir -p "$(dirname "$SENDMAIL_ROOT")"
	mv -T "$new" "$SENDMAIL_ROOT"
	log "Sendmail unpacked into $SENDMAIL_ROOT"
}

check() {
	local bin
	for bin in postfix smtp-sink swaks miltertest spamd spamc m4 unshare systemd-analyze rspamd opendkim-testmsg \
		clamd clamav-milter c-icap dkimsign nsenter saslpasswd2; do
		command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || die "$bin missing after install"
	done
	/usr/bin/python3 -c 'import dkim, nacl' || die "python3-dkim or python3-nacl missing after install"
	[ -f /usr/lib/x86_64-linux-gnu/c_icap/virus_scan.so ] || die "c-icap's virus_scan module missing after install"
	getent passwd clamav >/dev/null || die "the clamav user is missing after install"
	local plugin
	for plugin in libplain.so liblogin.so libsasldb.so; do
		[ -f "/usr/lib/x86_64-linux-gnu/sasl2/$plugin" ] || die "Cyrus SASL's $plugin missing after install"
	done
	postconf -a | grep -qx cyrus || die "Postfix lacks Cyrus SASL support"
	if ldd "$SENDMAIL_ROOT/usr/libexec/sendmail/sendmail" | grep -q 'not found'; then
		ldd "$SENDMAIL_ROOT/usr/libexec/sendmail/sendmail" | grep 'not found' >&2
		die "the unpacked Sendmail lacks libraries"
	fi
}

install_packages
unpack_sendmail
check
log "done"
