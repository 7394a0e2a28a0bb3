// The script of a hosted-field document (`/fields/{version}/{kind}.html`, served by the vault
// with its own CSP; vault/src/fields.rs). It runs in the vault's origin, inside an iframe of the
// merchant's page: it builds the input(s), formats and checks them with the same wasm as the
// direct mode, and tells the parent only `ready`, `change` (complete, empty, brand, error code
// and message), `focus`, `blur`, its height, and Enter. Values go only to sibling frames of the
// same origin, channel and publishable key; the number (or card) frame gathers them, seals and
// posts the card to the vault, and answers the parent with the token.
//
// Messages are checked on every side: from the parent only when `source` is `window.parent`
// and `origin` is the origin it named in the URL (which must be one of the account's allowed
// origins, and the real ancestor where the browser says so); from a sibling only when `origin`
// is ours, `source` is a frame of the same parent, and that frame's own document (same origin,
// so readable here, and out of the parent's reach) holds the key and channel of this one.
import { fetchKeys, readOptions } from './client.js';
import { labelOf } from './labels.js';
import { sanitizeStyle } from './style.js';
// The keyed class without the form mode (js/core.js), which a field document never uses.
import { Tokenizer } from './tokenizer.js';
import {
  formatCardNumber, formatCvc, formatExpiry, messageFor, ready, resolveLocale,
  validateCard, validateCvc, validateExpiry, validateNumber,
} from './validate.js';

/* global __CARDSEAL_WASM_SRI__ */

const PARTS_OF = { number: ['number'], expiry: ['expiry'], cvc: ['cvc'], name: ['name'], card: ['number', 'expiry', 'cvc', 'name'] };
const SPEC = {
  number: { autocomplete: 'cc-number', numeric: true, placeholder: '1234 1234 1234 1234' },
  expiry: { autocomplete: 'cc-exp', numeric: true, placeholder: 'MM / YY' },
  cvc: { autocomplete: 'cc-csc', numeric: true, placeholder: 'CVC' },
  name: { autocomplete: 'cc-name', numeric: false, placeholder: '' },
};
const BRAND_NAMES = { visa: 'Visa', mastercard: 'Mastercard', amex: 'Amex', discover: 'Discover', diners: 'Diners', jcb: 'JCB', unionpay: 'UnionPay', maestro: 'Maestro' };

const BASE_CSS = `
html,body{margin:0;padding:0;background:transparent;overflow:hidden}
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330}
form{margin:0;padding:3px}
.field{margin:0}
.card .field{margin-bottom:4px}
.row{display:flex;gap:12px}.row>.field{flex:1;min-width:0}
label{display:block;margin:0 0 2px;font-size:14px;font-weight:600}
.vh{position:absolute;width:1px;height:1px;margin:-1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}
.box{position:relative}
input{box-sizing:border-box;width:100%;margin:0;padding:9.6px 12px;font:inherit;font-variant-numeric:tabular-nums;color:inherit;background:#fff;border:1px solid #d5d9e0;border-radius:6px}
input:focus{outline:2px solid #2b59c3;outline-offset:1px;border-color:#2b59c3}
input[aria-invalid=true]{border-color:#b3261e}
.has-brand input{padding-right:96px}
.brand{position:absolute;top:50%;right:8px;transform:translateY(-50%);padding:1px 8px;font-size:13px;font-weight:600;color:#2b59c3;background:#e9effc;border-radius:999px}
.brand:empty{display:none}
.error{margin:4px 0 0;min-height:1.35em;color:#b3261e;font-size:14px}
`;

const script = document.currentScript;
const root = document.documentElement;
const KIND = root.dataset.kind;
const PARTS = PARTS_OF[KIND] ?? [];
const hash = new URLSearchParams(location.hash.slice(1));
const channel = hash.get('channel') ?? '';
const parentOrigin = hash.get('origin') ?? '';
// The key the vault checked and served this document for (vault/src/fields.rs), not a second
// reading of the URL.
const publishableKey = root.dataset.pk ?? '';
const patterns = (root.dataset.origins ?? '').split(' ').filter(Boolean);
const positive = (v, fallback) => (Number.isSafeInteger(Number(v)) && Number(v) > 0 ? Number(v) : fallback);
const timeoutMs = positive(hash.get('timeout'), 15_000);
const retries = hash.has('retries') && /^\d{1,2}$/.test(hash.get('retries')) ? Number(hash.get('retries')) : undefined;

