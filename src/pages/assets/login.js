// Sign-in pages: passkeys (button and browser autofill), security keys, and the resend cooldown.
// Progressive enhancement: every step but WebAuthn works without this file; it only fills in and
// submits the page's own forms, so the server renders every outcome and error.
'use strict';
(() => {
  const W = window.SimpleWebAuthnBrowser;
  const $ = (s) => document.querySelector(s);
  for (const el of document.querySelectorAll('.js-off')) el.hidden = true;

  const fail = (text) => {
    const box = $('#js-error');
    if (!box) return;
    box.textContent = text;
    box.hidden = false;
  };
  const cancelled = (e) => e && (e.name === 'NotAllowedError' || e.name === 'AbortError' || e.code === 'ERROR_CEREMONY_ABORTED');

  /** Put the authenticator's answer into a page form and post it. */
  const submitWith = (form, response) => {
    form.elements.response.value = JSON.stringify(response);
    form.submit();
  };

  // A second factor or passkey step: the options came with the page.
  const step = $('#webauthn-form');
  if (step && W && W.browserSupportsWebAuthn()) {
    const btn = $('#webauthn-start');
    const run = async () => {
      btn.disabled = true;
      try {
        submitWith(step, await W.startAuthentication({ optionsJSON: JSON.parse(step.dataset.options) }));
      } catch (e) {
        btn.disabled = false;
        fail(cancelled(e) ? 'The security key or passkey request was cancelled. Try again, or use another way.' : 'This security key or passkey could not be used. Try again, or use another way.');
      }
    };
    btn.hidden = false;
    btn.addEventListener('click', run);
  }

  // The first page: start a passkey sign-in (a flow of its own), by button or from autofill.
  const passkeyForm = $('#passkey-form');
  if (passkeyForm && W && W.browserSupportsWebAuthn()) {
    let manual = false;
    const start = async (autofill) => {
      if (!autofill) manual = true;
      const r = await fetch('/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ method: 'passkey' }) });
      if (r.status !== 201) throw new Error('flow');
      const flow = await r.json();
      // The button was pressed meanwhile: autofill must not cancel that request.
      if (autofill && manual) return;
      const response = await W.startAuthentication({ optionsJSON: flow.challenge, useBrowserAutofill: autofill });
      passkeyForm.action = '/login/' + encodeURIComponent(flow.id) + (passkeyForm.dataset.return ? '?return_to=' + encodeURIComponent(passkeyForm.dataset.return) : '');
      submitWith(passkeyForm, response);
    };
    const btn = $('#passkey-start');
    btn.hidden = false;
    btn.addEventListener('click', () =>
      start(false).catch((e) => fail(cancelled(e) ? 'The passkey request was cancelled.' : 'Signing in with a passkey did not work here. Use your email address instead.')),
    );
    W.browserSupportsWebAuthnAutofill().then((yes) => {
      // Autofill waits quietly for the person to pick a passkey; a cancel or abort is not an error.
      if (yes) start(true).catch(() => {});
    });
  }

  // Resend: the button waits out the cooldown after a code was sent (the server enforces it too).
  const resend = $('#resend-form');
  if (resend) {
    let left = Number(resend.dataset.cooldown) || 0;
    const btn = resend.querySelector('button');
    const label = btn.textContent;
    const tick = () => {
      btn.disabled = left > 0;
      btn.textContent = left > 0 ? label + ' (in ' + left + ' s)' : label;
      if (left-- > 0) setTimeout(tick, 1000);
    };
    tick();
  }
})();
