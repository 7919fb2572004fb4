#!/usr/bin/env bash
# check-hsds.sh exports the demo directory as HSDS 3.0 JSON and validates it
# against the Open Referral HSDS 3.0 JSON Schemas (compiled/organization.json,
# compiled/service.json and the modular organization.json) with a real JSON
# Schema validator (santhosh-tekuri/jsonschema, formats asserted), then checks
# that the export imports back to the same directory. It also checks a
# generated directory of 2,000 services.
#
# The schemas are not part of the repository: the script looks for them in
# ../shared/data/hsds-3.0 (relative to the repository root) or in the folder
# given as the first argument, and skips with a message when they are absent.
#
# Usage: scripts/check-hsds.sh [hsds-3.0 folder] [-out export.json]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
schemas="${1:-$root/../shared/data/hsds-3.0}"
shift || true

if [[ ! -f "$schemas/compiled/organization.json" ]]; then
	echo "check-hsds: skipped: no HSDS 3.0 schemas at $schemas (give the folder as the first argument)"
	exit 0
fi
cd "$root"
exec go run ./scripts/hsds -schemas "$schemas" -seed 1 -generated 2000 "$@"