/** The same matching as the vault's (`accounts::origin_allowed`): exact, `*`, or a `:*` port. */
function originAllowed(origin) {
  const o = String(origin).toLowerCase();
  return patterns.some((p) => {
    if (p === '*' || p === o) return true;
    if (!p.endsWith(':*')) return false;
    const base = p.slice(0, -1);
    return o === p.slice(0, -2) || (o.startsWith(base) && /^\d{1,5}$/.test(o.slice(base.length)));
  });
}

const ancestor = location.ancestorOrigins && location.ancestorOrigins.length ? location.ancestorOrigins[0] : null;
const trusted = window.parent !== window && /^[0-9a-f]{32}$/.test(channel) && PARTS.length > 0 && publishableKey.startsWith('pk_')
  && originAllowed(parentOrigin) && (ancestor === null || ancestor === parentOrigin);

const toParent = (msg) => window.parent.postMessage({ ...msg, channel }, parentOrigin);

function isSibling(source) {
  if (!source || source === window) return false;
  try {
    for (let i = 0; i < window.parent.length; i++) if (window.parent[i] === source) return true;
  } catch { /* the parent went away */ }
  return false;
}

function siblings() {
  const out = [];
  for (let i = 0; i < window.parent.length; i++) if (window.parent[i] !== window) out.push(window.parent[i]);
  return out;
}

// What a sibling is, read from its own document: the key the vault served it for, the channel
// its script took at start, its kind; null for a frame of another origin. The parent can set
// a frame's URL but cannot reach into a document of the vault's origin, and the only script
// the vault's documents run is this one, so this is the truth about the document in that frame
// now, whatever a message says.
function peerOf(w) {
  try {
    const { pk, channel: ch, kind } = w.document.documentElement.dataset;
    return { pk, channel: ch, kind };
  } catch {
    return null;
  }
}

const ours = (peer) => peer !== null && peer.channel === channel && peer.pk === publishableKey;
// A frame of this instance's channel loaded with another key: what a page script makes by
// rewriting a frame's `pk=` (or mounting its own), to move the card to another account.
const foreign = (peer) => peer !== null && peer.channel === channel && peer.pk !== publishableKey;

const toSiblings = (msg) => {
  for (const w of siblings()) if (ours(peerOf(w))) w.postMessage({ ...msg, channel }, location.origin);
};

const mismatch = () => ({
  code: 'fields_key_mismatch', type: 'invalid_request_error', param: null,
  message: 'cardseal: a field of this form was loaded with another publishable key; nothing was sent',
});

if (!trusted) {
  // Not framed by a page of the account's allowed origins, as it claims: show nothing, answer nothing.
  console.error('cardseal: a hosted field works only inside a page of one of the account\'s allowed origins');
} else {
  start();
}

