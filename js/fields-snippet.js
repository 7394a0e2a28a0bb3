// The hosted-fields snippet (pkg/snippet/cardseal-fields.js): the small classic script for a
// page that takes cards only through hosted fields. It loads no wasm (the field documents do),
// exposes `window.cardseal.fields` and mounts every `form[data-cardseal-fields]`:
//   <script async src="https://vault.example/js/…/cardseal-fields.js" integrity="sha384-…" crossorigin="anonymous"
//           data-vault-url="https://vault.example" data-publishable-key="pk_test_…"></script>
import { CardSealError } from './error.js';
import { attachFields, fields } from './fields.js';
import { DEFAULT_RETRY_WINDOW_MS, DEFAULT_TIMEOUT_MS, settingOf } from './unavailable.js';

/**
 * Mounts the hosted fields of every `form[data-cardseal-fields]` with the snippet tag's
 * settings (`data-vault-url`, `data-publishable-key`, `data-locale`, `data-timeout-ms`,
 * `data-retry-window-ms`). Resolves to the attachments once all are ready.
 */
export function startFieldForms(script) {
  const forms = [...document.querySelectorAll('form[data-cardseal-fields]')];
  const vaultUrl = script?.dataset.vaultUrl;
  const publishableKey = script?.dataset.publishableKey;
  if (!forms.length || !vaultUrl || !publishableKey) return Promise.resolve([]);
  const options = {
    vaultUrl, publishableKey, locale: script.dataset.locale,
    timeoutMs: settingOf(script, 'timeoutMs', DEFAULT_TIMEOUT_MS),
    retryWindowMs: settingOf(script, 'retryWindowMs', DEFAULT_RETRY_WINDOW_MS),
  };
  const attachments = forms.map((form) => {
    try {
      return attachFields(form, options);
    } catch (e) {
      console.error(e.message);
      return null;
    }
  }).filter(Boolean);
  return Promise.all(attachments.map((a) => a.started)).then(() => attachments);
}

export { CardSealError, attachFields, fields };
