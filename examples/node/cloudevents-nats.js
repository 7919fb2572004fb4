// cloudevents-nats.js maps CloudEvents to NATS messages in the binary
// content mode of the CloudEvents NATS protocol binding, which INVICTUS
// uses: every attribute in a ce-<name> header, percent-encoded as the HTTP
// binding says (space, double quote, percent and anything outside printable
// ASCII), and the data as the body. The CloudEvents SDK for JavaScript
// builds and validates the events (strict mode: dataschema must be a URI,
// and INVICTUS sends the URN urn:invictus:schema:<type>).
'use strict';

const { CloudEvent } = require('cloudevents');
const { headers: natsHeaders } = require('@nats-io/transport-node');

function pct(v) {
  let out = '';
  for (const b of Buffer.from(String(v), 'utf8')) {
    out += b <= 0x20 || b >= 0x7f || b === 0x22 || b === 0x25 ? `%${b.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(b);
  }
  return out;
}

// toNATS returns the headers and body of event.
function toNATS(event) {
  const h = natsHeaders();
  for (const [name, value] of Object.entries(event.toJSON())) {
    if (name === 'data' || name === 'data_base64' || value === undefined) continue;
    h.set(`ce-${name}`, pct(value));
  }
  h.set('Content-Type', event.datacontenttype);
  return { headers: h, body: JSON.stringify(event.data) };
}

// fromNATS returns the CloudEvent of a message in binary mode; the SDK
// validates it (it throws on an event that breaks the specification).
function fromNATS(msg) {
  const attrs = {};
  for (const [key, values] of msg.headers || []) {
    const k = key.toLowerCase();
    if (k.startsWith('ce-')) attrs[k.slice(3)] = decodeURIComponent(values[0]);
  }
  return new CloudEvent({ ...attrs, data: msg.json() });
}

module.exports = { toNATS, fromNATS };
