// Hosted fields, the merchant-page side (DESIGN.md, "Hosted fields"): `fields({...})` puts each
// card input in an iframe of the vault's origin (`{vaultUrl}/fields/{version}/{kind}.html`,
// frame.js inside) and talks to it by postMessage. This module loads no wasm and never sees a
// card value: the frames tell it `ready`, `change` (complete, empty, brand, error code and
// message), `focus`, `blur`, their height and Enter, and the token once there is one.
//
// Messages from the frames are accepted only when `origin` is the vault's and `source` is one
// of this instance's iframes, and carry this instance's random channel id.
import { CardSealError } from './error.js';
import { FIELDS_VERSION } from './fields-version.js';
import { labelOf } from './labels.js';
import { sanitizeStyle } from './style.js';
import {
  DEFAULT_RETRY_WINDOW_MS, DEFAULT_TIMEOUT_MS, clearPending, unavailableKey, unavailableMessage, withRetries,
} from './unavailable.js';

export { CardSealError };

const KINDS = ['number', 'expiry', 'cvc', 'name', 'card'];
const HEIGHT = { card: 190, default: 72 };
const EVENTS = ['ready', 'change', 'focus', 'blur', 'submit', 'unavailable'];
// How long after an iframe's `load` its document's first message may still be on its way.
const LOAD_GRACE_MS = 1000;

function localeOf(locale) {
  if (locale === 'auto') {
    for (const tag of (typeof navigator !== 'undefined' && navigator.languages) || []) {
      const key = unavailableKey(tag);
      if (key) return key;
    }
    return 'en';
  }
  return (locale && unavailableKey(locale)) || 'en';
}

