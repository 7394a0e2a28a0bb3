// The snippet's form mode (DESIGN.md, "The snippet"): formats and checks the card inputs as the
// customer types, and on submit tokenizes, clears the card inputs, adds the hidden
// `cardseal_token` input and submits the form. Card inputs never carry a `name`.
import {
  formatCardNumber, formatCvc, formatExpiry, messageFor, resolveLocale, validateCard, validateCvc, validateExpiry, validateNumber,
} from './validate.js';
import { unavailableMessage } from './unavailable.js';

const FIELDS = ['number', 'expiry', 'cvc', 'name'];
const AUTOCOMPLETE = { number: 'cc-number', expiry: 'cc-exp', cvc: 'cc-csc', name: 'cc-name' };
let nextId = 0;

function emit(target, type, detail, cancelable = false) {
  return target.dispatchEvent(new CustomEvent(type, { bubbles: true, cancelable, detail }));
}

function resolveForm(form) {
  const el = typeof form === 'string' ? document.querySelector(form) : form;
  if (!el || el.tagName !== 'FORM') {
    throw new TypeError('cardseal: attach() needs a <form> element or a selector for one');
  }
  return el;
}

/**
 * Attaches a CardSeal to a form. Returns `{ detach(), validate() }`.
 * Options: `submit` (default true: submit the form once the token is in it), `locale` (the
 * language of its messages; the instance's by default).
 */
