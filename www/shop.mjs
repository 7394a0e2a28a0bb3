// The demo merchant: a small shop with its own back end, separate from the vault. Its pages
// load the cardseal snippet; its server only ever receives `cardseal_token`s and charges them
// through the vault with the secret key. It records every request it receives, so the
// end-to-end tests can prove that no card data ever reached it.
//
//   const shop = await startShop({ vaultUrl, publishableKey, secretKey });
//   shop.url, shop.requests, await shop.close()
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const repoRoot = join(here, '..');

const PRODUCTS = {
  notebook: { name: 'Field notebook, dot grid', amount: 2400, currency: 'eur', blurb: 'A5, 120 pages, lies flat.' },
  membership: { name: 'Reading club membership', amount: 500, currency: 'eur', blurb: 'One book a month. Renews monthly.', recurring: 'month' },
};

const DECLINES = {
  generic_decline: 'Your card was declined.',
  insufficient_funds: 'Your card has insufficient funds.',
  expired_card: 'Your card has expired.',
  incorrect_cvc: "Your card's security code is incorrect.",
  processing_error: 'An error occurred while processing your card. Try again.',
};

// Static files the pages use; nothing else on disk is reachable.
const STATIC = {
  '/style.css': [join(here, 'style.css'), 'text/css; charset=utf-8'],
  '/favicon.svg': [join(here, 'favicon.svg'), 'image/svg+xml'],
  '/shop.js': [join(here, 'shop.js'), 'text/javascript; charset=utf-8'],
  '/validate.html': [join(here, 'validate.html'), 'text/html; charset=utf-8'],
  '/validate.js': [join(here, 'validate.js'), 'text/javascript; charset=utf-8'],
  // The validator page imports the npm package's browser entry.
  ...Object.fromEntries(['index.js', 'core.js', 'validate.js', 'client.js', 'error.js', 'attach.js', 'unavailable.js', 'fields.js', 'fields-version.js', 'labels.js', 'style.js', 'wasm/cardseal.js'].map((f) => [`/pkg/${f}`, [join(repoRoot, 'pkg', f), 'text/javascript; charset=utf-8']])),
  '/pkg/wasm/cardseal_bg.wasm': [join(repoRoot, 'pkg/wasm/cardseal_bg.wasm'), 'application/wasm'],
  // A self-hosted copy of the snippet, for pages whose CSP allows scripts from 'self' only.
  '/cardseal/cardseal.js': [join(repoRoot, 'pkg/snippet/cardseal.js'), 'text/javascript; charset=utf-8'],
  '/cardseal/cardseal_bg.wasm': [join(repoRoot, 'pkg/snippet/cardseal_bg.wasm'), 'application/wasm'],
  '/cardseal/cardseal-fields.js': [join(repoRoot, 'pkg/snippet/cardseal-fields.js'), 'text/javascript; charset=utf-8'],
  // The loader is always the shop's own: it reports a snippet that cannot be loaded.
  '/cardseal-loader.js': [join(repoRoot, 'pkg/loader/cardseal-loader.js'), 'text/javascript; charset=utf-8'],
};

const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const money = (amount, currency) => new Intl.NumberFormat('en-IE', { style: 'currency', currency: currency.toUpperCase() }).format(amount / 100);
const BRAND_NAMES = { visa: 'Visa', mastercard: 'Mastercard', amex: 'American Express', discover: 'Discover', diners: 'Diners Club', jcb: 'JCB', unionpay: 'UnionPay', maestro: 'Maestro' };
const brandName = (b) => BRAND_NAMES[b] ?? (b ? b[0].toUpperCase() + b.slice(1) : 'Card');

/** The checkout pages' language switch: `auto` follows the browser's languages. */
const LANGUAGES = [['auto', 'Browser language'], ['en', 'English'], ['de', 'Deutsch'], ['fr', 'Français'],
  ['es', 'Español'], ['it', 'Italiano'], ['nl', 'Nederlands'], ['pt-BR', 'Português (Brasil)'], ['pl', 'Polski'],
  ['sv', 'Svenska'], ['ja', '日本語'], ['zh-Hans', '简体中文']];

