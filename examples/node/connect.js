// connect.js is the one place where this example says how an organisation
// connects to an INVICTUS network with nats.js: its NATS URL, its nkey seed
// file, the inbox prefix its permissions allow, and the names of the
// subjects and the consumer that are its own. `invictus creds ORG --json`
// prints the same values for any organisation.
'use strict';

const fs = require('fs');
const { connect, nkeyAuthenticator } = require('@nats-io/transport-node');
const { jetstream } = require('@nats-io/jetstream');

// names returns what belongs to organisation org ("pt.apav"): it publishes
// its commands to in.<cc>.<org>, reads its deliveries from the durable
// consumer org_<cc>_<org> of the DELIVERY stream, and may only receive
// replies under the inbox prefix _INBOX_<cc>_<org>.
function names(org) {
  const under = org.replace('.', '_');
  return {
    org,
    source: `/orgs/${org}`,
    inbound: `in.${org}`,
    stream: 'DELIVERY',
    consumer: `org_${under}`,
    inboxPrefix: `_INBOX_${under}`,
  };
}

// readSeed returns the seed of an nkey seed file written by `invictus creds`
// (or found in DATA/keys/<org>.nk): the line that starts with "SU", after
// comment lines.
function readSeed(file) {
  const line = fs.readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).find((l) => l.startsWith('SU'));
  if (!line) throw new Error(`${file}: no nkey seed (a line starting with SU)`);
  return new TextEncoder().encode(line);
}

// connectAs connects as organisation org with its seed file and returns
// the connection, a JetStream client and the organisation's names.
async function connectAs(org, { url, seedFile }) {
  const n = names(org);
  const nc = await connect({
    servers: url,
    name: `invictus example ${org}`,
    authenticator: nkeyAuthenticator(readSeed(seedFile)),
    inboxPrefix: n.inboxPrefix, // replies to any other inbox are refused
    timeout: 5000,
  });
  return { ...n, nc, js: jetstream(nc, { timeout: 5000 }) };
}

module.exports = { connectAs, names };
