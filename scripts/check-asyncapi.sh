#!/usr/bin/env bash
# check-asyncapi.sh validates schemas/asyncapi.yaml (or the file given as the
# first argument) with the AsyncAPI project's own parser, @asyncapi/parser,
# and prints every diagnostic. It exits non-zero when the document has an
# error or cannot be parsed; warnings and hints are printed but do not fail.
#
# The payload schemas are JSON Schema 2020-12, a format @asyncapi/parser does
# not know by itself (it would skip them with a warning). The script registers
# a schema parser for "application/schema+json;version=draft-2020-12" that
# checks each payload, with its $refs resolved, against the 2020-12
# meta-schema and compiles it with Ajv in strict mode, so a broken payload
# schema is an error too.
#
# Needs node >= 18 and npm; the first run installs the pinned packages of
# scripts/package.json into scripts/node_modules.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
doc="$(realpath "${1:-$here/../schemas/asyncapi.yaml}")"

if [[ ! -f "$doc" ]]; then
	echo "check-asyncapi: $doc: no such file" >&2
	exit 2
fi
if [[ ! -d "$here/node_modules/@asyncapi/parser" || ! -d "$here/node_modules/ajv" ]]; then
	echo "check-asyncapi: installing @asyncapi/parser into $here/node_modules" >&2
	if [[ -f "$here/package-lock.json" ]]; then
		(cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >&2
	else
		(cd "$here" && npm install --no-audit --no-fund --loglevel=error) >&2
	fi
fi

cd "$here"
exec node - "$doc" <<'JS'
'use strict';
const { Parser, fromFile, DiagnosticSeverity } = require('@asyncapi/parser');
const Ajv2020 = require('ajv/dist/2020').default;
const addFormats = require('ajv-formats').default;

const doc = process.argv[2];
const draft2020 = 'application/schema+json;version=draft-2020-12';

// checkSchema2020 returns the problems of one JSON Schema 2020-12 payload:
// meta-schema violations, then anything Ajv refuses to compile in strict mode
// (unknown keywords and formats, bad patterns, unresolved $refs).
function checkSchema2020(input) {
  const ajv = new Ajv2020({
    allErrors: true,
    strictSchema: true,
    strictNumbers: true,
    strictTypes: false,
    strictRequired: false,
    allowUnionTypes: true,
  });
  addFormats(ajv);
  const at = (p) => [...input.path, ...p.replace(/^\//, '').split('/').filter(Boolean)];
  if (!ajv.validateSchema(input.data)) {
    return ajv.errors.map((e) => ({ message: `JSON Schema 2020-12: ${e.message}`, path: at(e.instancePath) }));
  }
  try {
    ajv.compile(input.data);
  } catch (err) {
    return [{ message: `JSON Schema 2020-12: ${err.message}`, path: [...input.path] }];
  }
  return [];
}

// A schema parser for JSON Schema 2020-12 payloads; the AsyncAPI parser hands
// it each payload with its $refs resolved. For AsyncAPI 3 documents the parser
// only calls parse(), so parse() fails on an invalid schema, which the parser
// reports as an error diagnostic.
const jsonSchema2020 = {
  getMimeTypes: () => [draft2020, 'application/schema+yaml;version=draft-2020-12'],
  async validate(input) {
    return checkSchema2020(input);
  },
  async parse(input) {
    const problems = checkSchema2020(input);
    if (problems.length > 0) {
      throw new Error(problems.map((p) => `${p.path.join('.')}: ${p.message}`).join('; '));
    }
    checked.add(input.path.join('.'));
    return input.data;
  },
};
const checked = new Set();

// The payload schemas refer to the shared definitions by their $id, a URN
// (urn:invictus:schema:defs#/$defs/need), as every schema of the contract is
// named; the files next to the document hold them: urn:invictus:schema:<name>
// is <name>.json.
const path = require('path');
const fs = require('fs');
const urnPrefix = 'urn:invictus:schema:';
const urnResolver = {
  schema: 'urn',
  order: 1,
  canRead: (uri) => String(uri).startsWith(urnPrefix),
  read: async (uri) => {
    const name = String(uri).split('#')[0].slice(urnPrefix.length);
    if (!/^[a-z0-9_.]+$/.test(name)) throw new Error(`${uri}: not a schema of the contract`);
    return fs.promises.readFile(path.join(path.dirname(doc), `${name}.json`), 'utf8');
  },
};

const severities = {
  [DiagnosticSeverity.Error]: 'error',
  [DiagnosticSeverity.Warning]: 'warning',
  [DiagnosticSeverity.Information]: 'info',
  [DiagnosticSeverity.Hint]: 'hint',
};

(async () => {
  const parser = new Parser({
    schemaParsers: [jsonSchema2020],
    __unstable: { resolver: { resolvers: [urnResolver] } },
  });
  const { document, diagnostics } = await fromFile(parser, doc).parse();
  const counts = { error: 0, warning: 0, info: 0, hint: 0 };
  for (const d of diagnostics) {
    const sev = severities[d.severity] || 'error';
    counts[sev]++;
    const message = String(d.message).split(', stack: ')[0]; // uncaught errors carry a stack trace
    console.log(`${sev}\t${d.code}\t${(d.path || []).join('.') || '(root)'}\t${message}`);
  }
  if (document) {
    console.log(`checked ${checked.size} JSON Schema 2020-12 payload(s) with Ajv`);
    console.log(`parsed AsyncAPI ${document.version()}: ${document.channels().length} channels, ` +
      `${document.operations().length} operations, ${document.components().messages().length} messages`);
  }
  console.log(`check-asyncapi: ${doc}: ${counts.error} error(s), ${counts.warning} warning(s), ` +
    `${counts.info} info, ${counts.hint} hint(s)`);
  process.exit(document && counts.error === 0 ? 0 : 1);
})().catch((err) => {
  console.error(`check-asyncapi: ${err.stack || err}`);
  process.exit(1);
});
JS
