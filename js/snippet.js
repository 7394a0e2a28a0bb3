// The `<script>` snippet (pkg/snippet/cardseal.js): exposes the package as `window.cardseal`,
// loads the wasm that sits beside it (pinned by its hash, so a changed wasm does not load), and
// attaches to every `form[data-cardseal]` when the tag names a vault and a publishable key:
//   <script src="…/cardseal.js" integrity="sha384-…" crossorigin="anonymous"
//           data-vault-url="https://vault.example" data-publishable-key="pk_test_…"></script>
import * as api from './core.js';

/* global __CARDSEAL_WASM_SRI__ */
const script = document.currentScript;
const base = script && script.src ? script.src : document.baseURI;
const wasmUrl = new URL('cardseal_bg.wasm', base);

function loadWasm() {
  return fetch(wasmUrl, { integrity: __CARDSEAL_WASM_SRI__, credentials: 'omit', mode: 'cors' });
}

const ready = (source) => api.ready(source ?? loadWasm());

async function start() {
  const vaultUrl = script?.dataset.vaultUrl;
  const publishableKey = script?.dataset.publishableKey;
  try {
    await ready();
    if (!vaultUrl || !publishableKey) return;
    const cardseal = await api.CardSeal.create({ vaultUrl, publishableKey });
    const attachments = [...document.querySelectorAll('form[data-cardseal]')].map((f) => cardseal.attach(f));
    window.cardseal.instance = cardseal;
    document.dispatchEvent(new CustomEvent('cardseal:ready', { detail: { cardseal, forms: attachments.map((a) => a.form) } }));
  } catch (e) {
    console.error('cardseal:', e.message);
    const detail = { code: e.code ?? 'api_error', type: e.type ?? 'api_error', message: e.message };
    document.dispatchEvent(new CustomEvent('cardseal:error', { detail }));
  }
}

window.cardseal = { ...api, ready };
window.cardseal.started = document.readyState === 'loading'
  ? new Promise((r) => document.addEventListener('DOMContentLoaded', () => r(start()), { once: true }))
  : start();
