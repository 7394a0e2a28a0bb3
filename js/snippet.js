// The `<script>` snippet (pkg/snippet/cardseal.js): exposes the package as `window.cardseal`,
// loads the wasm that sits beside it (pinned by its hash, so a changed wasm does not load), and
// attaches to every `form[data-cardseal]` when the tag names a vault and a publishable key:
//   <script async src="…/cardseal.js" integrity="sha384-…" crossorigin="anonymous"
//           data-vault-url="https://vault.example" data-publishable-key="pk_test_…"></script>
// It mounts hosted fields in every `form[data-cardseal-fields]` too (fields.js).
// When the wasm or the keys cannot be had, it says so in the form, fires `cardseal:unavailable`
// and retries (unavailable.js); it attaches as soon as the vault answers.
//
// Start-up: as soon as the script runs, the wasm's fetch and compile and the keys' fetch start,
// side by side; the forms are attached once the DOM is ready and both have arrived. Each step
// leaves a `performance.mark` (`cardseal:script`, `cardseal:wasm-compiled`, `cardseal:wasm-ready`,
// `cardseal:keys`, `cardseal:dom`, `cardseal:ready`) for anyone timing the page.
import { fetchKeys, readOptions } from './client.js';
import * as api from './core.js';
import { attachFields, fields, startFieldForms } from './fields-snippet.js';
import {
  DEFAULT_RETRY_WINDOW_MS, DEFAULT_TIMEOUT_MS, announceUnavailable, clearPending, settingOf, withRetries,
} from './unavailable.js';

/* global __CARDSEAL_WASM_SRI__ */

const mark = (name) => {
  try {
    performance.mark(`cardseal:${name}`);
  } catch {
    // No User Timing here: nothing to record.
  }
};

