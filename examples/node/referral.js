// referral.js: APAV (pt.apav) refers a victim to AMCV (pt.amcv); AMCV
// consumes its offer and accepts it; APAV sees the acceptance. Each
// organisation connects with its own nkey and has only its own permissions.
//
//   NATS_URL=nats://127.0.0.1:4223 KEYS=DATA/keys node referral.js
//
// KEYS is a folder with pt.apav.nk and pt.amcv.nk (the data directory of an
// `invictus serve --demo` node has them under keys/). It prints one line
// per step and exits 0 once APAV has seen the acceptance; it gives up after
// TIMEOUT_MS (default 60000) with exit code 2.
'use strict';

const crypto = require('crypto');
const path = require('path');
const { CloudEvent } = require('cloudevents');
const { Kvm } = require('@nats-io/kv');
const { connectAs } = require('./connect');
const { toNATS, fromNATS } = require('./cloudevents-nats');

const url = process.env.NATS_URL || 'nats://127.0.0.1:4223';
const keys = process.env.KEYS || 'data/keys';
const timeoutMs = Number(process.env.TIMEOUT_MS || 60000);

// send publishes a command of org to its inbound subject through
// JetStream with Nats-Msg-Id <source>/<id>, so that a retry is stored once.
async function send(org, type, subject, data) {
  const event = new CloudEvent({
    id: crypto.randomUUID(),
    source: org.source,
    type,
    subject,
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    dataschema: `urn:invictus:schema:${type.replace(/^invictus\./, '')}`,
    data,
  });
  const { headers, body } = toNATS(event);
  const ack = await org.js.publish(org.inbound, body, { headers, msgID: `${event.source}/${event.id}` });
  console.log(`${org.org}: sent ${type} (stream ${ack.stream}, seq ${ack.seq})`);
  return event;
}

// receive reads org's deliveries from its durable consumer, acknowledging
// each, until one satisfies want; it returns that event. Every delivery is
// checked by the CloudEvents SDK (strict validation) on the way.
async function receive(org, want, stats) {
  const consumer = await org.js.consumers.get(org.stream, org.consumer);
  for (;;) {
    const msg = await consumer.next({ expires: 2000 });
    if (!msg) continue;
    const event = fromNATS(msg); // throws if the SDK finds the event invalid
    stats.validated++;
    msg.ack();
    if (want(event)) return event;
  }
}

async function main() {
  const timer = setTimeout(() => {
    console.error(`referral.js: no acceptance within ${timeoutMs} ms`);
    process.exit(2);
  }, timeoutMs);
  const apav = await connectAs('pt.apav', { url, seedFile: path.join(keys, 'pt.apav.nk') });
  const amcv = await connectAs('pt.amcv', { url, seedFile: path.join(keys, 'pt.amcv.nk') });
  const stats = { validated: 0 };
  const referral = crypto.randomUUID();
  const now = new Date().toISOString();

  await send(apav, 'invictus.referral.requested.v1', referral, {
    needs: ['support.emotional'],
    crimes: ['domestic_violence'],
    urgency: 'soon',
    location: { country: 'pt', region: 'PT1B' },
    languages: ['pt'],
    interpreter_ok: false,
    age_band: 'adult',
    channels: ['in_person', 'phone'],
    consent: { referral: true, share_data: true, given_at: now, method: 'verbal', recorded_by: 'example-e0001' },
    preferred_organisation: 'pt.amcv',
  });

  const offer = await receive(amcv, (e) => e.type === 'invictus.referral.offered.v1' && e.subject === referral, stats);
  console.log(`pt.amcv: offered placement ${offer.data.placement} (${offer.data.service}), answer by ${offer.data.deadline}`);

  // AMCV looks the referrer up in the directory, the read-only KV bucket
  // "directory": open() binds to it; create() (nats.js 2's views.kv) first
  // asks for the account's and the bucket's info, which the node answers.
  const kvm = new Kvm(amcv.js);
  const entry = await (await kvm.open('directory')).get(`org.${offer.data.referrer}`);
  console.log(`pt.amcv: the referrer is ${entry.json().name} (directory revision ${entry.revision})`);
  const again = await (await kvm.create('directory')).get(`org.${offer.data.referrer}`);
  if (again.revision !== entry.revision) throw new Error('the two directory reads differ');

  await send(amcv, 'invictus.referral.accepted.v1', referral, { placement: offer.data.placement });

  const accepted = await receive(apav, (e) => e.type === 'invictus.referral.accepted.v1' && e.subject === referral, stats);
  console.log(`pt.apav: placement ${accepted.data.placement} accepted by pt.amcv`);
  console.log(`deliveries validated by the CloudEvents SDK: ${stats.validated}`);

  clearTimeout(timer);
  await apav.nc.drain();
  await amcv.nc.drain();
}

main().catch((err) => {
  console.error(`referral.js: ${err.stack || err}`);
  process.exit(1);
});