function start() {
  mark('script');
  // For the siblings' `peerOf`: the channel this document answers on, out of the parent's reach
  // (a new hash does not reload the document).
  root.dataset.channel = channel;
  // At once, before this document's `load`: the parent tells a field document that runs from an
  // error page (a vault that refused the connection) by this message missing at `load`.
  toParent({ type: 'hello' });
  let locale = 'en';
  let brand = null;
  let style = sanitizeStyle(parseJson(hash.get('style')));
  const inputs = {};
  const errors = {};
  const shown = {};
  let loaded = false;

  // The inputs exist at once, so the customer can start typing while the wasm arrives.
  const form = document.createElement('form');
  form.noValidate = true;
  form.className = KIND === 'card' ? 'card' : 'single';
  form.addEventListener('submit', (e) => e.preventDefault());
  const fieldOf = (part) => {
    const field = document.createElement('div');
    field.className = 'field';
    field.dataset.part = part;
    const label = document.createElement('label');
    label.htmlFor = `cs-${part}`;
    label.className = KIND === 'card' ? '' : 'vh';
    label.textContent = labelOf(part, 'en');
    const box = document.createElement('div');
    box.className = part === 'number' ? 'box has-brand' : 'box';
    const input = document.createElement('input');
    input.id = `cs-${part}`;
    input.type = 'text';
    input.autocomplete = SPEC[part].autocomplete;
    if (SPEC[part].numeric) input.inputMode = 'numeric';
    input.setAttribute('autocorrect', 'off');
    input.spellcheck = false;
    input.placeholder = (KIND === part && hash.get('placeholder')) || SPEC[part].placeholder;
    const error = document.createElement('p');
    error.id = `cs-${part}-error`;
    error.className = 'error';
    error.setAttribute('aria-live', 'polite');
    input.setAttribute('aria-describedby', error.id);
    box.append(input);
    if (part === 'number') {
      const b = document.createElement('span');
      b.className = 'brand';
      b.dataset.brand = '';
      box.append(b);
    }
    field.append(label, box, error);
    inputs[part] = input;
    errors[part] = error;
    shown[part] = null;
    return field;
  };
  if (KIND === 'card') {
    const row = document.createElement('div');
    row.className = 'row';
    row.append(fieldOf('expiry'), fieldOf('cvc'));
    form.append(fieldOf('number'), row, fieldOf('name'));
  } else {
    form.append(fieldOf(KIND));
  }
  document.body.append(form);

  const userSheet = applyStyles();

  function applyStyles() {
    if (typeof CSSStyleSheet !== 'function' || !('adoptedStyleSheets' in document)) return null;
    const base = new CSSStyleSheet();
    base.replaceSync(BASE_CSS);
    const user = new CSSStyleSheet();
    document.adoptedStyleSheets = [base, user];
    fillUserSheet(user);
    return user;
  }

  // Each allowed property is set through the CSSOM, never spliced into CSS text.
  function fillUserSheet(sheet) {
    while (sheet.cssRules.length) sheet.deleteRule(0);
    const states = { base: '', complete: '.is-complete ', empty: '.is-empty ', invalid: '.is-invalid ' };
    for (const [state, block] of Object.entries(style)) {
      const selectors = [[`${states[state]}input`, block]];
      if (block['::placeholder']) selectors.push([`${states[state]}input::placeholder`, block['::placeholder']]);
      if (block[':focus']) selectors.push([`${states[state]}input:focus`, block[':focus']]);
      if (block[':hover']) selectors.push([`${states[state]}input:hover`, block[':hover']]);
      for (const [selector, decls] of selectors) {
        let i;
        try {
          i = sheet.insertRule(`${selector}{}`, sheet.cssRules.length);
        } catch { continue; } // e.g. an engine without ::placeholder
        for (const [prop, value] of Object.entries(decls)) {
          if (typeof value !== 'string') continue;
          const css = prop === 'fontSmoothing' ? '-webkit-font-smoothing' : prop.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
          sheet.cssRules[i].style.setProperty(css, value);
        }
      }
    }
  }

  const resize = () => toParent({ type: 'resize', height: Math.ceil(form.getBoundingClientRect().height) });
  if (typeof ResizeObserver === 'function') new ResizeObserver(resize).observe(form);
  else resize();

  function verdictOf(part) {
    const value = inputs[part].value;
    switch (part) {
      case 'number': return validateNumber(value);
      case 'expiry': return validateExpiry(value);
      case 'cvc': return validateCvc(value, brand);
      default: return { isValid: true, isPotentiallyValid: true, code: null };
    }
  }

  function show(part, code) {
    if (!inputs[part]) return;
    shown[part] = code;
    const message = code ? (messageFor(code, locale) ?? code) : '';
    errors[part].textContent = message;
    if (message) errors[part].lang = locale;
    if (code) inputs[part].setAttribute('aria-invalid', 'true');
    else inputs[part].removeAttribute('aria-invalid');
    errors[part].parentElement.classList.toggle('is-invalid', Boolean(code));
  }

  // What the parent learns: never a value, a length or digits.
  function report() {
    const verdicts = PARTS.map((p) => [p, verdictOf(p)]);
    const required = verdicts.filter(([p]) => p !== 'name');
    const complete = required.every(([, v]) => v.isValid);
    const empty = PARTS.every((p) => !inputs[p].value);
    const errorPart = PARTS.find((p) => shown[p]);
    for (const [p, v] of verdicts) {
      const field = errors[p].parentElement;
      field.classList.toggle('is-complete', v.isValid && Boolean(inputs[p].value));
      field.classList.toggle('is-empty', !inputs[p].value);
    }
    const msg = { type: 'change', complete, empty, error: errorPart ? { code: shown[errorPart], message: messageFor(shown[errorPart], locale) } : null };
    if (PARTS.includes('number')) msg.brand = brand;
    toParent(msg);
  }

  function changed(part) {
    const v = verdictOf(part);
    // While typing, only errors that more typing cannot fix are shown.
    show(part, v.isPotentiallyValid ? null : v.code);
    report();
  }

  function reformat(input, format) {
    const f = format(input.value, input.selectionStart ?? input.value.length);
    if (f.value !== input.value) {
      input.value = f.value;
      if (document.activeElement === input) input.setSelectionRange(f.caret, f.caret);
    }
    return f.value;
  }

  function setBrand(b) {
    if (b === brand) return;
    brand = b;
    const badge = form.querySelector('.brand');
    if (badge) {
      badge.textContent = b ? (BRAND_NAMES[b] ?? b) : '';
      badge.dataset.brand = b ?? '';
    }
    if (inputs.cvc && inputs.cvc.value) changed('cvc');
  }

  const onInput = {
    number() {
      const b = validateNumber(reformat(inputs.number, formatCardNumber)).brand;
      if (b !== brand) {
        setBrand(b);
        toSiblings({ type: 'brand', brand: b });
      }
      changed('number');
    },
    expiry() { reformat(inputs.expiry, formatExpiry); changed('expiry'); },
    cvc() { reformat(inputs.cvc, formatCvc); changed('cvc'); },
    name() { changed('name'); },
  };

  for (const part of PARTS) {
    const input = inputs[part];
    input.addEventListener('input', () => { if (loaded) onInput[part](); });
    input.addEventListener('blur', () => {
      if (!loaded || !input.value) return;
      const v = verdictOf(part);
      show(part, v.isValid ? null : v.code);
      report();
    });
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.isComposing) {
        e.preventDefault();
        toParent({ type: 'submit' });
      }
    });
  }
  form.addEventListener('focusin', (e) => { if (!form.contains(e.relatedTarget)) toParent({ type: 'focus' }); });
  form.addEventListener('focusout', (e) => { if (!form.contains(e.relatedTarget)) toParent({ type: 'blur' }); });

  function clear() {
    for (const part of PARTS) {
      inputs[part].value = '';
      show(part, null);
    }
    if (PARTS.includes('number')) setBrand(null);
    if (loaded) report();
  }

  // The card instance, for the frames that seal: the number (or card) frame at once, the CVC
  // frame only when asked to tokenize a CVC alone.
  // The first one takes the keys fetched beside the wasm (`earlyKeys`); one made again after a
  // failure fetches its own.
  let sealer = null;
  let earlyKeys = null;
  const seal = () => {
    if (!sealer) {
      const options = { vaultUrl: location.origin, publishableKey, locale, timeoutMs, retries };
      const keys = earlyKeys;
      earlyKeys = null;
      sealer = (keys ? keys.then((vaultKey) => Tokenizer.create({ ...options, vaultKey })) : Tokenizer.create(options)).catch((e) => {
        sealer = null;
        throw e;
      });
    }
    return sealer;
  };

  const errorOf = (e) => ({
    code: String(e?.code ?? 'api_error'), type: String(e?.type ?? 'api_error'), param: e?.param ?? null,
    message: String(e?.message ?? e), status: e?.status,
    errors: Array.isArray(e?.errors) ? e.errors.map(({ field, code, message }) => ({ field, code, message })) : undefined,
  });

  // Each sibling of this key and channel gets its own MessageChannel: the answer can reach only
  // the document that asked, even if the page reloads this frame with another key meanwhile.
  function collect(kinds) {
    const wanted = kinds.filter((k) => !PARTS.includes(k) && Object.hasOwn(SPEC, k));
    if (!wanted.length) return Promise.resolve({});
    const got = {};
    const ports = [];
    let answered = 0;
    return new Promise((resolve, reject) => {
      const done = (error) => {
        clearTimeout(timer);
        for (const p of ports.splice(0)) p.close();
        if (error) return reject(error);
        // A field that did not answer counts as empty, so validation names it.
        for (const k of wanted) got[k] ??= '';
        return resolve(got);
      };
      const timer = setTimeout(done, 3000);
      for (const w of siblings()) {
        const peer = peerOf(w);
        if (!ours(peer) || !wanted.includes(peer.kind)) continue;
        const { port1, port2 } = new MessageChannel();
        ports.push(port1);
        port1.onmessage = ({ data }) => {
          if (!ports.includes(port1)) return;
          // The document that answers must still be the one of our key that was asked.
          if (data?.type === 'refused' || !ours(peerOf(w))) return done(mismatch());
          if (data?.type === 'value' && typeof data.value === 'string') got[peer.kind] = data.value;
          if (++answered === ports.length || wanted.every((k) => k in got)) done();
        };
        w.postMessage({ type: 'collect', channel }, location.origin, [port2]);
      }
      if (!ports.length) done();
    });
  }

  let busy = false;
  async function tokenize(m) {
    const reply = (body) => toParent({ type: 'result', id: m.id, ...body });
    if (busy) return reply({ error: { code: 'tokenize_in_progress', type: 'invalid_request_error', message: 'cardseal: a tokenize call is already running' } });
    busy = true;
    try {
      // A sealing frame refuses to work beside a frame of another key, before it asks anyone.
      if (siblings().some((w) => foreign(peerOf(w)))) return reply({ error: mismatch() });
      // A CVC alone needs no other field's value.
      const kinds = m.type === 'tokenize' && Array.isArray(m.kinds) ? m.kinds.filter((k) => typeof k === 'string') : [];
      const values = { ...Object.fromEntries(PARTS.map((p) => [p, inputs[p].value])), ...(await collect(kinds)) };
      if (m.type === 'tokenize-cvc') {
        const v = validateCvc(values.cvc ?? '', brand);
        if (!v.isValid) {
          show('cvc', v.code);
          report();
          return reply({ error: { code: v.code, type: 'validation_error', param: 'cvc', message: messageFor(v.code, locale) } });
        }
        return reply({ token: await (await seal()).tokenizeCvc(values.cvc) });
      }
      const card = { number: values.number ?? '', exp_month: values.expiry ?? '', exp_year: '' };
      if (values.cvc !== undefined) card.cvc = values.cvc;
      const name = typeof m.name === 'string' && m.name.trim() ? m.name : values.name;
      if (name && name.trim()) card.name = name;
      const result = validateCard(card);
      if (!result.valid) {
        const list = result.errors.map(({ field, code }) => ({ field, code, message: messageFor(code, locale) }));
        for (const p of PARTS) show(p, null);
        for (const e of list) show(e.field, e.code);
        report();
        toSiblings({ type: 'errors', errors: list.map(({ field, code }) => ({ field, code })) });
        const first = list[0];
        return reply({ error: { code: first.code, type: 'validation_error', param: first.field, message: first.message, errors: list } });
      }
      return reply({ token: await (await seal()).tokenize(card) });
    } catch (e) {
      return reply({ error: errorOf(e) });
    } finally {
      busy = false;
    }
  }

  function fromParent(m) {
    switch (m.type) {
      case 'focus': inputs[PARTS[0]].focus(); break;
      case 'clear': clear(); break;
      case 'update':
        if (m.style !== undefined) {
          style = sanitizeStyle(m.style);
          if (userSheet) fillUserSheet(userSheet);
        }
        if (typeof m.placeholder === 'string' && KIND !== 'card') inputs[KIND].placeholder = m.placeholder;
        break;
      case 'tokenize':
        if (loaded && PARTS.includes('number') && typeof m.id === 'number') tokenize(m);
        break;
      case 'tokenize-cvc':
        if (loaded && PARTS.includes('cvc') && typeof m.id === 'number') tokenize(m);
        break;
      default:
    }
  }

  function fromSibling(m, source, port) {
    const peer = peerOf(source);
    if (peer === null || peer.channel !== channel) return;
    if (m.type === 'collect' && port) {
      // Only a number frame collects. The value goes to it only if its document holds this
      // document's key: one loaded with another key is told no, and fails with a clear code.
      // One value per frame; the card frame is never asked (it seals itself).
      if (peer.pk !== publishableKey) port.postMessage({ type: 'refused' });
      else if (peer.kind === 'number' && PARTS.length === 1) port.postMessage({ type: 'value', value: inputs[KIND].value });
      port.close();
      return;
    }
    if (peer.pk !== publishableKey) return;
    switch (m.type) {
      case 'brand':
        if (loaded && !PARTS.includes('number') && (m.brand === null || typeof m.brand === 'string')) setBrand(m.brand);
        break;
      case 'errors':
        if (loaded && Array.isArray(m.errors)) {
          for (const p of PARTS) show(p, null);
          for (const e of m.errors) if (e && PARTS.includes(e.field)) show(e.field, e.code);
          report();
        }
        break;
      default:
    }
  }

  window.addEventListener('message', (e) => {
    const m = e.data;
    if (!m || typeof m !== 'object' || m.channel !== channel || typeof m.type !== 'string') return;
    if (e.source === window.parent && e.origin === parentOrigin) fromParent(m);
    else if (e.origin === location.origin && isSibling(e.source)) fromSibling(m, e.source, e.ports[0]);
  });

  const sealing = PARTS.includes('number');
  const wasm = fetch(new URL('cardseal_bg.wasm', script.src), { integrity: __CARDSEAL_WASM_SRI__, credentials: 'same-origin', mode: 'cors' });
  // The sealing frame's keys, beside the wasm rather than after it.
  if (sealing) {
    earlyKeys = Promise.resolve()
      .then(() => fetchKeys(readOptions({ vaultUrl: location.origin, publishableKey, timeoutMs, retries })))
      .then((keys) => {
        mark('keys');
        return keys;
      });
    earlyKeys.catch(() => {});
  }
  ready(wasm)
    .then(() => {
      mark('wasm-ready');
      locale = resolveLocale(hash.get('locale') || undefined);
      root.lang = locale;
      for (const part of PARTS) {
        if (KIND === 'card') form.querySelector(`label[for="cs-${part}"]`).textContent = labelOf(part, locale);
        else form.querySelector('label').textContent = labelOf(part, locale);
      }
      document.title = labelOf(KIND, locale);
      loaded = true;
      return sealing ? seal() : null;
    })
    .then(() => {
      // Whatever was typed (or autofilled) before the wasm arrived is formatted now.
      for (const part of PARTS) if (inputs[part].value) onInput[part]();
      mark('ready');
      toParent({ type: 'ready' });
      report();
    }, (e) => {
      console.error('cardseal:', e && e.message);
      toParent({ type: 'unavailable', code: String(e?.code ?? 'api_error') });
    });
}

// Each step of the start-up on this document's Performance timeline (`cardseal:script`,
// `cardseal:wasm-ready`, `cardseal:keys`, `cardseal:ready`), for anyone timing it.
function mark(name) {
  try {
    performance.mark(`cardseal:${name}`);
  } catch {
    // No User Timing here.
  }
}

function parseJson(s) {
  if (!s) return undefined;
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}
