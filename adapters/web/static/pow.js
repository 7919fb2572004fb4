// The small proof of work of a public form, solved in the browser.
//
// A form with data-pow="<challenge>" and data-pow-bits="<n>" (issued and
// signed by the node) must be sent with a solution: a counter, put into
// its hidden input marked data-pow-into, such that the SHA-256 of
// "<challenge>.<counter>" begins with n zero bits. A person's browser
// needs a fraction of a second; a flood of requests needs that for each
// one. Only the browser's own SubtleCrypto is used. static/seal.js calls
// solve() after sealing; a form that seals nothing is handled here.

// batch is how many hashes are asked of SubtleCrypto at once.
const batch = 128;

// zeros returns the number of leading zero bits of a digest.
function zeros(digest) {
  const b = new Uint8Array(digest);
  let n = 0;
  for (const x of b) {
    if (x !== 0) { return n + Math.clz32(x) - 24; }
    n += 8;
  }
  return n;
}

// solve returns the first counter (a decimal string) whose hash with
// challenge has bits leading zero bits.
export async function solve(challenge, bits) {
  if (!globalThis.crypto || !crypto.subtle) {
    throw new Error('this browser has no SubtleCrypto');
  }
  const enc = new TextEncoder();
  for (let start = 0; start < Number.MAX_SAFE_INTEGER; start += batch) {
    const sums = [];
    for (let i = start; i < start + batch; i++) {
      sums.push(crypto.subtle.digest('SHA-256', enc.encode(challenge + '.' + i)));
    }
    const done = await Promise.all(sums);
    for (let i = 0; i < batch; i++) {
      if (zeros(done[i]) >= bits) { return String(start + i); }
    }
  }
  throw new Error('no solution');
}

// solveForm fills form's solution input, if it asks for one.
export async function solveForm(form) {
  const into = form.querySelector('[data-pow-into]');
  if (!form.dataset.pow || !into) { return; }
  into.value = await solve(form.dataset.pow, Number(form.dataset.powBits));
}

for (const form of document.querySelectorAll('form[data-pow]:not([data-seal-to])')) {
  let solved = false;
  form.addEventListener('submit', async (ev) => {
    if (solved) { return; }
    ev.preventDefault();
    try { await solveForm(form); } catch { /* the node says why it was refused */ }
    solved = true;
    form.submit();
  });
}
