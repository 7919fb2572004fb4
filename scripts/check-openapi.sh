#!/usr/bin/env bash
# check-openapi.sh lints the OpenAPI document of the HTTP API with Redocly
# CLI (@redocly/cli, pinned in scripts/package.json) and its recommended
# rules, which include validating the document against the OpenAPI 3.1
# specification and resolving every $ref. It prints every problem and exits
# non-zero when there is an error; warnings are printed but do not fail.
# Then it generates TypeScript types from the document with
# openapi-typescript and type-checks openapi-command.ts against them.
#
# Without an argument it lints the document exactly as a node serves it at
# /v1/openapi.json: schemas/openapi.yaml bundled with the payload schemas
# by `invictus openapi` (built with go run), saved as
# scripts/openapi.bundled.json (ignored by git; .redocly.lint-ignore.yaml
# names it).
# The payload schemas refer to each other by their URN $ids
# (urn:invictus:schema:defs#/$defs/...), which only the bundled document
# resolves for tools that read files. With an argument it lints that file.
#
# Needs Go, node >= 20.19 and npm; the first run installs the pinned
# packages of scripts/package.json into scripts/node_modules.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ $# -gt 0 ]]; then
	doc="$(realpath "$1")"
else
	doc="$here/openapi.bundled.json"
	(cd "$here/.." && go run ./cmd/invictus openapi) >"$doc.tmp"
	mv "$doc.tmp" "$doc"
fi

if [[ ! -f "$doc" ]]; then
	echo "check-openapi: $doc: no such file" >&2
	exit 2
fi
if [[ ! -x "$here/node_modules/.bin/redocly" || ! -x "$here/node_modules/.bin/openapi-typescript" ]]; then
	echo "check-openapi: installing @redocly/cli into $here/node_modules" >&2
	if [[ -f "$here/package-lock.json" ]]; then
		(cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >&2
	else
		(cd "$here" && npm install --no-audit --no-fund --loglevel=error) >&2
	fi
fi

# No telemetry, no update check: the check runs offline in CI.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
"$here/node_modules/.bin/redocly" lint --config "$here/redocly.yaml" --format stylish "$doc"

# A generated TypeScript client can use the document: openapi-typescript
# turns it into types, and openapi-command.ts, a structured-mode command
# with a typed payload, must type-check against them (tsc --strict).
"$here/node_modules/.bin/openapi-typescript" "$doc" -o "$here/openapi.bundled.d.ts" --silent
"$here/node_modules/.bin/tsc" --noEmit --strict --target es2020 --module commonjs "$here/openapi-command.ts"
echo "check-openapi: openapi-command.ts type-checks against the types openapi-typescript generated"