export function attachForm(cardseal, formOrSelector, options = {}) {
  const form = resolveForm(formOrSelector);
  const submit = options.submit !== false;
  // The instance's language unless the form asks for another (`options.locale`).
  const locale = resolveLocale(options.locale !== undefined ? options.locale : cardseal.locale);
  const inputs = {};
  const errorEls = {};
  for (const field of FIELDS) {
    const input = form.querySelector(`[data-cardseal="${field}"]`);
    if (input) {
      if (input.hasAttribute('name')) {
        console.warn(`cardseal: removed name="${input.getAttribute('name')}" from the ${field} input, so the browser can never submit card data`);
        input.removeAttribute('name');
      }
      if (!input.hasAttribute('autocomplete')) input.setAttribute('autocomplete', AUTOCOMPLETE[field]);
      if (field !== 'name' && !input.hasAttribute('inputmode')) input.setAttribute('inputmode', 'numeric');
      inputs[field] = input;
    }
    const err = form.querySelector(`[data-cardseal-error="${field}"]`);
    if (err) {
      if (!err.id) err.id = `cardseal-error-${field}-${++nextId}`;
      if (!err.hasAttribute('aria-live')) err.setAttribute('aria-live', 'polite');
      errorEls[field] = err;
    }
  }
  const formError = form.querySelector('[data-cardseal-error="form"]');
  if (!inputs.number || !inputs.expiry) {
    throw new TypeError('cardseal: the form needs [data-cardseal="number"] and [data-cardseal="expiry"] inputs');
  }

  let brand = null;
  let busy = false;

  function showError(field, message) {
    const input = inputs[field];
    const el = errorEls[field];
    if (el) {
      el.textContent = message ?? '';
      // Screen readers pronounce the message in its own language, whatever the page's.
      if (message) el.lang = locale;
    }
    if (!input) return;
    if (message) {
      input.setAttribute('aria-invalid', 'true');
      if (el) {
        const ids = new Set((input.getAttribute('aria-describedby') ?? '').split(/\s+/).filter(Boolean));
        ids.add(el.id);
        input.setAttribute('aria-describedby', [...ids].join(' '));
      }
    } else {
      input.removeAttribute('aria-invalid');
    }
  }

  function showFormError(message) {
    if (formError) formError.textContent = message ?? '';
  }

  function verdictOf(field) {
    const value = inputs[field]?.value ?? '';
    switch (field) {
      case 'number': return validateNumber(value);
      case 'expiry': return validateExpiry(value);
      case 'cvc': return validateCvc(value, brand);
      default: return { isValid: true, isPotentiallyValid: true, code: null };
    }
  }

  function changed(field) {
    const v = verdictOf(field);
    // While typing, only errors that more typing cannot fix are shown.
    if (v.isPotentiallyValid) showError(field, null);
    else showError(field, messageOf(v.code));
    emit(form, 'cardseal:change', { field, complete: v.isValid, empty: !(inputs[field]?.value), brand, error: v.isPotentiallyValid ? null : v.code });
  }

  function messageOf(code) {
    return code ? (messageFor(code, locale) ?? code) : null;
  }

  const listeners = [];
  function on(el, type, fn, opts) {
    el.addEventListener(type, fn, opts);
    listeners.push(() => el.removeEventListener(type, fn, opts));
  }

  function reformat(el, format) {
    const f = format(el.value, el.selectionStart ?? el.value.length);
    if (f.value !== el.value) {
      el.value = f.value;
      if (document.activeElement === el) el.setSelectionRange(f.caret, f.caret);
    }
    return f.value;
  }

  function onNumber() {
    const b = validateNumber(reformat(inputs.number, formatCardNumber)).brand;
    if (b !== brand) {
      brand = b;
      form.dataset.cardsealBrand = b ?? '';
      emit(form, 'cardseal:brand', { brand: b });
      if (inputs.cvc?.value) changed('cvc');
    }
    changed('number');
  }
  function onExpiry() {
    reformat(inputs.expiry, formatExpiry);
    changed('expiry');
  }
  function onCvc() {
    reformat(inputs.cvc, formatCvc);
    changed('cvc');
  }
  const onInput = { number: onNumber, expiry: onExpiry, cvc: onCvc };
  for (const [field, fn] of Object.entries(onInput)) {
    if (!inputs[field]) continue;
    on(inputs[field], 'input', fn);
    // What the customer (or autofill) typed before the snippet arrived is formatted now.
    if (inputs[field].value) fn();
  }
  for (const field of FIELDS) {
    const input = inputs[field];
    if (!input) continue;
    on(input, 'blur', () => {
      if (!input.value) return;
      const v = verdictOf(field);
      showError(field, v.isValid ? null : messageOf(v.code));
    });
  }

  function readCard() {
    const card = { number: inputs.number.value, expiry: inputs.expiry.value };
    if (inputs.cvc) card.cvc = inputs.cvc.value;
    if (inputs.name && inputs.name.value.trim()) card.name = inputs.name.value;
    return card;
  }

  function validate() {
    const result = validateCard(readCard());
    for (const field of FIELDS) showError(field, null);
    for (const e of result.errors) showError(e.field, messageOf(e.code));
    return result;
  }

  function setBusy(on) {
    busy = on;
    form.toggleAttribute('data-cardseal-busy', on);
    for (const b of form.querySelectorAll('button[type="submit"], button:not([type]), input[type="submit"]')) {
      b.disabled = on;
    }
  }

  on(form, 'submit', async (event) => {
    event.preventDefault();
    event.stopImmediatePropagation();
    if (busy) return;
    showFormError(null);
    const result = validate();
    if (!result.valid) {
      const first = result.errors[0];
      inputs[first.field]?.focus();
      emit(form, 'cardseal:error', { code: first.code, type: 'validation_error', param: first.field, message: messageOf(first.code), errors: result.errors });
      return;
    }
    setBusy(true);
    try {
      const token = await cardseal.tokenize(readCard());
      for (const input of Object.values(inputs)) input.value = '';
      for (const old of form.querySelectorAll('input[name="cardseal_token"]')) old.remove();
      const hidden = document.createElement('input');
      hidden.type = 'hidden';
      hidden.name = 'cardseal_token';
      hidden.value = token.id;
      form.appendChild(hidden);
      const proceed = emit(form, 'cardseal:token', { token }, true);
      if (submit && proceed) {
        // form.submit() fires no submit event, so this handler does not run again; the button
        // stays disabled while the page navigates.
        HTMLFormElement.prototype.submit.call(form);
      } else {
        setBusy(false);
      }
    } catch (e) {
      setBusy(false);
      const detail = { code: e.code, type: e.type, param: e.param ?? null, message: e.message, status: e.status };
      if (e.errors) {
        for (const x of e.errors) showError(x.field, messageOf(x.code));
      } else if (e.param && inputs[e.param]) {
        showError(e.param, e.message);
      } else if (e.type === 'api_connection_error' || e.status >= 500) {
        // No answer, no connection, or the vault's own trouble after the retries: the card stays
        // in the form and the button is back, so the customer can press Pay again.
        showFormError(unavailableMessage(form, locale));
      } else {
        showFormError(e.message);
      }
      emit(form, 'cardseal:error', detail);
    }
  }, true);

  // What the page kept disabled until cardseal could take the card (the Pay button, or a
  // fieldset), as the snippet does: from now on the form works.
  const pending = [
    ...form.querySelectorAll('[data-cardseal-pending]'),
    ...(form.id ? document.querySelectorAll(`[data-cardseal-pending][form="${CSS.escape(form.id)}"]`) : []),
  ];
  for (const el of pending) {
    el.removeAttribute('data-cardseal-pending');
    if ('disabled' in el) el.disabled = false;
  }

  return {
    form,
    validate,
    detach() {
      for (const off of listeners.splice(0)) off();
    },
  };
}
