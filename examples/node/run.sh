#!/usr/bin/env bash
# run.sh runs the example against a node of its own: it builds invictus,
# starts `invictus serve --demo` on free ports with a new data directory,
# installs the example's pinned packages (npm ci, package-lock.json), runs
# referral.js with the demo's keys of pt.apav and pt.amcv, and stops the
# node. It exits with referral.js's exit code. CI (.ci/run) runs it when
# node is installed. Every wait is bounded: the node must be ready within
# 60 s, and referral.js gives up after TIMEOUT_MS (60 s).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d)"
serve_pid=""
cleanup() {
	if [[ -n "$serve_pid" ]]; then
		kill "$serve_pid" 2>/dev/null || true
		wait "$serve_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

(cd "$root" && go build -o "$work/invictus" ./cmd/invictus)
"$work/invictus" serve --demo --data "$work/data" --listen 127.0.0.1:0 --nats-listen 127.0.0.1:0 \
	--addr-file "$work/addr.json" >"$work/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 1 120); do
	[[ -s "$work/addr.json" ]] && break
	if ! kill -0 "$serve_pid" 2>/dev/null; then
		echo "run.sh: invictus serve stopped:" >&2
		cat "$work/serve.log" >&2
		exit 1
	fi
	sleep 0.5
done
if [[ ! -s "$work/addr.json" ]]; then
	echo "run.sh: invictus serve was not ready within 60 s" >&2
	exit 1
fi
nats="nats://$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).nats)' "$work/addr.json")"

(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
cd "$here"
NATS_URL="$nats" KEYS="$work/data/keys" TIMEOUT_MS="${TIMEOUT_MS:-60000}" node referral.js
