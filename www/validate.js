// The demo checkout: live validation and formatting of the card fields with cardseal.
// No framework and no build step; it runs under `script-src 'self' 'wasm-unsafe-eval'`.
// It sends nothing anywhere: the submit button only validates (the shop, www/shop.mjs,
// tokenizes through the vault).
import {
  formatCardNumber,
  formatExpiry,
  messageFor,
  ready,
  validateCard,
  validateCvc,
  validateExpiry,
  validateNumber,
} from '/pkg/index.js';

// Display names only; which brand a number is comes from cardseal.
const BRAND_LABELS = {
  visa: 'Visa',
  mastercard: 'Mastercard',
  amex: 'American Express',
  diners: 'Diners Club',
  discover: 'Discover',
  jcb: 'JCB',
  unionpay: 'UnionPay',
  maestro: 'Maestro',
  mir: 'Mir',
  elo: 'Elo',
  hiper: 'Hiper',
  hipercard: 'Hipercard',
  verve: 'Verve',
  troy: 'Troy',
  uzcard: 'Uzcard',
  humo: 'Humo',
};

const FIELD_ORDER = ['number', 'expiry', 'cvc', 'name'];

const byId = (id) => document.getElementById(id);
const form = byId('checkout');
const status = byId('status');
const badge = byId('card-brand');
const button = byId('pay');
const fields = {
  number: { input: byId('card-number'), error: byId('card-number-error') },
  expiry: { input: byId('card-expiry'), error: byId('card-expiry-error') },
  cvc: { input: byId('card-cvc'), error: byId('card-cvc-error') },
  name: { input: byId('card-name'), error: byId('card-name-error') },
};

let brand = null;

function showError(field, code) {
  const { input, error } = fields[field];
  if (code) {
    error.textContent = messageFor(code) ?? code;
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', error.id);
  } else {
    error.textContent = '';
    input.removeAttribute('aria-invalid');
    input.removeAttribute('aria-describedby');
  }
}

// Reformats a field in place, keeping the caret after the same digit.
function reformat(input, format) {
  const caret = input.selectionStart ?? input.value.length;
  const out = format(input.value, caret);
  if (out.value !== input.value) input.value = out.value;
  if (document.activeElement === input) input.setSelectionRange(out.caret, out.caret);
}

// Backspace or Delete next to a separator deletes the digit beyond it: the formatter would put
// a deleted separator straight back, and the key would seem to do nothing.
function deleteAcrossSeparator(event) {
  const input = event.target;
  const { selectionStart: start, selectionEnd: end, value } = input;
  const isDigit = (c) => c >= '0' && c <= '9';
  if (start !== end) return;
  let at = -1;
  if (event.inputType === 'deleteContentBackward' && start > 0 && !isDigit(value[start - 1])) {
    for (let i = start - 1; i >= 0; i--) if (isDigit(value[i])) { at = i; break; }
  } else if (event.inputType === 'deleteContentForward' && start < value.length && !isDigit(value[start])) {
    for (let i = start; i < value.length; i++) if (isDigit(value[i])) { at = i; break; }
  }
  if (at < 0) return;
  event.preventDefault();
  input.value = value.slice(0, at) + value.slice(at + 1);
  const caret = event.inputType === 'deleteContentBackward' ? at : start;
  input.setSelectionRange(caret, caret);
  input.dispatchEvent(new Event('input', { bubbles: true }));
}

// The verdict on one field, in the shape of `validateNumber` & co.
function verdictOf(field) {
  const value = fields[field].input.value;
  switch (field) {
    case 'number':
      return validateNumber(value);
    case 'expiry':
      return validateExpiry(value);
    case 'cvc':
      return validateCvc(value, brand);
    case 'name': {
      // The name has no validator of its own; validateCard reports it with the rest.
      const err = validateCard({ number: '', exp_month: '', exp_year: '', name: value })
        .errors.find((e) => e.field === 'name');
      return { isValid: !err, isPotentiallyValid: !err, code: err ? err.code : null };
    }
  }
  return null;
}

// While typing, only what more typing cannot fix is shown; an error shown earlier disappears
// as soon as the field can still become valid.
function checkLive(field) {
  const v = verdictOf(field);
  showError(field, v.isPotentiallyValid ? null : v.code);
}

// On leaving a field: any error, except for a field left empty (that waits for submit).
function checkFinal(field) {
  if (fields[field].input.value.trim() === '') return showError(field, null);
  const v = verdictOf(field);
  showError(field, v.isValid ? null : v.code);
}

function showBrand(next) {
  if (next === brand) return;
  brand = next;
  badge.hidden = !brand;
  badge.textContent = brand ? BRAND_LABELS[brand] ?? brand : '';
  if (brand) badge.dataset.brand = brand;
  else delete badge.dataset.brand;
  // The CVC size depends on the brand: recheck what is already typed.
  if (fields.cvc.input.value !== '') checkLive('cvc');
}

function onNumberInput() {
  reformat(fields.number.input, formatCardNumber);
  showBrand(validateNumber(fields.number.input.value).brand);
  checkLive('number');
}

function onExpiryInput() {
  reformat(fields.expiry.input, formatExpiry);
  checkLive('expiry');
}

function onSubmit(event) {
  event.preventDefault();
  const value = (field) => fields[field].input.value;
  const card = {
    number: value('number'),
    // The whole `MM / YY` field as the month: cardseal splits it, as validateExpiry does.
    exp_month: value('expiry'),
    exp_year: '',
    cvc: value('cvc'),
    name: value('name').trim() === '' ? undefined : value('name'),
  };
  const result = validateCard(card);
  // An empty CVC is `incomplete_cvc`: the field was collected (only an absent cvc is "not collected").
  const errors = result.errors;

  for (const field of FIELD_ORDER) {
    showError(field, errors.find((e) => e.field === field)?.code ?? null);
  }
  status.classList.toggle('ok', errors.length === 0);
  status.classList.toggle('bad', errors.length > 0);
  if (errors.length === 0) {
    const last4 = card.number.replace(/\D/g, '').slice(-4);
    status.textContent = `Card is valid (${result.brand} •••• ${last4})`;
  } else {
    status.textContent = errors.map((e) => e.message).join(' ');
    fields[errors[0].field].input.focus();
  }
}

async function main() {
  try {
    await ready();
  } catch (err) {
    status.textContent = `cardseal failed to load: ${err.message}`;
    status.classList.add('bad');
    return;
  }

  fields.number.input.addEventListener('input', onNumberInput);
  fields.expiry.input.addEventListener('input', onExpiryInput);
  fields.number.input.addEventListener('beforeinput', deleteAcrossSeparator);
  fields.expiry.input.addEventListener('beforeinput', deleteAcrossSeparator);
  fields.cvc.input.addEventListener('input', () => checkLive('cvc'));
  fields.name.input.addEventListener('input', () => checkLive('name'));
  for (const field of FIELD_ORDER) {
    fields[field].input.addEventListener('blur', () => checkFinal(field));
    fields[field].input.disabled = false;
  }
  form.addEventListener('submit', onSubmit);
  button.disabled = false;
  status.textContent = '';

  // Values the browser restored (back/forward, autofill before load) get formatted too.
  if (fields.number.input.value) onNumberInput();
  if (fields.expiry.input.value) onExpiryInput();
}

main();
