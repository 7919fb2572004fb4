// Opens, in the receiving caseworker's browser, the case files handed over
// to her organisation (the referral page's sections marked
// data-casefile-open, one <pre data-envelope> per sealed envelope).
//
// The organisation's age identity is kept on the node wrapped with the
// organisation's passphrase (an age file whose only stanza is scrypt; the
// node cannot open it). The page fetches it with the caseworker's session
// (GET /console/keys/identity), the passphrase unlocks it here, and the
// identity then lives only in this page's memory: nothing of it, nor of a
// case file, is ever sent anywhere.
import { Decrypter, Encrypter, armor, identityToRecipient } from './age.js';

let identity = null;

// identityOf returns the AGE-SECRET-KEY-1 line of a key file, or null.
function identityOf(text) {
  for (const line of text.split(/\r?\n/)) {
    const l = line.trim();
    if (l.startsWith('AGE-SECRET-KEY-1')) { return l; }
  }
  return null;
}

async function unlock(passphrase, msg) {
  let res;
  try {
    res = await fetch('/console/keys/identity', { cache: 'no-store', credentials: 'same-origin' });
  } catch (e) {
    throw new Error(msg('Network'));
  }
  if (res.status === 404) { throw new Error(msg('Nokey')); }
  if (res.status === 401 || res.status === 403) { throw new Error(msg('Session')); }
  if (!res.ok) { throw new Error(msg('Network')); }
  const wrapped = (await res.json()).wrapped_identity;
  let file;
  try {
    const d = new Decrypter();
    d.addPassphrase(passphrase);
    file = await d.decrypt(armor.decode(wrapped), 'text');
  } catch (e) {
    throw new Error(msg('Badpass'));
  }
  const id = identityOf(file);
  if (!id) { throw new Error(msg('Badidentity')); }
  await identityToRecipient(id).catch(() => { throw new Error(msg('Badidentity')); });
  return id;
}

for (const sec of document.querySelectorAll('[data-casefile-open]')) {
  const form = sec.querySelector('form');
  const pass = form.querySelector('input[type=password]');
  const status = sec.querySelector('[data-open-status]');
  const msg = (k) => sec.dataset['msg' + k] || k;
  const say = (text, bad) => {
    status.textContent = text;
    status.className = bad ? 'field-error' : 'notice';
  };
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    say(msg('Working'), false);
    try {
      if (!identity) { identity = await unlock(pass.value, msg); }
      pass.value = '';
      let first = null;
      for (const pre of sec.querySelectorAll('pre[data-envelope]')) {
        let text;
        try {
          const d = new Decrypter();
          d.addIdentity(identity);
          text = await d.decrypt(armor.decode(pre.dataset.envelope), 'text');
        } catch (e) {
          text = /no identity matched/i.test(String(e && e.message || e)) ? msg('Notforyou') : msg('Malformed');
          pre.classList.add('field-error');
        }
        pre.textContent = text;
        pre.hidden = false;
        first = first || pre;
      }
      say(msg('Opened'), false);
      if (first) { first.focus(); }
    } catch (e) {
      say(e.message, true);
    }
  });
}

// The key page (data-key-store): an organisation administrator pastes the
// organisation's key file; it is checked against the directory's
// recipient and wrapped here with the passphrase (age's scrypt, work
// factor 2^16). Only the wrapped file is posted: the key and the
// passphrase fields have no name, and are cleared before the form leaves.
for (const sec of document.querySelectorAll('[data-key-store]')) {
  const form = sec.querySelector('form');
  const status = sec.querySelector('[role=status]');
  const msg = (k) => sec.dataset['msg' + k] || k;
  const say = (text, bad) => {
    status.textContent = text;
    status.className = bad ? 'field-error' : 'notice';
  };
  let ready = false;
  form.addEventListener('submit', async (ev) => {
    if (ready) { return; }
    ev.preventDefault();
    try {
      const id = identityOf(form.querySelector('#key-identity').value);
      if (!id) { throw new Error(msg('Badidentity')); }
      const recipient = await identityToRecipient(id).catch(() => { throw new Error(msg('Badidentity')); });
      if (sec.dataset.recipient && sec.dataset.recipient !== recipient) { throw new Error(msg('Mismatch')); }
      const pass = form.querySelector('#key-pass').value;
      if (pass.length < 12) { throw new Error(msg('Shortpass')); }
      if (pass !== form.querySelector('#key-pass2').value) { throw new Error(msg('Nomatch')); }
      say(msg('Working'), false);
      const e = new Encrypter();
      e.setPassphrase(pass);
      e.setScryptWorkFactor(16);
      form.querySelector('#key-wrapped').value = armor.encode(await e.encrypt('# public key: ' + recipient + '\n' + id + '\n'));
      for (const f of form.querySelectorAll('textarea, input[type=password]')) { f.value = ''; }
      ready = true;
      form.requestSubmit();
    } catch (e) {
      say(e.message, true);
    }
  });
}
