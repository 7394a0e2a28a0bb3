// What the snippet and the merchant-hosted loader (loader.js) share when the vault cannot be
// reached: the customer's message, the retry schedule, and the DOM side of "unavailable" and
// "ready". The message is a small JS table rather than the wasm's error table because it is
// needed exactly when the wasm could not be loaded.

/** The customer's message, by language (the form's locale, else `<html lang>` or the nearest `lang=`). */
export const UNAVAILABLE = {
  en: 'Card payments are unavailable right now. Please try again in a moment.',
  de: 'Kartenzahlungen sind gerade nicht möglich. Bitte versuchen Sie es gleich noch einmal.',
  fr: 'Les paiements par carte sont momentanément indisponibles. Veuillez réessayer dans un instant.',
  es: 'Los pagos con tarjeta no están disponibles en este momento. Inténtelo de nuevo en unos instantes.',
  it: 'I pagamenti con carta non sono disponibili al momento. Riprova tra qualche istante.',
  nl: 'Kaartbetalingen zijn op dit moment niet beschikbaar. Probeer het zo meteen opnieuw.',
  'pt-BR': 'Os pagamentos com cartão estão indisponíveis no momento. Tente novamente em instantes.',
  pl: 'Płatności kartą są w tej chwili niedostępne. Spróbuj ponownie za chwilę.',
  sv: 'Kortbetalningar är inte tillgängliga just nu. Försök igen om en stund.',
  ja: '現在、カードでのお支払いはご利用いただけません。しばらくしてからもう一度お試しください。',
  'zh-Hans': '银行卡支付暂时无法使用，请稍后重试。',
};

/**
 * The supported locale for a language tag, by the same rules as the core's locales (`pt` is
 * `pt-BR`, `zh`/`zh-CN` are `zh-Hans`), or null; without a wasm, this is all there is to go by.
 */
export function unavailableKey(tag) {
  const t = String(tag || '').toLowerCase().replace(/_/g, '-');
  const [language, ...rest] = t.split('-');
  if (language === 'pt') return 'pt-BR';
  if (language === 'zh') return rest.some((p) => ['hant', 'tw', 'hk', 'mo'].includes(p)) ? null : 'zh-Hans';
  return Object.hasOwn(UNAVAILABLE, language) ? language : null;
}

/** How long one attempt (the script, the wasm, the keys) may take before it counts as failed. */
export const DEFAULT_TIMEOUT_MS = 15_000;
/** How long the snippet and the loader keep retrying before they wait for the customer. */
export const DEFAULT_RETRY_WINDOW_MS = 30_000;
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 4_000;

/**
 * The message in `locale` (a tag, as `data-locale` or the instance's locale give it) or else
 * the language that applies to `el`; English when there is none for it.
 */
export function unavailableMessage(el, locale) {
  if (locale && locale !== 'auto') {
    const key = unavailableKey(locale);
    if (key) return UNAVAILABLE[key];
  }
  const preferred = locale === 'auto' && typeof navigator !== 'undefined' ? navigator.languages || [] : [];
  for (const tag of preferred) {
    const key = unavailableKey(tag);
    if (key) return UNAVAILABLE[key];
  }
  const tagged = el && el.closest ? el.closest('[lang]') : null;
  const key = unavailableKey((tagged && tagged.lang) || document.documentElement.lang);
  return UNAVAILABLE[key ?? 'en'];
}

/** The wait before retry number `n` (0-based): exponential, capped, with jitter of ±50%. */
export function backoffMs(n) {
  return Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(n, 10)) * (0.5 + Math.random());
}

/** A positive integer from a `data-*` attribute of the snippet tag, or `fallback`. */
export function settingOf(script, name, fallback) {
  const n = Number(script && script.dataset ? script.dataset[name] : undefined);
  return Number.isSafeInteger(n) && n > 0 ? n : fallback;
}

