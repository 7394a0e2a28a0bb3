// The shop's own page script (no inline scripts: the CSP forbids them). The snippet does the
// card work; this only shows the brand and handles the "pay again" CVC form.
document.addEventListener('cardseal:brand', (e) => {
  const badge = e.target.querySelector('[data-shop-brand]');
  if (!badge) return;
  badge.hidden = !e.detail.brand;
  badge.textContent = e.detail.brand ?? '';
});

const again = document.getElementById('pay-again');
if (again) {
  const input = again.querySelector('[data-cvc-again]');
  const error = document.getElementById('cvc-again-error');
  const button = again.querySelector('button');
  again.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (button.disabled) return;
    const api = window.cardseal;
    await api.started;
    const verdict = api.validateCvc(input.value);
    if (!verdict.isValid) {
      // In the language the snippet tag asked for (`data-locale`).
      error.textContent = api.messageFor(verdict.code, api.instance?.locale);
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    button.disabled = true;
    try {
      const token = await api.instance.tokenizeCvc(input.value);
      input.value = '';
      again.elements.cvc_token.value = token.id;
      again.submit();
    } catch (e) {
      button.disabled = false;
      error.textContent = e.message;
    }
  });
}

// Hosted fields: a click on a field's label text moves the focus into the vault's iframe.
document.addEventListener('click', (e) => {
  const label = e.target.closest && e.target.closest('[data-label-for]');
  const attachment = label && window.cardseal && window.cardseal.attachments && window.cardseal.attachments[0];
  attachment?.fields.getElement(label.dataset.labelFor)?.focus();
});