/** `?lang=` when it names a language of the switch, else `auto`. */
function localeParam(url) {
  const lang = url.searchParams.get('lang');
  return LANGUAGES.some(([tag]) => tag === lang) ? lang : 'auto';
}

/**
 * Starts the shop. `snippet` says where pages load cardseal.js from: `{ src, integrity }` of the
 * vault's copy, or omitted for the shop's self-hosted copy under `/cardseal/`. `snippetData`
 * adds `data-*` settings to the tag, e.g. `{ 'timeout-ms': 2000 }`. The pages with a snippet
 * preconnect to the vault (unless `preconnect: false`); `preloadWasm` adds the README's preload
 * of the snippet's wasm too (off by default, so that a page whose snippet never runs asks the
 * vault for nothing else).
 */
export async function startShop({
  port = 0, host = '127.0.0.1', vaultUrl, publishableKey, secretKey, snippet, snippetData = {}, customer = 'cus_demo', quiet = true,
  preconnect = true, preloadWasm = false,
}) {
  const requests = [];
  const receipts = new Map();
  const vaultOrigin = new URL(vaultUrl).origin;
  const selfHosted = !snippet;
  const buildInfo = () => JSON.parse(readFileSync(join(repoRoot, 'pkg/build-info.json'), 'utf8'));
  // `fields`: the small hosted-fields snippet, from the same place as the full one.
  const snippetTag = (locale, fields = false) => {
    const file = fields ? 'cardseal-fields.js' : 'cardseal.js';
    const src = selfHosted ? `/cardseal/${file}` : snippet.src.replace(/cardseal\.js$/, file);
    const integrity = selfHosted || fields ? buildInfo().sri[`snippet/${file}`] : snippet.integrity;
    const settings = Object.entries({ locale, ...snippetData }).map(([k, v]) => ` data-${esc(k)}="${esc(v)}"`).join('');
    // The hints first: a connection to the vault (keys, tokens, hosted fields) while the page
    // loads, and the wasm fetched beside the script rather than after it (the snippet's own
    // fetch, with the same URL and CORS mode, takes it over and checks its hash).
    const wasmSrc = src.replace(/cardseal(?:-fields)?\.js$/, 'cardseal_bg.wasm');
    const hints = `${preconnect ? `<link rel="preconnect" href="${esc(vaultOrigin)}" crossorigin>` : ''}${preloadWasm && !fields
      ? `\n  <link rel="preload" href="${esc(wasmSrc)}" as="fetch" crossorigin="anonymous">`
      : ''}\n  `;
    // The loader first and blocking, so it sees the snippet's `error` event; the snippet async,
    // so a vault that never answers cannot hold up the page.
    return `${hints}<script src="/cardseal-loader.js"></script>
  <script async src="${esc(src)}" integrity="${esc(integrity)}" crossorigin="anonymous"
          data-vault-url="${esc(vaultUrl)}" data-publishable-key="${esc(publishableKey)}"${settings}></script>`;
  };
  // Scripts from the shop itself (and the vault, when the snippet comes from there); wasm may
  // compile, nothing may eval; the card goes only to the vault.
  const csp = [
    "default-src 'self'",
    `script-src 'self' 'wasm-unsafe-eval'${selfHosted ? '' : ` ${vaultOrigin}`}`,
    `connect-src 'self' ${vaultOrigin}`,
    // Hosted fields: the card inputs are documents of the vault.
    `frame-src ${vaultOrigin}`,
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');

  async function vault(method, path, body) {
    const headers = { Authorization: `Bearer ${secretKey}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method === 'POST') headers['Idempotency-Key'] = randomUUID();
    const res = await fetch(vaultUrl + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const json = await res.json().catch(() => ({}));
    return { status: res.status, ok: res.ok, json };
  }

  // `heading` is the page's one <h1> (default: the title); sections below it use <h2>.
  function page(title, body, { scripts = '', snippetPage = false, fieldsPage = false, locale = 'auto', heading = title } = {}) {
    return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${esc(title)} · cardseal demo shop</title>
  <link rel="stylesheet" href="/style.css">
  <link rel="icon" href="/favicon.svg" type="image/svg+xml">
  ${snippetPage ? snippetTag(locale, fieldsPage) : ''}
  ${scripts}
</head>
<body>
  <header class="site"><a class="logo" href="/">cardseal demo shop</a>
    <nav><a href="/">Shop</a> <a href="/account">Your cards</a> <a href="/validate.html">Validator</a></nav></header>
  <main>
    <h1 class="page-title">${esc(heading)}</h1>
${body}
  </main>
  <footer class="site">Test mode. Card data goes from your browser to the vault (${esc(vaultOrigin)}), never to this shop.</footer>
</body>
</html>`;
  }

  function cardFields() {
    return `
        <div class="field">
          <label for="card-number">Card number</label>
          <div class="with-badge">
            <input id="card-number" data-cardseal="number" type="text" inputmode="numeric" autocomplete="cc-number"
                   autocorrect="off" spellcheck="false" placeholder="1234 1234 1234 1234">
            <span class="brand" data-shop-brand aria-live="polite" hidden></span>
          </div>
          <p class="error" data-cardseal-error="number"></p>
        </div>
        <div class="row">
          <div class="field">
            <label for="card-expiry">Expiry</label>
            <input id="card-expiry" data-cardseal="expiry" type="text" inputmode="numeric" autocomplete="cc-exp" placeholder="MM / YY">
            <p class="error" data-cardseal-error="expiry"></p>
          </div>
          <div class="field">
            <label for="card-cvc">Security code</label>
            <input id="card-cvc" data-cardseal="cvc" type="text" inputmode="numeric" autocomplete="cc-csc" placeholder="CVC">
            <p class="error" data-cardseal-error="cvc"></p>
          </div>
        </div>
        <div class="field">
          <label for="card-name">Name on card <span class="optional">(optional)</span></label>
          <input id="card-name" data-cardseal="name" type="text" autocomplete="cc-name">
          <p class="error" data-cardseal-error="name"></p>
        </div>`;
  }

  // The same layout as cardFields(), with the vault's iframes in place of the inputs. The
  // labels cannot point into an iframe; each iframe has its own title and label.
  function hostedFields() {
    const field = (kind, label, extra = '') => `
          <div class="field">
            <div class="label" id="label-${kind}" data-label-for="${kind}">${label}${extra}</div>
            <div class="hosted" data-cardseal-field="${kind}"></div>
          </div>`;
    return `${field('number', 'Card number')}
        <div class="row">${field('expiry', 'Expiry')}${field('cvc', 'Security code')}
        </div>${field('name', 'Name on card', ' <span class="optional">(optional)</span>')}`;
  }

  function productPage() {
    const items = Object.entries(PRODUCTS).map(([id, p]) => `
      <li class="product">
        <h2>${esc(p.name)}</h2>
        <p>${esc(p.blurb)}</p>
        <p class="price">${money(p.amount, p.currency)}${p.recurring ? ' / month' : ''}</p>
        <a class="button" href="/checkout?product=${id}">${p.recurring ? 'Subscribe' : 'Buy now'}</a>
      </li>`).join('');
    return page('Shop', `
    <aside class="notice" role="note"><strong>Test mode.</strong> Pay with <code>4242 4242 4242 4242</code>,
      any future expiry and any CVC. <code>4000 0000 0000 0002</code> is declined,
      <code>4000 0000 0000 9995</code> has insufficient funds.</aside>
    <ul class="products">${items}
    </ul>`);
  }

  // The language switch of the checkout pages: the card messages follow it (the snippet's
  // `data-locale`); the shop's own words stay English.
  function languageSwitch(path, locale) {
    const links = LANGUAGES.map(([tag, name]) => {
      const url = new URL(path, 'http://x');
      url.searchParams.set('lang', tag);
      const current = tag === locale ? ' aria-current="true"' : '';
      const lang = tag === 'auto' ? '' : ` lang="${tag}" hreflang="${tag}"`;
      return `<a href="${esc(url.pathname + url.search)}"${lang}${current}>${esc(name)}</a>`;
    }).join(' ');
    return `<nav class="languages" aria-label="Language of card messages">${links}</nav>`;
  }

  function checkoutPage(productId, locale, mode) {
    const p = PRODUCTS[productId];
    const fields = mode === 'fields';
    const here = `/checkout?product=${productId}${fields ? '&mode=fields' : ''}`;
    const other = fields ? `/checkout?product=${productId}` : `/checkout?product=${productId}&mode=fields`;
    const modeNote = fields
      ? `<p class="mode" data-mode="fields">Hosted fields: the card inputs are iframes of the vault; this page never holds your card. <a href="${esc(other)}">Use the direct form</a></p>`
      : `<p class="mode" data-mode="direct">Direct form: the card inputs are on this page. <a href="${esc(other)}">Use hosted fields (iframes)</a></p>`;
    return page('Checkout', `
    <div class="layout">
      <section class="summary" aria-labelledby="summary-title">
        <h2 id="summary-title">Your order</h2>
        <ul class="items"><li><span>${esc(p.name)}</span><span>${money(p.amount, p.currency)}</span></li></ul>
        <p class="total"><span>Total${p.recurring ? ' today' : ''}</span><span>${money(p.amount, p.currency)}</span></p>
        ${p.recurring ? '<p class="muted">Then the same each month: the vault keeps your card and charges the renewals on schedule.</p>' : ''}
      </section>
      <!-- The card inputs have no name${fields ? ' and live in the vault\'s iframes' : ''}: the browser can never submit them to this shop. -->
      <form class="card-form" ${fields ? 'data-cardseal-fields' : 'data-cardseal'} action="/pay" method="post" novalidate aria-labelledby="pay-title">
        <h2 id="pay-title">Pay by card</h2>
        <input type="hidden" name="product" value="${esc(productId)}">${fields ? hostedFields() : cardFields()}
        ${p.recurring ? '' : `<label class="check"><input type="checkbox" name="save_card" value="1"> Save my card for next time</label>`}
        <!-- Disabled until the snippet is attached; the note says why, even if it never loads. -->
        <button type="submit" disabled data-cardseal-pending>Pay ${money(p.amount, p.currency)}</button>
        <p class="status" data-cardseal-error="form" role="alert">Card payments are loading…</p>
        ${modeNote}
      </form>
    </div>
    <!-- After the form, so the keyboard reaches the card fields first. -->
    ${languageSwitch(here, locale)}`, { snippetPage: true, fieldsPage: fields, locale, scripts: '<script src="/shop.js" defer></script>' });
  }

  function outcomePage(r) {
    if (r.error) {
      return page('Payment failed', `
    <section class="receipt bad" aria-labelledby="r-title">
      <h2 id="r-title">Payment failed</h2>
      <p data-receipt-message>${esc(r.error)}</p>
      <p><a href="${esc(r.retry ?? '/')}">Try again</a></p>
    </section>`, { heading: 'Your payment' });
    }
    const c = r.charge;
    const ok = c.status === 'succeeded';
    const card = c.card ?? {};
    const message = ok ? `${money(c.amount, c.currency)} paid with ${brandName(card.brand)} •••• ${card.last4}`
      : DECLINES[c.outcome?.decline_code] ?? 'Your card was declined.';
    const refunded = c.amount_refunded ?? 0;
    const refundable = ok && c.captured && refunded < (c.amount_captured ?? 0);
    // A refund posts back to this receipt's own URL, which then shows it (Post/Redirect/Get).
    const refundForm = refundable && r.id ? `
      <form action="/refund" method="post" class="refund">
        <input type="hidden" name="receipt" value="${esc(r.id)}">
        <button type="submit" data-refund>Refund ${money((c.amount_captured ?? 0) - refunded, c.currency)}</button>
      </form>` : '';
    return page(ok ? 'Receipt' : 'Payment declined', `
    <section class="receipt ${ok ? 'ok' : 'bad'}" aria-labelledby="r-title" data-status="${esc(c.status)}">
      <h2 id="r-title">${ok ? 'Thank you! Payment successful' : 'Payment declined'}</h2>
      <p data-receipt-message>${esc(message)}</p>
      <dl>
        <dt>Order</dt><dd>${esc(r.product.name)}</dd>
        <dt>Card</dt><dd data-receipt-card>${esc(brandName(card.brand))} •••• ${esc(card.last4)}</dd>
        <dt>Charge</dt><dd><code>${esc(c.id)}</code> (${esc(c.interaction)})</dd>
        ${ok ? '' : `<dt>Decline code</dt><dd><code>${esc(c.outcome?.decline_code)}</code></dd>`}
        ${refunded ? `<dt>Refunded</dt><dd data-receipt-refunded>${money(refunded, c.currency)}${c.refunded ? ' (in full)' : ''}</dd>` : ''}
      </dl>
      ${r.refundError ? `<p class="error" role="alert" data-refund-error>${esc(r.refundError)}</p>` : ''}
      ${refundForm}
      ${r.saved ? '<p>Your card is saved: pay again from <a href="/account">Your cards</a> with just the security code.</p>' : ''}
      ${r.subscription ? subscriptionNote(r.subscription) : ''}
      <p><a href="/">Back to the shop</a></p>
    </section>`, { heading: 'Your payment' });
  }

  /** The renewal schedule the vault runs, as the receipt and the account page show it. */
  function subscriptionNote(rc) {
    const next = rc.next_run ? new Date(rc.next_run * 1000).toISOString().slice(0, 10) : null;
    const text = {
      active: `Subscribed. The vault renews it on ${next}, then every month, without the security code.`,
      past_due: `Renewal failed; the vault tries again${next ? ` on ${next}` : ''}.`,
      canceled: 'Membership canceled: no more renewals.',
      completed: 'Membership ended.',
    }[rc.status] ?? '';
    return `<p class="renewal" data-renewal data-status="${esc(rc.status)}" data-schedule="${esc(rc.id)}">${esc(text)}</p>`;
  }

  /** The customer's renewal schedules, by card (one page of the vault's list, newest first). */
  async function schedules(cards) {
    const ids = new Set(cards.map((c) => c.id));
    const list = await vault('GET', '/v1/recurring/charges?limit=100');
    const byCard = new Map();
    for (const rc of list.ok ? list.json.data ?? [] : []) {
      if (ids.has(rc.source) && !byCard.has(rc.source)) byCard.set(rc.source, rc);
    }
    return byCard;
  }

  async function accountPage() {
    const list = await vault('GET', `/v1/cards?customer=${encodeURIComponent(customer)}`);
    const cards = list.ok ? list.json.data ?? [] : [];
    const renewals = await schedules(cards);
    const rows = cards.map((c) => `
      <li class="saved-card" data-card="${esc(c.id)}">
        <span>${esc(brandName(c.brand))} •••• ${esc(c.last4)}, expires ${String(c.exp_month).padStart(2, '0')}/${esc(c.exp_year)}</span>
        <span class="actions">
          <a class="button" href="/pay-again?card=${esc(c.id)}">Pay again ${money(PRODUCTS.notebook.amount, 'eur')}</a>
          ${renewals.get(c.id)?.status === 'active' || renewals.get(c.id)?.status === 'past_due' ? `<form action="/cancel-membership" method="post"><input type="hidden" name="schedule" value="${esc(renewals.get(c.id).id)}"><button type="submit">Cancel membership</button></form>` : ''}
        </span>
        ${renewals.has(c.id) ? subscriptionNote(renewals.get(c.id)) : ''}
      </li>`).join('');
    return page('Your cards', `
    <section class="summary">
      <h2>Your saved cards</h2>
      ${cards.length ? `<ul class="saved">${rows}</ul>` : '<p>No saved cards yet. Tick “Save my card” at checkout.</p>'}
    </section>`);
  }

  function payAgainPage(cardId, locale) {
    return page('Pay again', `
    <form id="pay-again" class="card-form narrow" action="/pay-again" method="post" novalidate>
      <h2>Pay again: ${esc(PRODUCTS.notebook.name)}</h2>
      <p>Enter your card's security code again; the vault uses it once and forgets it.</p>
      <input type="hidden" name="card" value="${esc(cardId)}">
      <input type="hidden" name="cvc_token" value="">
      <div class="field">
        <label for="cvc-again">Security code</label>
        <input id="cvc-again" data-cvc-again type="text" inputmode="numeric" autocomplete="cc-csc" placeholder="CVC" aria-describedby="cvc-again-error">
        <p class="error" id="cvc-again-error" aria-live="polite"></p>
      </div>
      <button type="submit" disabled data-cardseal-pending>Pay ${money(PRODUCTS.notebook.amount, 'eur')}</button>
      <p class="status" data-cardseal-error="form" role="alert">Card payments are loading…</p>
    </form>
    ${languageSwitch(`/pay-again?card=${encodeURIComponent(cardId)}`, locale)}`, { snippetPage: true, locale, scripts: '<script src="/shop.js" defer></script>' });
  }

  function remember(r) {
    const id = randomUUID();
    receipts.set(id, { ...r, id });
    return `/receipt/${id}`;
  }

  /** Refunds what is left of a receipt's charge, and shows the receipt again with the refund. */
  async function refund(form) {
    const id = form.get('receipt') ?? '';
    const r = receipts.get(id);
    if (!r?.charge) return null;
    const res = await vault('POST', '/v1/refunds', { charge: r.charge.id, reason: 'requested_by_customer' });
    const fresh = res.ok ? await vault('GET', `/v1/charges/${encodeURIComponent(r.charge.id)}`) : null;
    receipts.set(id, { ...r, charge: fresh?.ok ? fresh.json : r.charge, refundError: res.ok ? undefined : vaultFailure(res).error });
    return `/receipt/${id}`;
  }

  async function charge(source, product, interaction) {
    return vault('POST', '/v1/charges', { amount: product.amount, currency: product.currency, source, interaction });
  }

  function vaultFailure(res, retry) {
    return { error: res.json?.error?.message ?? `The vault answered ${res.status}.`, retry };
  }

  async function pay(form) {
    const product = PRODUCTS[form.get('product')];
    const token = form.get('cardseal_token') ?? '';
    const retry = product ? `/checkout?product=${form.get('product')}` : '/';
    // Only a guard: the page keeps Pay disabled until cardseal is attached, so a form without a
    // token means the snippet never ran (the vault could not be reached).
    if (!token) return { error: 'Card payments are unavailable; nothing was charged.', retry };
    if (!product || !/^tok_[A-Za-z0-9]{22}$/.test(token)) return { error: 'The payment form was incomplete.', retry: '/' };
    const saving = product.recurring || form.get('save_card') === '1';
    let source = token;
    if (saving) {
      const metadata = product.recurring ? { subscription: form.get('product') } : {};
      const card = await vault('POST', '/v1/cards', { token, customer, metadata });
      if (!card.ok) return vaultFailure(card, retry);
      source = card.json.id;
    }
    if (product.recurring) {
      // The vault runs the renewals: its first charge (now, with the customer present, so
      // SETUP_COF_RECURRING) is this payment; the later ones it makes itself, COF_RECURRING.
      const rc = await vault('POST', '/v1/recurring/charges', { source, amount: product.amount, currency: product.currency, interval: product.recurring });
      if (!rc.ok) return vaultFailure(rc, retry);
      const first = await vault('GET', `/v1/charges/${rc.json.charges[0].id}`);
      if (!first.ok) return vaultFailure(first, retry);
      if (first.json.status !== 'succeeded') {
        // Declined at sign-up: no membership, so no renewals either.
        await vault('POST', `/v1/recurring/charges/${rc.json.id}/cancel`, {});
        return { product, charge: first.json };
      }
      return { product, charge: first.json, subscription: rc.json };
    }
    const interaction = saving ? 'SETUP_COF_ONSESSION' : 'ONE_TIME';
    const res = await charge(source, product, interaction);
    if (!res.ok && !res.json?.id) return vaultFailure(res, retry);
    return { product, charge: res.json, saved: saving };
  }

  async function payAgain(form) {
    const card = form.get('card') ?? '';
    const cvcToken = form.get('cvc_token') ?? '';
    const retry = `/pay-again?card=${encodeURIComponent(card)}`;
    if (!/^card_[A-Za-z0-9]{22}$/.test(card) || !/^tok_[A-Za-z0-9]{22}$/.test(cvcToken)) return { error: 'The form was incomplete.', retry };
    const added = await vault('POST', `/v1/cards/${card}/cvc`, { token: cvcToken });
    if (!added.ok) return vaultFailure(added, retry);
    const res = await charge(card, PRODUCTS.notebook, 'COF_ONSESSION');
    if (!res.ok && !res.json?.id) return vaultFailure(res, retry);
    return { product: PRODUCTS.notebook, charge: res.json };
  }

  async function cancelMembership(form) {
    const id = form.get('schedule') ?? '';
    if (!/^rc_[A-Za-z0-9]{22}$/.test(id)) return false;
    return (await vault('POST', `/v1/recurring/charges/${id}/cancel`, {})).ok;
  }

  function send(res, status, body, type = 'text/html; charset=utf-8', extra = {}) {
    res.writeHead(status, { 'Content-Type': type, 'Content-Security-Policy': csp, 'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'same-origin', 'Cache-Control': 'no-store', ...extra });
    res.end(body);
  }

  async function route(req, res, body) {
    const url = new URL(req.url, 'http://shop');
    const path = url.pathname;
    if (req.method === 'GET' && STATIC[path]) {
      const [file, type] = STATIC[path];
      let bytes;
      try { bytes = readFileSync(file); } catch { return send(res, 404, 'Not found', 'text/plain'); }
      return send(res, 200, bytes, type, { 'Cache-Control': 'no-cache' });
    }
    if (req.method === 'GET' && path === '/') return send(res, 200, productPage());
    if (req.method === 'GET' && path === '/checkout') {
      const id = url.searchParams.get('product');
      const mode = url.searchParams.get('mode') === 'fields' ? 'fields' : 'direct';
      return PRODUCTS[id] ? send(res, 200, checkoutPage(id, localeParam(url), mode)) : send(res, 404, page('Not found', '<p>No such product.</p>'));
    }
    if (req.method === 'GET' && path === '/account') return send(res, 200, await accountPage());
    if (req.method === 'GET' && path === '/pay-again') return send(res, 200, payAgainPage(url.searchParams.get('card') ?? '', localeParam(url)));
    if (req.method === 'GET' && path.startsWith('/receipt/')) {
      const r = receipts.get(path.slice('/receipt/'.length));
      return r ? send(res, 200, outcomePage(r)) : send(res, 404, page('Not found', '<p>No such receipt.</p>'));
    }
    if (req.method === 'POST' && path === '/refund') {
      const back = await refund(new URLSearchParams(body));
      if (!back) return send(res, 404, page('Not found', '<p>No such receipt.</p>'));
      res.writeHead(303, { Location: back });
      return res.end();
    }
    if (req.method === 'POST' && path === '/cancel-membership') {
      await cancelMembership(new URLSearchParams(body));
      res.writeHead(303, { Location: '/account' });
      return res.end();
    }
    const handlers = { '/pay': pay, '/pay-again': payAgain };
    if (req.method === 'POST' && handlers[path]) {
      const form = new URLSearchParams(body);
      const outcome = await handlers[path](form);
      // Post/Redirect/Get: a reload of the receipt never charges twice.
      res.writeHead(303, { Location: remember(outcome) });
      return res.end();
    }
    send(res, 404, page('Not found', '<p>Nothing here.</p>'));
  }

  const server = http.createServer(async (req, res) => {
    const chunks = [];
    let size = 0;
    for await (const c of req) {
      size += c.length;
      if (size > 64 * 1024) { res.writeHead(413); res.end(); return; }
      chunks.push(c);
    }
    const body = Buffer.concat(chunks).toString('utf8');
    requests.push({ method: req.method, url: req.url, headers: { ...req.headers }, body });
    if (!quiet) console.log(`[shop] ${req.method} ${req.url.split('?')[0]}`);
    try {
      await route(req, res, body);
    } catch (e) {
      console.error(`[shop] ${req.method} ${req.url.split('?')[0]} failed: ${e.message}`);
      if (!res.headersSent) send(res, 502, page('Error', '<p>The shop could not reach the vault. Try again.</p>'));
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const url = `http://${host}:${server.address().port}`;
  return {
    url,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
