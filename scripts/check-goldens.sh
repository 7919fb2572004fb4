#!/usr/bin/env bash
# check-goldens.sh validates the golden examples of schemas/examples/ with
# Ajv (the JSON Schema validator most JavaScript integrators use), in its
# default options plus the formats of ajv-formats: the data of every valid
# example must pass its payload schema, and the data of every invalid
# example that breaks its payload (a schema_location in
# examples/expectations.json) must fail it. It is the portable check of the
# schemas: a keyword that Ajv evaluates differently from the Go validator
# (multipleOf 0.01 in floating point was one) fails here.
#
# Needs node >= 18 and npm; the first run installs the pinned packages of
# scripts/package.json into scripts/node_modules.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ ! -d "$here/node_modules/ajv" || ! -d "$here/node_modules/ajv-formats" ]]; then
	echo "check-goldens: installing ajv into $here/node_modules" >&2
	(cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >&2
fi

cd "$here"
exec node - "$here/../schemas" <<'JS'
'use strict';
const fs = require('fs');
const path = require('path');
const Ajv2020 = require('ajv/dist/2020').default;
const addFormats = require('ajv-formats').default;

const dir = process.argv[2];
const read = (f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
const ajv = new Ajv2020();
addFormats(ajv);
for (const f of fs.readdirSync(dir)) {
  if (f.endsWith('.json') && f !== 'taxonomy.json') ajv.addSchema(read(f)); // keyed by its $id
}
const expect = read('examples/expectations.json').invalid;
let passed = 0;
let failed = 0;
const fail = (msg) => { failed++; console.log(`FAIL ${msg}`); };
for (const short of fs.readdirSync(path.join(dir, 'examples')).sort()) {
  const folder = path.join('examples', short);
  if (!fs.statSync(path.join(dir, folder)).isDirectory()) continue;
  for (const name of fs.readdirSync(path.join(dir, folder)).sort()) {
    const rel = `${short}/${name}`;
    const event = read(path.join(folder, name));
    const validate = ajv.getSchema(event.dataschema);
    if (!validate) {
      fail(`${rel}: no schema with $id ${event.dataschema}`);
      continue;
    }
    const ok = validate(event.data);
    if (name.startsWith('valid')) {
      if (ok) passed++;
      else fail(`${rel}: valid example rejected: ${ajv.errorsText(validate.errors)}`);
    } else if (name.startsWith('invalid-')) {
      const want = expect[rel];
      if (!want) fail(`${rel}: not in expectations.json`);
      else if (want.schema_location === null) passed++; // breaks an attribute only
      else if (!ok) passed++;
      else fail(`${rel}: invalid example accepted (want a failure at ${want.schema_location})`);
    }
  }
}
console.log(`check-goldens: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
JS