// A second copy (the loader retried a script that was only slow) leaves the first one alone.
if (!window.cardseal) {
  mark('script');
  const script = document.currentScript;
  const base = script && script.src ? script.src : document.baseURI;
  const wasmUrl = new URL('cardseal_bg.wasm', base);
  // `data-timeout-ms`: how long the wasm, the keys and each tokenize call may take.
  const timeoutMs = settingOf(script, 'timeoutMs', DEFAULT_TIMEOUT_MS);
  // `data-retry-window-ms`: how long to retry before waiting for the customer to touch the form.
  const retryWindowMs = settingOf(script, 'retryWindowMs', DEFAULT_RETRY_WINDOW_MS);
  const vaultUrl = script?.dataset.vaultUrl;
  const publishableKey = script?.dataset.publishableKey;

  const timedOut = () => new api.CardSealError('timeout', 'cardseal: the wasm module did not arrive in time', { type: 'api_connection_error' });
  const notFetched = (detail, status) => new api.CardSealError('network_error', `cardseal: the wasm module could not be fetched (${detail})`,
    { type: 'api_connection_error', status });
  const notCompiled = (e) => new api.CardSealError('wasm_load_failed', `cardseal: the wasm module failed to load: ${e && e.message}`, { type: 'api_error' });

  // The wasm beside the script, checked against its hash, compiled as it streams in (on the
  // verified bytes when the server does not call it application/wasm), within the timeout.
  const compiled = async () => {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      let response;
      // The credentials mode of `<link rel=preload as=fetch crossorigin=anonymous>` (README), so
      // that a preloaded wasm is taken over; none go to another origin either way.
      try {
        response = await fetch(wasmUrl, { integrity: __CARDSEAL_WASM_SRI__, credentials: 'same-origin', mode: 'cors', signal: controller.signal });
      } catch (e) {
        throw notFetched(e && e.message);
      }
      if (!response.ok) throw notFetched(`HTTP ${response.status}`, response.status);
      const streams = typeof WebAssembly.compileStreaming === 'function'
        && ['basic', 'cors', 'default'].includes(response.type)
        && /^application\/wasm\s*(?:;|$)/i.test(response.headers.get('Content-Type') || '');
      let bytes;
      try {
        bytes = streams ? undefined : await response.arrayBuffer();
      } catch (e) {
        throw notFetched(e && e.message);
      }
      try {
        return await (streams ? WebAssembly.compileStreaming(response) : WebAssembly.compile(bytes));
      } catch (e) {
        // The body failing mid-stream is the network's fault; anything else, the module's (or a
        // CSP without 'wasm-unsafe-eval').
        throw e && e.name === 'TypeError' && streams ? notFetched(e.message) : notCompiled(e);
      }
    } catch (e) {
      throw controller.signal.aborted ? timedOut() : e;
    } finally {
      clearTimeout(timer);
    }
  };

  // One load at a time, and once it succeeded, never again.
  let loading = null;
  const loadWasm = () => {
    loading ??= compiled().then((module) => {
      mark('wasm-compiled');
      return api.ready(module);
    }).then(() => mark('wasm-ready'), (e) => {
      loading = null;
      throw e;
    });
    return loading;
  };

  const ready = (source) => (source !== undefined ? api.ready(source) : loadWasm());

  // The keys as JWKS text (their parse waits for the wasm, in CardSeal.create).
  const loadKeys = () => {
    let client;
    try {
      client = readOptions({ vaultUrl, publishableKey, timeoutMs });
    } catch (e) {
      return Promise.reject(e);
    }
    return fetchKeys(client).then((keys) => {
      mark('keys');
      return keys;
    });
  };

  // What the first attempt picks up: started at once, before the DOM is ready. A page whose
  // DOM is already there with hosted fields only loads neither.
  const needed = () => document.readyState === 'loading' || document.querySelector('form[data-cardseal]')
    || !document.querySelector('form[data-cardseal-fields]');
  let early = null;
  if (needed()) {
    early = { wasm: loadWasm(), keys: vaultUrl && publishableKey ? loadKeys() : null };
    // Failures are reported by the attempt that picks them up, after the DOM is ready.
    early.wasm.catch(() => {});
    early.keys?.catch(() => {});
  }

  const start = async () => {
    mark('dom');
    // Hosted fields need no wasm here (the field documents load it).
    if (document.querySelector('form[data-cardseal-fields]')) {
      const fieldForms = startFieldForms(script);
      if (!document.querySelector('form[data-cardseal]')) {
        window.cardseal.attachments = await fieldForms;
        return;
      }
    }
    let stage = 'wasm';
    const attempt = async () => {
      const { wasm, keys } = early ?? { wasm: loadWasm(), keys: vaultUrl && publishableKey ? loadKeys() : null };
      early = null;
      keys?.catch(() => {});
      stage = 'wasm';
      await wasm;
      if (!keys) return null;
      stage = 'keys';
      // `data-locale`: the language of the form's messages (a tag or `auto`; English by default).
      return api.CardSeal.create({ vaultUrl, publishableKey, vaultKey: await keys, timeoutMs, locale: script?.dataset.locale });
    };
    // Worth retrying: no answer, no connection, or the vault's own trouble (5xx, 429).
    const reasonOf = (e) => {
      if (e && e.code === 'timeout') return 'timeout';
      if (e && (e.code === 'network_error' || e.status >= 500 || e.status === 429)) return stage;
      return null;
    };
    try {
      const cardseal = await withRetries(attempt, reasonOf, retryWindowMs);
      if (!cardseal) return;
      const attachments = [...document.querySelectorAll('form[data-cardseal]')].map((f) => cardseal.attach(f));
      window.cardseal.instance = cardseal;
      clearPending();
      mark('ready');
      document.dispatchEvent(new CustomEvent('cardseal:ready', { detail: { cardseal, forms: attachments.map((a) => a.form) } }));
    } catch (e) {
      // A wrong key, an origin the account does not allow, a wasm the page's CSP refuses: no
      // retry helps, but the customer still learns why the form does not work.
      console.error('cardseal:', e.message);
      const detail = { code: e.code ?? 'api_error', type: e.type ?? 'api_error', message: e.message };
      document.dispatchEvent(new CustomEvent('cardseal:error', { detail }));
      if (vaultUrl && publishableKey) announceUnavailable(stage, false);
    }
  };

  window.cardseal = { ...api, ready, fields, attachFields };
  window.cardseal.started = document.readyState === 'loading'
    ? new Promise((r) => document.addEventListener('DOMContentLoaded', () => r(start()), { once: true }))
    : start();
}
