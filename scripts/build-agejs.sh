#!/usr/bin/env bash
# Rebuilds adapters/web/static/age.js, the age implementation the pages
# seal and open case files with, from the age-encryption package (typage,
# BSD-3-Clause) at the version pinned in scripts/agejs/package.json and
# package-lock.json, bundled once with esbuild into one ES module. The
# result is committed: running or testing INVICTUS needs no build step and
# no Node. Run it (or `make agejs`) only to change the version; the test
# TestAgeBundle checks the committed file's banner and that it has no eval.
set -euo pipefail
cd "$(dirname "$0")/agejs"
npm ci --no-audit --no-fund --silent
version=$(node -p 'require("./node_modules/age-encryption/package.json").version')
esbuild_version=$(node_modules/.bin/esbuild --version)
out=../../adapters/web/static
node_modules/.bin/esbuild entry.js --bundle --format=esm --minify --target=es2022 \
	--legal-comments=none --charset=utf8 \
	--banner:js="/*! age-encryption ${version} (typage, BSD-3-Clause, see age.js.LICENSE.txt), bundled with esbuild ${esbuild_version} by scripts/build-agejs.sh */" \
	--outfile="$out/age.js"
# The bundle holds typage and its dependencies (@noble/*, @scure/base,
# MIT): every licence goes into one file beside it.
{
	for pkg in age-encryption @noble/ciphers @noble/curves @noble/hashes @noble/post-quantum @scure/base; do
		v=$(node -p "require('./node_modules/$pkg/package.json').version")
		printf '==== %s %s ====\n\n' "$pkg" "$v"
		cat "node_modules/$pkg/LICENSE"
		printf '\n'
	done
} >"$out/age.js.LICENSE.txt"
echo "wrote $out/age.js (age-encryption $version, esbuild $esbuild_version)"