/** The snippet's tag: the script that names a vault, or one whose file is `cardseal.js`. */
export function isSnippetTag(el) {
  return Boolean(el && el.tagName === 'SCRIPT' && (el.hasAttribute('data-vault-url') || /\/cardseal\.js(?:[?#]|$)/.test(el.src)));
}

const formErrors = () => document.querySelectorAll('[data-cardseal-error="form"]');
/** The forms the snippet looks after: direct (`data-cardseal`) and hosted fields (`data-cardseal-fields`). */
export const FORMS = 'form[data-cardseal], form[data-cardseal-fields]';

/**
 * Tells the page that card payments cannot work yet: fires `cardseal:unavailable` on `document`
 * (`detail: { reason, retrying, message }`, cancelable) and, unless a listener cancels it, puts
 * the message in every `[data-cardseal-error="form"]`. Forms get `data-cardseal-unavailable`.
 */
export function announceUnavailable(reason, retrying) {
  const locale = snippetLocale();
  const message = unavailableMessage(document.querySelector(FORMS), locale);
  const show = document.dispatchEvent(new CustomEvent('cardseal:unavailable', {
    bubbles: true, cancelable: true, detail: { reason, retrying, message },
  }));
  for (const form of document.querySelectorAll(FORMS)) form.setAttribute('data-cardseal-unavailable', reason);
  if (show) for (const el of formErrors()) el.textContent = unavailableMessage(el, locale);
}

/** The snippet tag's `data-locale`, if the page has such a tag. */
export function snippetLocale() {
  const tag = [...document.querySelectorAll('script[data-locale]')].find(isSnippetTag);
  return tag ? tag.dataset.locale : undefined;
}

/**
 * What the snippet does once it is attached: enables what the page marked
 * `data-cardseal-pending` (removing `disabled`), and clears the "loading" or "unavailable" note.
 */
export function clearPending() {
  for (const el of document.querySelectorAll('[data-cardseal-pending]')) {
    el.removeAttribute('data-cardseal-pending');
    if ('disabled' in el) el.disabled = false;
  }
  for (const form of document.querySelectorAll(FORMS)) form.removeAttribute('data-cardseal-unavailable');
  for (const el of formErrors()) el.textContent = '';
}

/**
 * Runs `attempt` until it resolves: after a failure that `reasonOf` names (others are thrown),
 * announces it and retries with backoff for `windowMs`. After that it waits for the customer to
 * touch a form (focus, pointer, or focus into an iframe), for the browser to come back online,
 * or 30 s at most, and starts again.
 */
export async function withRetries(attempt, reasonOf, windowMs) {
  let last = '';
  for (;;) {
    const started = Date.now();
    for (let n = 0; ; n++) {
      try {
        return await attempt();
      } catch (e) {
        const reason = reasonOf(e);
        if (!reason) throw e;
        const wait = backoffMs(n);
        const retrying = Date.now() - started + wait < windowMs;
        // One event per change of state, not one per attempt.
        if (`${reason}/${retrying}` !== last) announceUnavailable(reason, retrying);
        last = `${reason}/${retrying}`;
        if (!retrying) break;
        await new Promise((r) => setTimeout(r, wait));
      }
    }
    await customerIsBack();
  }
}

// Between rounds of retries when nobody touches the form: slow, but never given up, since a
// customer clicking into a hosted field's iframe gives the page no event of its own.
const IDLE_RETRY_MS = 30_000;

function customerIsBack() {
  return new Promise((resolve) => {
    const types = ['focusin', 'pointerdown', 'keydown'];
    let timer;
    const done = (e) => {
      const touched = e.type === 'online' || e.type === 'idle'
        // Focus moving into an iframe (a hosted field) blurs the page's window.
        || (e.type === 'blur' && e.target === window)
        || (e.target && e.target.closest && e.target.closest(FORMS));
      if (!touched) return;
      for (const t of types) document.removeEventListener(t, done, true);
      window.removeEventListener('online', done);
      window.removeEventListener('blur', done);
      clearTimeout(timer);
      resolve();
    };
    for (const t of types) document.addEventListener(t, done, true);
    window.addEventListener('online', done);
    window.addEventListener('blur', done);
    timer = setTimeout(() => done({ type: 'idle' }), IDLE_RETRY_MS);
  });
}