function randomId() {
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function usage(message) {
  return new CardSealError('invalid_usage', `cardseal: ${message}`);
}

function errorFrom(e) {
  const err = new CardSealError(String(e.code), String(e.message), { type: e.type, param: e.param ?? null, status: e.status ?? undefined });
  if (Array.isArray(e.errors)) err.errors = e.errors;
  return err;
}

/**
 * Hosted fields: `{ vaultUrl, publishableKey, locale?, style?, timeoutMs?, retries? }`.
 * Returns `{ create(kind, options?), tokenize({ name? }?), tokenizeCvc(), ready(), locale }`.
 */
export function fields(options) {
  const o = options ?? {};
  if (typeof o.vaultUrl !== 'string' || !/^https?:\/\/[^/]/.test(o.vaultUrl)) throw usage('fields() needs `vaultUrl`, e.g. https://vault.example');
  if (typeof o.publishableKey !== 'string' || !o.publishableKey.startsWith('pk_')) throw usage('fields() needs a publishable key (pk_…)');
  const base = o.vaultUrl.replace(/\/+$/, '');
  const vaultOrigin = new URL(base).origin;
  const channel = randomId();
  const locale = localeOf(o.locale);
  const timeoutMs = Number.isSafeInteger(o.timeoutMs) && o.timeoutMs > 0 ? o.timeoutMs : DEFAULT_TIMEOUT_MS;
  let style = sanitizeStyle(o.style);
  const elements = new Map();
  const pending = new Map();
  let seq = 0;
  let inFlight = false;

  window.addEventListener('message', (e) => {
    if (e.origin !== vaultOrigin) return;
    const m = e.data;
    if (!m || typeof m !== 'object' || m.channel !== channel || typeof m.type !== 'string') return;
    for (const el of elements.values()) {
      if (el.iframe && el.iframe.contentWindow === e.source) {
        el.receive(m);
        return;
      }
    }
  });

  function srcOf(kind, opts) {
    const h = new URLSearchParams({ channel, origin: location.origin, locale, timeout: String(timeoutMs) });
    if (Number.isSafeInteger(o.retries)) h.set('retries', String(o.retries));
    if (Object.keys(style).length) h.set('style', JSON.stringify(style));
    if (typeof opts.placeholder === 'string') h.set('placeholder', opts.placeholder);
    return `${base}/fields/${FIELDS_VERSION}/${kind}.html?pk=${encodeURIComponent(o.publishableKey)}#${h}`;
  }

  class Field {
    #opts;
    #handlers = new Map();
    #waiters = [];
    #heard = false;
    #failed = null;

    constructor(kind, opts) {
      this.kind = kind;
      this.#opts = opts;
      this.iframe = null;
      this.host = null;
      this.isReady = false;
    }

    /** Inserts the iframe into `target` (an element or a selector); again after unmount. */
    mount(target) {
      const host = typeof target === 'string' ? document.querySelector(target) : target;
      if (!host || typeof host.appendChild !== 'function') throw usage(`mount() found no element for ${String(target)}`);
      if (this.iframe) this.unmount();
      const iframe = document.createElement('iframe');
      iframe.title = this.#opts.title ?? labelOf(this.kind, locale);
      iframe.src = srcOf(this.kind, this.#opts);
      iframe.setAttribute('scrolling', 'no');
      iframe.setAttribute('allowtransparency', 'true');
      iframe.dataset.cardsealFrame = this.kind;
      iframe.style.cssText = `display:block;width:100%;border:0;margin:0;padding:0;overflow:hidden;background:transparent;height:${HEIGHT[this.kind] ?? HEIGHT.default}px`;
      // A field document says `hello` before its `load`; an iframe that loads without it holds
      // the browser's error page (the vault refused the connection, or the frame was refused):
      // fail now rather than after the timeout.
      let inserting = true;
      iframe.addEventListener('load', () => {
        if (inserting) return; // the initial about:blank of some engines
        setTimeout(() => {
          if (this.iframe !== iframe || this.#heard || this.isReady) return;
          this.#fail(new CardSealError('network_error', `cardseal: the ${this.kind} field could not be loaded`, { type: 'api_connection_error' }));
        }, LOAD_GRACE_MS);
      });
      this.iframe = iframe;
      this.host = host;
      this.isReady = false;
      this.#heard = false;
      this.#failed = null;
      host.appendChild(iframe);
      inserting = false;
      return this;
    }

    /** Removes the iframe (and the value in it). */
    unmount() {
      this.iframe?.remove();
      this.iframe = null;
      this.isReady = false;
      return this;
    }

    /** Moves the focus into the field. */
    focus() {
      this.iframe?.focus();
      this.#post({ type: 'focus' });
      return this;
    }

    /** Empties the field. */
    clear() {
      this.#post({ type: 'clear' });
      return this;
    }

    /** `{ style?, placeholder? }`; the style goes through the allow-list again. */
    update(changes) {
      const c = changes ?? {};
      const msg = { type: 'update' };
      if (c.style !== undefined) {
        style = sanitizeStyle(c.style);
        msg.style = style;
        // Every field of the instance shares the style, as at creation.
        for (const el of elements.values()) if (el !== this) el.#post({ type: 'update', style });
      }
      if (typeof c.placeholder === 'string') msg.placeholder = c.placeholder;
      this.#post(msg);
      return this;
    }

    /** `ready`, `change`, `focus`, `blur`, `submit` (Enter in the field), `unavailable`. */
    on(type, fn) {
      if (!EVENTS.includes(type) || typeof fn !== 'function') throw usage(`on(): unknown event ${String(type)}`);
      if (!this.#handlers.has(type)) this.#handlers.set(type, new Set());
      this.#handlers.get(type).add(fn);
      return this;
    }

    off(type, fn) {
      this.#handlers.get(type)?.delete(fn);
      return this;
    }

    #emit(type, detail) {
      for (const fn of this.#handlers.get(type) ?? []) {
        try {
          fn(detail);
        } catch (e) {
          console.error(e);
        }
      }
    }

    #post(msg) {
      this.iframe?.contentWindow?.postMessage({ ...msg, channel }, vaultOrigin);
    }

    send(msg) {
      this.#post(msg);
    }

    /** Resolves once the frame is ready; rejects after `ms`, or when the frame reports trouble. */
    whenReady(ms) {
      if (this.isReady) return Promise.resolve();
      if (this.#failed) return Promise.reject(this.#failed);
      return new Promise((resolve, reject) => {
        const w = { resolve, reject };
        const timer = setTimeout(() => {
          this.#waiters = this.#waiters.filter((x) => x !== w);
          reject(new CardSealError('timeout', `cardseal: the ${this.kind} field did not load in time`, { type: 'api_connection_error' }));
        }, ms);
        w.resolve = () => { clearTimeout(timer); resolve(); };
        w.reject = (e) => { clearTimeout(timer); reject(e); };
        this.#waiters.push(w);
      });
    }

    #fail(err) {
      this.#failed = err;
      for (const w of this.#waiters.splice(0)) w.reject(err);
      this.#emit('unavailable', { kind: this.kind, code: err.code });
    }

    receive(m) {
      const { kind } = this;
      this.#heard = true;
      switch (m.type) {
        case 'ready':
          this.isReady = true;
          for (const w of this.#waiters.splice(0)) w.resolve();
          this.#emit('ready', { kind });
          break;
        case 'change':
          this.#emit('change', {
            kind, complete: m.complete === true, empty: m.empty === true, brand: typeof m.brand === 'string' ? m.brand : null,
            error: m.error && typeof m.error.code === 'string' ? { code: m.error.code, message: String(m.error.message ?? '') } : null,
          });
          break;
        case 'focus':
        case 'blur':
          this.#emit(m.type, { kind });
          break;
        case 'resize':
          if (Number.isFinite(m.height) && m.height > 0 && this.iframe) this.iframe.style.height = `${Math.min(Math.ceil(m.height), 800)}px`;
          break;
        case 'submit':
          this.#emit('submit', { kind });
          this.iframe?.closest('form')?.requestSubmit();
          break;
        case 'unavailable':
          this.#fail(new CardSealError(String(m.code), 'cardseal: the vault could not be reached from the field', { type: 'api_connection_error' }));
          break;
        case 'result': {
          const p = pending.get(m.id);
          if (!p || p.kind !== kind) break;
          pending.delete(m.id);
          if (m.token && typeof m.token === 'object') p.resolve(m.token);
          else p.reject(errorFrom(m.error ?? { code: 'api_error', message: 'cardseal: no answer' }));
          break;
        }
        default:
      }
    }
  }

  function request(el, msg) {
    const id = ++seq;
    return new Promise((resolve, reject) => {
      // The frame has its own deadline (`timeoutMs` over the retries); this one only covers a
      // frame that went away.
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new CardSealError('timeout', 'cardseal: the field did not answer in time', { type: 'api_connection_error' }));
      }, timeoutMs + 5000);
      pending.set(id, {
        kind: el.kind,
        resolve: (v) => { clearTimeout(timer); resolve(v); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      el.send({ ...msg, id });
    });
  }

  async function run(el, msg) {
    if (!el || !el.iframe) throw usage(msg.type === 'tokenize' ? 'mount a number or card field before tokenize()' : 'mount a cvc field before tokenizeCvc()');
    if (inFlight) throw new CardSealError('tokenize_in_progress', 'cardseal: a tokenize call is already running');
    inFlight = true;
    try {
      await el.whenReady(timeoutMs);
      const kinds = [...elements.values()].filter((x) => x.iframe).map((x) => x.kind);
      return await request(el, { ...msg, kinds });
    } finally {
      inFlight = false;
    }
  }

  return {
    /** The language of the fields' labels and messages. */
    locale,
    /** A field: `number`, `expiry`, `cvc`, `name`, or `card` (all four in one iframe). */
    create(kind, opts) {
      if (!KINDS.includes(kind)) throw usage(`create(): unknown field ${String(kind)}; use ${KINDS.join(', ')}`);
      if (elements.has(kind)) throw usage(`create(): there is already a ${kind} field`);
      const el = new Field(kind, opts ?? {});
      elements.set(kind, el);
      return el;
    },
    /** The field of a kind, if created. */
    getElement(kind) {
      return elements.get(kind) ?? null;
    },
    /** Resolves once every mounted field is ready (rejects with `timeout` after `ms`). */
    ready(ms = timeoutMs) {
      return Promise.all([...elements.values()].filter((x) => x.iframe).map((x) => x.whenReady(ms))).then(() => undefined);
    },
    /** Validates, seals and posts the card from inside the frames; resolves to a Token. */
    tokenize(input) {
      const name = input && typeof input.name === 'string' ? input.name : undefined;
      return run(elements.get('card') ?? elements.get('number'), { type: 'tokenize', name });
    },
    /** Seals and posts the CVC field's value alone; resolves to a Token of type `cvc`. */
    tokenizeCvc() {
      return run(elements.get('cvc') ?? elements.get('card'), { type: 'tokenize-cvc' });
    },
  };
}

function emit(target, type, detail, cancelable = false) {
  return target.dispatchEvent(new CustomEvent(type, { bubbles: true, cancelable, detail }));
}

/**
 * The form mode of hosted fields: mounts a field in each `[data-cardseal-field="kind"]` of a
 * `<form data-cardseal-fields>`; on submit tokenizes, clears the fields, adds the hidden
 * `cardseal_token` input and submits. Fires `cardseal:ready`, `cardseal:change`,
 * `cardseal:brand`, `cardseal:token` and `cardseal:error` on the form, as the direct mode does.
 * Options: those of `fields()`, plus `submit` (default true) and `retryWindowMs`.
 */
export function attachFields(formOrSelector, options) {
  const form = typeof formOrSelector === 'string' ? document.querySelector(formOrSelector) : formOrSelector;
  if (!form || form.tagName !== 'FORM') throw new TypeError('cardseal: attachFields() needs a <form> element or a selector for one');
  const o = options ?? {};
  const f = fields(o);
  const submit = o.submit !== false;
  const formError = form.querySelector('[data-cardseal-error="form"]');
  const els = [];
  let brand = null;
  let busy = false;
  let attached = false;
  for (const host of form.querySelectorAll('[data-cardseal-field]')) {
    const kind = host.dataset.cardsealField;
    if (!KINDS.includes(kind)) {
      console.warn(`cardseal: data-cardseal-field="${kind}" is not a field; use ${KINDS.join(', ')}`);
      continue;
    }
    const el = f.create(kind, { placeholder: host.dataset.placeholder, title: host.dataset.title });
    el.on('change', (d) => {
      host.toggleAttribute('data-cardseal-invalid', Boolean(d.error));
      host.toggleAttribute('data-cardseal-complete', d.complete);
      if ((kind === 'number' || kind === 'card') && d.brand !== brand) {
        brand = d.brand;
        form.dataset.cardsealBrand = brand ?? '';
        emit(form, 'cardseal:brand', { brand });
      }
      emit(form, 'cardseal:change', { field: kind, complete: d.complete, empty: d.empty, brand: d.brand, error: d.error ? d.error.code : null, message: d.error ? d.error.message : null });
    });
    el.on('focus', () => host.toggleAttribute('data-cardseal-focus', true));
    el.on('blur', () => host.toggleAttribute('data-cardseal-focus', false));
    els.push(el.mount(host));
  }
  if (!els.some((el) => el.kind === 'number' || el.kind === 'card')) {
    throw new TypeError('cardseal: the form needs a [data-cardseal-field="number"] (or "card") placeholder');
  }

  // Until every field is ready the form cannot pay; a vault that cannot be reached is retried
  // (each attempt loads the frames afresh), with the same message and event as the direct mode.
  let attempts = 0;
  const attempt = async () => {
    if (attempts++ > 0) for (const el of els) el.mount(el.host);
    await f.ready(o.timeoutMs);
  };
  const retryWindowMs = Number.isSafeInteger(o.retryWindowMs) && o.retryWindowMs > 0 ? o.retryWindowMs : DEFAULT_RETRY_WINDOW_MS;
  const started = withRetries(attempt, (e) => (e && e.type === 'api_connection_error' ? 'fields' : null), retryWindowMs).then(() => {
    attached = true;
    clearPending();
    emit(form, 'cardseal:ready', { fields: f });
  });

  function showFormError(message) {
    if (formError) formError.textContent = message ?? '';
  }

  function setBusy(on) {
    busy = on;
    form.toggleAttribute('data-cardseal-busy', on);
    for (const b of form.querySelectorAll('button[type="submit"], button:not([type]), input[type="submit"]')) b.disabled = on;
  }

  const onSubmit = async (event) => {
    event.preventDefault();
    event.stopImmediatePropagation();
    if (busy || !attached) return;
    showFormError(null);
    setBusy(true);
    try {
      const token = await f.tokenize();
      for (const el of els) el.clear();
      for (const old of form.querySelectorAll('input[name="cardseal_token"]')) old.remove();
      const hidden = document.createElement('input');
      hidden.type = 'hidden';
      hidden.name = 'cardseal_token';
      hidden.value = token.id;
      form.appendChild(hidden);
      if (emit(form, 'cardseal:token', { token }, true) && submit) {
        HTMLFormElement.prototype.submit.call(form);
      } else {
        setBusy(false);
      }
    } catch (e) {
      setBusy(false);
      if (e.type === 'validation_error') {
        (els.find((x) => x.kind === e.param) ?? els.find((x) => x.kind === 'card'))?.focus();
      } else if (e.type === 'api_connection_error' || e.status >= 500) {
        // The card stays in the fields and Pay is back: the customer can try again.
        showFormError(unavailableMessage(form, o.locale === 'auto' ? 'auto' : f.locale));
      } else {
        showFormError(e.message);
      }
      emit(form, 'cardseal:error', { code: e.code, type: e.type, param: e.param ?? null, message: e.message, status: e.status, errors: e.errors });
    }
  };
  form.addEventListener('submit', onSubmit, true);

  return {
    form,
    fields: f,
    started,
    detach() {
      form.removeEventListener('submit', onSubmit, true);
      for (const el of els) el.unmount();
    },
  };
}
