// Opens sealed case files in the browser of an organisation's caseworker.
//
// The organisation's age identity (its key file) is kept wrapped: an age
// file encrypted with the organisation's passphrase (scrypt). The wrapped
// copy comes from this node (GET /v1/keys/identity, with the
// organisation's API token) or from this device (localStorage, where
// "keep" put it); the passphrase unlocks it here, and the identity then
// lives only in this page's memory. An administrator stores the wrapped
// identity (PUT /v1/keys/identity): the key is wrapped here first, so the
// server never receives one it could open. Nothing of a case file leaves
// the page.
import { Encrypter, Decrypter, armor, identityToRecipient } from './age.js';

const app = document.getElementById('open-app');
const msg = (k) => app.dataset['msg' + k] || k;
const storeKey = 'invictus.wrapped-identity';
// The passphrase's scrypt work factor: 2^16, some 64 MiB and a second or
// two on a phone, for a key that only staff unlock.
const workFactor = 16;
let identity = null;

const $ = (id) => document.getElementById(id);
function say(id, text, bad) {
  const el = $(id);
  el.textContent = text;
  el.className = bad ? 'field-error' : 'notice';
}

// identityOf returns the AGE-SECRET-KEY-1 line of a key file, or null.
function identityOf(text) {
  for (const line of text.split(/\r?\n/)) {
    const l = line.trim();
    if (l.startsWith('AGE-SECRET-KEY-1')) { return l; }
  }
  return null;
}

async function fetchWrapped(token) {
  let res;
  try {
    res = await fetch('/v1/keys/identity', { headers: { Authorization: 'Bearer ' + token }, cache: 'no-store', credentials: 'omit' });
  } catch (e) {
    throw new Error(msg('Network'));
  }
  if (res.status === 404) { throw new Error(msg('Nokey')); }
  if (res.status === 401 || res.status === 403) { throw new Error(msg('Token')); }
  if (!res.ok) { throw new Error(msg('Network')); }
  return (await res.json()).wrapped_identity;
}

$('unlock-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  say('unlock-status', msg('Working'), false);
  try {
    let wrapped = localStorage.getItem(storeKey);
    const token = $('o-token').value.trim();
    if (token !== '') { wrapped = await fetchWrapped(token); }
    if (!wrapped) { throw new Error(msg('Nokey')); }
    let file;
    try {
      const d = new Decrypter();
      d.addPassphrase($('o-pass').value);
      file = await d.decrypt(armor.decode(wrapped), 'text');
    } catch (e) {
      throw new Error(msg('Badpass'));
    }
    const id = identityOf(file);
    if (!id) { throw new Error(msg('Badidentity')); }
    await identityToRecipient(id);
    identity = id;
    if ($('o-remember').checked) { localStorage.setItem(storeKey, wrapped); }
    $('o-pass').value = '';
    $('o-token').value = '';
    say('unlock-status', msg('Unlocked'), false);
  } catch (e) {
    say('unlock-status', e.message, true);
  }
});

$('forget-button').addEventListener('click', () => {
  localStorage.removeItem(storeKey);
  identity = null;
  say('unlock-status', msg('Forgotten'), false);
});

$('o-file').addEventListener('change', async () => {
  const f = $('o-file').files[0];
  if (f) { $('o-envelope').value = await f.text(); }
});

$('open-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('open-result').hidden = true;
  $('plaintext').textContent = '';
  if (!identity) { say('open-status', msg('Noidentity'), true); return; }
  let bin;
  try {
    bin = armor.decode($('o-envelope').value.trim());
  } catch (e) {
    say('open-status', msg('Malformed'), true);
    return;
  }
  say('open-status', msg('Working'), false);
  try {
    const d = new Decrypter();
    d.addIdentity(identity);
    const text = await d.decrypt(bin, 'text');
    $('plaintext').textContent = text;
    $('open-result').hidden = false;
    say('open-status', '', false);
    $('plaintext').focus();
  } catch (e) {
    const s = String(e && e.message || e);
    say('open-status', /no identity matched/i.test(s) ? msg('Notforyou') : msg('Malformed'), true);
  }
});

// Import: wrap a key file with a new passphrase here and store only the
// wrapped copy on the node. "Use" keeps the key in this page alone.
async function pasted() {
  const id = identityOf($('i-identity').value);
  if (!id) { throw new Error(msg('Badidentity')); }
  const recipient = await identityToRecipient(id).catch(() => { throw new Error(msg('Badidentity')); });
  return { id, recipient };
}

$('import-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  try {
    const { id, recipient } = await pasted();
    const pass = $('i-pass').value;
    if (pass.length < 12) { throw new Error(msg('Shortpass')); }
    say('import-status', msg('Working'), false);
    const e = new Encrypter();
    e.setPassphrase(pass);
    e.setScryptWorkFactor(workFactor);
    const wrapped = armor.encode(await e.encrypt('# public key: ' + recipient + '\n' + id + '\n'));
    let res;
    try {
      res = await fetch('/v1/keys/identity', {
        method: 'PUT', cache: 'no-store', credentials: 'omit',
        headers: { Authorization: 'Bearer ' + $('i-token').value.trim(), 'Content-Type': 'application/json' },
        body: JSON.stringify({ wrapped_identity: wrapped }),
      });
    } catch (err) {
      throw new Error(msg('Network'));
    }
    if (res.status === 401 || res.status === 403) { throw new Error(msg('Token')); }
    if (!res.ok) { throw new Error(msg('Network')); }
    localStorage.setItem(storeKey, wrapped);
    identity = id;
    $('i-identity').value = '';
    $('i-pass').value = '';
    $('i-token').value = '';
    say('import-status', msg('Stored'), false);
  } catch (e) {
    say('import-status', e.message, true);
  }
});

$('use-button').addEventListener('click', async () => {
  try {
    identity = (await pasted()).id;
    $('i-identity').value = '';
    say('import-status', msg('Unlocked'), false);
  } catch (e) {
    say('import-status', e.message, true);
  }
});
