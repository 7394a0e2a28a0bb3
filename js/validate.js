// The validators, formatters and messages of the public API (DESIGN.md, "JavaScript API"),
// over the wasm-bindgen glue; js/core.js adds the CardSeal class and re-exports them. This file
// only normalizes inputs and decodes the packed verdicts of src/wasm/verdict.rs by the layout
// that module exports; every rule lives in Rust.
import { CardSealError } from './error.js';
import init, * as wasm from './wasm/cardseal.js';

let loading = null;
let loaded = false;
let BRANDS = [];
let ERRORS = [];
let LAYOUT = null;
let memory = null;
let inputAddress = 0;
let inputCapacity = 0;
let inputView = null;

// Short inputs are written as UTF-16 straight into a buffer in wasm memory (see src/wasm.rs,
// `INPUT`): one call instead of malloc, encode, call and free.
function packNumber(s) {
  if (s.length > inputCapacity) return wasm.validateNumberPacked(s);
  if (inputView === null || inputView.buffer !== memory.buffer) {
    // Memory growth replaces the buffer; the view is made again after it.
    inputView = new Uint16Array(memory.buffer, inputAddress, inputCapacity);
  }
  for (let i = 0; i < s.length; i++) inputView[i] = s.charCodeAt(i);
  return wasm.validateNumberInput(s.length);
}

/**
 * Loads the wasm once. Idempotent: every call returns the same promise, and a failed load may be
 * tried again. `source` is optional: a URL, a Response (or a promise of one), bytes, or a compiled
 * `WebAssembly.Module` (by default `cardseal_bg.wasm` beside this file). A wasm that cannot be
 * fetched rejects with `network_error`; one that cannot be compiled with `wasm_load_failed`.
 */
export function ready(source) {
  if (!loading) {
    loading = fetched(source ?? new URL('./wasm/cardseal_bg.wasm', import.meta.url))
      .then((module_or_path) => init({ module_or_path }).catch((err) => {
        throw new CardSealError('wasm_load_failed', `cardseal: the wasm module failed to load: ${err && err.message}`, { type: 'api_error' });
      }))
      .then((exports) => {
        memory = exports.memory;
        inputAddress = wasm.inputBuffer();
        inputCapacity = wasm.inputCapacity();
        // Tables and results off the hot path cross as plain objects (serde-wasm-bindgen, src/wasm.rs).
        BRANDS = wasm.brandTable();
        ERRORS = wasm.errorTable();
        LAYOUT = wasm.verdictLayout();
        loaded = true;
      }, (err) => {
        loading = null;
        throw err;
      });
  }
  return loading;
}

function networkError(detail, status) {
  return new CardSealError('network_error', `cardseal: the wasm module could not be fetched (${detail})`, { type: 'api_connection_error', status });
}

// Fetches a URL source here, so that a vault or CDN that cannot be reached is told apart from a
// wasm that does not compile.
async function fetched(source) {
  let s = source;
  if (typeof s === 'string' || s instanceof URL || (typeof Request === 'function' && s instanceof Request)) s = fetch(s);
  if (s && typeof s.then === 'function') {
    try {
      s = await s;
    } catch (e) {
      if (e instanceof CardSealError) throw e;
      throw networkError(e && e.message);
    }
  }
  if (typeof Response === 'function' && s instanceof Response && !s.ok) throw networkError(`HTTP ${s.status}`, s.status);
  return s;
}

function assertReady() {
  if (!loaded) {
    throw new CardSealError('not_ready', 'cardseal: call and await ready() before using the library');
  }
}

// Any value in, a string out: strings pass, safe integers become digits, null and undefined
// become empty, and anything else becomes a string no rule accepts.
export function text(v) {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? String(v) : '\u0000';
  if (v === undefined || v === null) return '';
  return '\u0000';
}

function verdict(head) {
  const code = (head >>> LAYOUT.codeShift) & LAYOUT.codeMask;
  return {
    isValid: (head & LAYOUT.validBit) !== 0,
    isPotentiallyValid: (head & LAYOUT.potentialBit) !== 0,
    code: code === 0 ? null : ERRORS[code - 1].code,
  };
}

/** The as-you-type verdict on a card number. */
export function validateNumber(number) {
  assertReady();
  const packed = packNumber(text(number));
  // The candidate set is the low 32 bits, the head word above it (`>>> 0` keeps the low 32).
  const head = (packed / LAYOUT.headScale) >>> 0;
  const b = head & LAYOUT.brandMask;
  const candidates = [];
  for (let m = packed >>> 0, i = 0; m !== 0; m >>>= 1, i++) {
    if (m & 1) candidates.push(BRANDS[i]);
  }
  return { brand: b === 0 ? null : BRANDS[b - 1], candidates, ...verdict(head) };
}

// A month given as a number is a finished value, so 0 is a wrong month rather than the first
// keystroke of "05".
function monthText(v) {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? String(v).padStart(2, '0') : text(v);
}

/** The verdict on an expiry. `month` may also be a whole `MM / YY` field when `year` is omitted. */
export function validateExpiry(month, year) {
  assertReady();
  return verdict(wasm.validateExpiryPacked(monthText(month), text(year)));
}

/** The verdict on a CVC, sized for `brand` when it is known. */
export function validateCvc(cvc, brand) {
  assertReady();
  return verdict(wasm.validateCvcPacked(text(cvc), typeof brand === 'string' ? brand : ''));
}

