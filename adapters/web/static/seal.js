// Seals a form's case details in the browser before the form is sent.
//
// A form with data-seal-to="age1..." (the receiving organisation's age
// recipient, from the directory) has a textarea marked data-seal-source,
// which has no name attribute, so the browser never posts it, and a
// hidden input marked data-seal-into. On submit the textarea's text is
// encrypted with age (static/age.js, the age-encryption package) to the
// recipient, armored, and put into the hidden input; only that envelope
// is posted. An empty textarea keeps an envelope sealed earlier (the
// page sent back after another field's error). A form that also asks for
// a proof of work (data-pow) gets it solved by static/pow.js, loaded
// only then. Without JavaScript the form posts neither and the server
// says why.
import { Encrypter, armor } from './age.js';

for (const form of document.querySelectorAll('form[data-seal-to]')) {
  const source = form.querySelector('[data-seal-source]');
  const into = form.querySelector('[data-seal-into]');
  const status = form.querySelector('[data-seal-status]');
  if (!source || !into) { continue; }
  let sealed = false;
  form.addEventListener('submit', async (ev) => {
    if (sealed) { return; }
    ev.preventDefault();
    const say = (msg) => { if (status) { status.textContent = msg; } };
    try {
      const text = source.value.trim();
      if (text !== '') {
        say(form.dataset.sealWait || '');
        const e = new Encrypter();
        e.addRecipient(form.dataset.sealTo);
        into.value = armor.encode(await e.encrypt(text));
      }
      if (form.dataset.pow) {
        say(form.dataset.sealWait || '');
        const { solveForm } = await import('./pow.js');
        await solveForm(form);
      }
      sealed = true;
      form.submit();
    } catch (err) {
      into.value = '';
      say(form.dataset.sealFail || String(err));
    }
  });
}
