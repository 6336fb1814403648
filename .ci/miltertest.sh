#!/usr/bin/env bash
# Starts `make run` (opes-milter on inet:127.0.0.1:8890 and opes-callout on
# 127.0.0.1:8891 with contrib/opes-milter.toml), runs every
# testdata/miltertest/make-run*.lua script against it with miltertest, and
# stops the daemons again. Fails loudly, printing the daemons' log.
set -uo pipefail
cd "$(dirname "$0")/.."
command -v miltertest >/dev/null || { echo "miltertest is not installed: run make deps" >&2; exit 1; }

log=$(mktemp)
setsid make --no-print-directory run >"$log" 2>&1 &
runpid=$!
cleanup() {
	kill -TERM -- "-$runpid" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$runpid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL -- "-$runpid" 2>/dev/null
	rm -f "$log"
}
trap cleanup EXIT

ready=0
for _ in $(seq 150); do
	if (exec 3<>/dev/tcp/127.0.0.1/8890) 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/8891) 2>/dev/null; then ready=1; break; fi
	kill -0 "$runpid" 2>/dev/null || break
	sleep 0.2
done
if [ "$ready" != 1 ]; then
	echo "make run did not start listening on 8890/8891; its output:" >&2; cat "$log" >&2; exit 1
fi

rc=0; n=0; fails=0
for script in testdata/miltertest/make-run*.lua; do
	n=$((n+1))
	if out=$(miltertest -s "$script" 2>&1); then
		echo "ok   miltertest $script"
	else
		rc=1; fails=$((fails+1)); echo "FAIL miltertest $script"; echo "$out"
	fi
done
if [ "$rc" != 0 ]; then echo "--- make run output:"; cat "$log"; fi
echo "miltertest: $((n - fails)) passed, $fails failed"
exit $rc
