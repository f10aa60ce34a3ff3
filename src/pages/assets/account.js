// Account page: add a passkey. The registration options come from the API; the authenticator's
// answer is posted with the page's own form, so the server shows the outcome (and codes, if any).
'use strict';
(() => {
  const W = window.SimpleWebAuthnBrowser;
  const $ = (s) => document.querySelector(s);
  for (const el of document.querySelectorAll('.js-off')) el.hidden = true;
  const form = $('#passkey-form');
  const btn = $('#passkey-add');
  if (!form || !btn || !W || !W.browserSupportsWebAuthn()) return;
  const fail = (text) => {
    const box = $('#js-error');
    box.textContent = text;
    box.hidden = false;
    btn.disabled = false;
  };
  btn.hidden = false;
  btn.addEventListener('click', async () => {
    btn.disabled = true;
    try {
      const r = await fetch('/auth/mfa/webauthn/options', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ passkey: true }) });
      // The API wants a fresh second factor first: confirm it is you, then come back here.
      if (r.status === 401) return $('#confirm-form').submit();
      if (!r.ok) return fail('A passkey cannot be added right now. Reload the page and try again.');
      const response = await W.startRegistration({ optionsJSON: await r.json() });
      form.elements.response.value = JSON.stringify(response);
      form.submit();
    } catch (e) {
      fail(e && e.name === 'NotAllowedError' ? 'Adding the passkey was cancelled.' : 'This device could not create a passkey. Try again.');
    }
  });
})();
