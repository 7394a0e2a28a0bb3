// The loader the merchant hosts (pkg/loader/cardseal-loader.js), for the one failure the snippet
// cannot report itself: the snippet's own script not arriving from the vault. Put it before the
// snippet tag, without async or defer, so it sees the tag's `error` event:
//   <script src="/cardseal-loader.js"></script>
//   <script async src="https://vault.example/js/…/cardseal.js" integrity="sha384-…" crossorigin="anonymous"
//           data-vault-url="https://vault.example" data-publishable-key="pk_test_…"></script>
// If the script fails (`reason: 'script'`) or has not arrived after `data-timeout-ms`
// (`reason: 'timeout'`), it shows the message, fires `cardseal:unavailable`, and inserts a fresh
// copy of the tag (same `src`, `integrity`, `crossorigin` and data attributes) with backoff.
// While the snippet is not attached it also stops any `form[data-cardseal]` from submitting.
import {
  DEFAULT_RETRY_WINDOW_MS, DEFAULT_TIMEOUT_MS, isSnippetTag, settingOf, withRetries,
} from './unavailable.js';

(() => {
  if (window.cardsealLoader) return;
  window.cardsealLoader = true;
  const startedAt = Date.now();
  const ours = new WeakSet();
  // Failures of the page's own tag that happen before the DOM is ready.
  let originalFailed = false;
  // The attempt in progress: `el` is the inserted copy, or null for the page's own tag.
  let current = null;

  const arrived = () => Boolean(window.cardseal);

  window.addEventListener('error', (e) => {
    const el = e.target;
    if (!isSnippetTag(el) || arrived()) return;
    if (!ours.has(el)) originalFailed = true;
    if (current && (current.el === el || (current.el === null && !ours.has(el)))) current.fail('script');
  }, true);
  window.addEventListener('load', (e) => {
    if (!isSnippetTag(e.target)) return;
    // Whichever copy arrives first (a slow one may still win), the snippet takes over.
    if (arrived()) current?.done();
    else if (current && current.el === e.target) current.fail('script');
  }, true);

  // Until the snippet has attached, a submit would post a form without a token.
  document.addEventListener('submit', (e) => {
    const form = e.target;
    if (form && form.matches && form.matches('form[data-cardseal]') && !(window.cardseal && window.cardseal.instance)) {
      e.preventDefault();
      e.stopImmediatePropagation();
    }
  }, true);

  function attemptOn(el, timeoutMs) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail('timeout'), timeoutMs);
      function fail(reason) {
        clearTimeout(timer);
        current = null;
        reject(reason);
      }
      current = { el, fail, done() { clearTimeout(timer); current = null; resolve(); } };
    });
  }

  function copyOf(tag) {
    const el = document.createElement('script');
    for (const { name, value } of tag.attributes) if (name !== 'id') el.setAttribute(name, value);
    el.async = true;
    ours.add(el);
    return el;
  }

  function begin() {
    const tag = [...document.scripts].find((s) => isSnippetTag(s) && !ours.has(s));
    if (!tag || arrived()) return;
    const timeoutMs = settingOf(tag, 'timeoutMs', DEFAULT_TIMEOUT_MS);
    const retryWindowMs = settingOf(tag, 'retryWindowMs', DEFAULT_RETRY_WINDOW_MS);
    let first = true;
    const attempt = () => {
      if (arrived()) return Promise.resolve();
      if (first) {
        first = false;
        if (originalFailed) return Promise.reject('script');
        return attemptOn(null, Math.max(0, timeoutMs - (Date.now() - startedAt)));
      }
      const el = copyOf(tag);
      const p = attemptOn(el, timeoutMs);
      document.head.appendChild(el);
      return p;
    };
    withRetries(attempt, (reason) => reason, retryWindowMs);
  }

  // After the DOM is ready, so that the forms exist and the page's deferred scripts listen.
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', begin, { once: true });
  else begin();
})();