// A CardInput as the wasm layer reads it (src/wasm.rs, `CardInputJs`): every member text, the
// odd values a page may pass coerced as the validators coerce them. A whole `expiry`
// (`MM / YY`) goes in as the month with an empty year: the core splits it, as validateExpiry does.
export function cardInput(card) {
  const c = card !== null && typeof card === 'object' ? card : {};
  const optional = (v) => (v === undefined || v === null ? undefined : text(v));
  const [month, year] = c.expiry !== undefined && c.expiry !== null
    ? [text(c.expiry), '']
    : [monthText(c.exp_month), text(c.exp_year)];
  return { number: text(c.number), exp_month: month, exp_year: year, cvc: optional(c.cvc), name: optional(c.name) };
}

/** Every field's error at once. */
export function validateCard(card) {
  assertReady();
  return wasm.validateCard(cardInput(card));
}

function caretOf(caret) {
  return Number.isSafeInteger(caret) && caret >= 0 && caret < 2 ** 31 ? caret : -1;
}

/** Formats a card number as the customer types (`4242 4242 4242 4242`, amex `3782 822463 10005`). */
export function formatCardNumber(input, caret) {
  assertReady();
  return (wasm.formatCardNumber(text(input), caretOf(caret)));
}

/** Formats an expiry as `MM / YY`. */
export function formatExpiry(input, caret) {
  assertReady();
  return (wasm.formatExpiry(text(input), caretOf(caret)));
}

/** Formats a CVC: digits only, at most 4 (the longest CVC of any brand). */
export function formatCvc(input, caret) {
  assertReady();
  return (wasm.formatCvc(text(input), caretOf(caret)));
}

const LOCALE_TABLES = new Map();
const WARNED_LOCALES = new Set();

/**
 * The supported locale for `locale`: a BCP 47 tag (`pt` gives `pt-BR`, `zh-CN` gives `zh-Hans`),
 * `'auto'` (the first supported entry of `navigator.languages`) or nothing (English). Anything
 * else is English, with one console warning per value.
 */
export function resolveLocale(locale) {
  assertReady();
  if (locale === undefined || locale === null || locale === '' || locale === 'en') return 'en';
  if (locale === 'auto') {
    const preferred = (typeof navigator !== 'undefined' && navigator.languages) || [];
    for (const tag of preferred) {
      const found = wasm.resolveLocale(String(tag));
      if (found) return found;
    }
    return 'en';
  }
  const found = typeof locale === 'string' ? wasm.resolveLocale(locale) : undefined;
  if (found) return found;
  const key = String(locale);
  if (!WARNED_LOCALES.has(key)) {
    WARNED_LOCALES.add(key);
    console.warn(`cardseal: the locale ${JSON.stringify(key)} is not supported; messages are in English`);
  }
  return 'en';
}

/** The message for an error code in `locale` (see `resolveLocale`; English by default), or `undefined`. */
export function messageFor(code, locale) {
  assertReady();
  const i = ERRORS.findIndex((x) => x.code === code);
  if (i < 0) return undefined;
  const tag = resolveLocale(locale);
  if (tag === 'en') return ERRORS[i].message;
  let table = LOCALE_TABLES.get(tag);
  if (!table) {
    table = wasm.localeMessages(tag);
    LOCALE_TABLES.set(tag, table);
  }
  return table[i];
}

// The customer-facing messages of a result or error, in `locale`.
export function localizedErrors(errors, locale) {
  return errors.map((e) => ({ ...e, message: messageFor(e.code, locale) ?? e.message }));
}

export function localizedError(err, locale) {
  if (locale === 'en') return err;
  if (Array.isArray(err.errors)) err.errors = localizedErrors(err.errors, locale);
  const message = ERRORS.some((x) => x.code === err.code && x.field) ? messageFor(err.code, locale) : undefined;
  if (message) err.message = message;
  return err;
}

// Errors from the wasm layer arrive as plain `{ code, type, param, message, status?, errors? }`
// objects (src/wasm/error.rs).
export function toCardSealError(e) {
  if (e instanceof CardSealError) return e;
  if (e && typeof e === 'object' && !(e instanceof Error) && typeof e.code === 'string') {
    const err = new CardSealError(e.code, e.message, { type: e.type, param: e.param ?? null, status: e.status });
    if (Array.isArray(e.errors)) err.errors = e.errors;
    return err;
  }
  return new CardSealError('api_error', `cardseal: ${e && e.message ? e.message : String(e)}`, { type: 'api_error' });
}

// A call into the wasm, its plain error objects made CardSealErrors.
export function sealing(f) {
  try {
    return f();
  } catch (e) {
    throw toCardSealError(e);
  }
}

/**
 * The wasm's vault client for `CardSeal.create` options (src/wasm/client.rs). Options are read
 * at once: a getter that throws makes them bad, like a member of the wrong type.
 */
export async function newClient(options) {
  let pending;
  try {
    pending = wasm.Client.create(options);
  } catch (e) {
    throw e && typeof e === 'object' && !(e instanceof Error) && typeof e.code === 'string'
      ? toCardSealError(e)
      : new CardSealError('invalid_options', 'CardSeal.create needs { vaultUrl, publishableKey } strings.', { param: 'options' });
  }
  try {
    return await pending;
  } catch (e) {
    throw toCardSealError(e);
  }
}
