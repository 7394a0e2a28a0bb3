// The entry of pkg/snippet/cardseal-fields.js (see fields-snippet.js).
import { CardSealError, attachFields, fields, startFieldForms } from './fields-snippet.js';

if (!window.cardseal) {
  const script = document.currentScript;
  window.cardseal = { fields, attachFields, CardSealError };
  const start = () => startFieldForms(script).then((attachments) => {
    window.cardseal.attachments = attachments;
    return attachments;
  });
  window.cardseal.started = document.readyState === 'loading'
    ? new Promise((r) => document.addEventListener('DOMContentLoaded', () => r(start()), { once: true }))
    : start();
}
