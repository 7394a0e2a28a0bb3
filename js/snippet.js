// The `<script>` snippet (pkg/snippet/cardseal.js): exposes the package as `window.cardseal`,
// loads the wasm that sits beside it (pinned by its hash, so a changed wasm does not load), and
// attaches to every `form[data-cardseal]` when the tag names a vault and a publishable key:
//   <script async src="…/cardseal.js" integrity="sha384-…" crossorigin="anonymous"
//           data-vault-url="https://vault.example" data-publishable-key="pk_test_…"></script>
// It mounts hosted fields in every `form[data-cardseal-fields]` too (fields.js).
// When the wasm or the keys cannot be had, it says so in the form, fires `cardseal:unavailable`
// and retries (unavailable.js); it attaches as soon as the vault answers.
import * as api from './core.js';
import { attachFields, fields, startFieldForms } from './fields-snippet.js';
import {
  DEFAULT_RETRY_WINDOW_MS, DEFAULT_TIMEOUT_MS, announceUnavailable, clearPending, settingOf, withRetries,
} from './unavailable.js';

/* global __CARDSEAL_WASM_SRI__ */

// A second copy (the loader retried a script that was only slow) leaves the first one alone.
if (!window.cardseal) {
  const script = document.currentScript;
  const base = script && script.src ? script.src : document.baseURI;
  const wasmUrl = new URL('cardseal_bg.wasm', base);
  // `data-timeout-ms`: how long the wasm, the keys and each tokenize call may take.
  const timeoutMs = settingOf(script, 'timeoutMs', DEFAULT_TIMEOUT_MS);
  // `data-retry-window-ms`: how long to retry before waiting for the customer to touch the form.
  const retryWindowMs = settingOf(script, 'retryWindowMs', DEFAULT_RETRY_WINDOW_MS);

  const timedOut = () => new api.CardSealError('timeout', 'cardseal: the wasm module did not arrive in time', { type: 'api_connection_error' });

  const ready = (source) => {
    if (source !== undefined) return api.ready(source);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    const response = fetch(wasmUrl, { integrity: __CARDSEAL_WASM_SRI__, credentials: 'omit', mode: 'cors', signal: controller.signal });
    return api.ready(response).then(() => clearTimeout(timer), (e) => {
      clearTimeout(timer);
      throw controller.signal.aborted ? timedOut() : e;
    });
  };

  const start = async () => {
    // Hosted fields need no wasm here (the field documents load it): a page with only
    // `form[data-cardseal-fields]` loads none.
    if (document.querySelector('form[data-cardseal-fields]')) {
      const fieldForms = startFieldForms(script);
      if (!document.querySelector('form[data-cardseal]')) {
        window.cardseal.attachments = await fieldForms;
        return;
      }
    }
    const vaultUrl = script?.dataset.vaultUrl;
    const publishableKey = script?.dataset.publishableKey;
    let stage = 'wasm';
    const attempt = async () => {
      stage = 'wasm';
      await ready();
      if (!vaultUrl || !publishableKey) return null;
      stage = 'keys';
      // `data-locale`: the language of the form's messages (a tag or `auto`; English by default).
      return api.CardSeal.create({ vaultUrl, publishableKey, timeoutMs, locale: script?.dataset.locale });
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
