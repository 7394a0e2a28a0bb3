// WebKit (Safari's engine): the package's smoke test and the demo shop's payment, in Debian's
// MiniBrowser driven through WebKitWebDriver under Xvfb (tests/support/webkit.mjs).
// Starts its own vault and shop on 127.0.0.1. Without WebKit installed every test here is
// skipped with a loud message; scripts/setup.sh installs it.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { serve } from '../../scripts/serve.mjs';
import { startShop } from '../../www/shop.mjs';
import { root, snippetTag, startVault } from '../support/servers.mjs';
import { startWebKit, webkitMissing } from '../support/webkit.mjs';

const year = String((new Date().getUTCFullYear() + 3) % 100).padStart(2, '0');
const missing = webkitMissing();
const skip = missing ? `WebKit is not installed here: missing ${missing}. Run scripts/setup.sh.` : false;
if (skip) process.stderr.write(`\n!!! SKIPPING the WebKit tests: ${skip}\n\n`);

let vault;
let shop;
let fixtures;
let webkit;

describe('WebKit', { skip }, () => {
  before(async () => {
    vault = await startVault({ args: ['--snippet-dir', join(root, 'pkg/snippet')] });
    const snippet = snippetTag(vault);
    // The snippet comes from the vault, cross-origin with integrity=, as a merchant would load it.
    shop = await startShop({ vaultUrl: vault.url, publishableKey: vault.pk, secretKey: vault.sk, snippet });
    fixtures = await serve({ root: join(root, 'tests/e2e/fixtures') });
    webkit = await startWebKit();
  });

  after(async () => {
    await webkit?.close();
    await fixtures?.close();
    await shop?.close();
    await vault?.stop();
  });

  it('the package: ready(), validators, formatters, seal() and a real tokenize', async (t) => {
    t.diagnostic(`${webkit.capabilities.browserName} of WebKitGTK ${webkit.capabilities.browserVersion}`);
    const page = `${fixtures.url}smoke.html?vault=${encodeURIComponent(vault.url)}&pk=${encodeURIComponent(vault.pk)}`;
    await webkit.go(page);
    const smoke = await webkit.until('the smoke page', () => webkit.exec('return window.smoke && window.smoke.status !== "running" ? window.smoke : null'));
    assert.equal(smoke.status, 'done', `the page failed: ${JSON.stringify(smoke.error)}`);
    assert.match(smoke.userAgent, /AppleWebKit\/[\d.]+ .*Safari\//);
    assert.equal(smoke.beforeReady, 'not_ready');
    assert.deepEqual(smoke.validateNumber, { brand: 'visa', candidates: ['visa'], isValid: true, isPotentiallyValid: true, code: null });
    assert.equal(smoke.validateNumberPartial.isPotentiallyValid, true);
    assert.ok(smoke.validateNumberPartial.candidates.includes('amex'));
    assert.deepEqual(smoke.validateCard.errors.map((e) => [e.field, e.code]),
      [['number', 'invalid_number'], ['expiry', 'invalid_expiry_month'], ['cvc', 'incomplete_cvc']]);
    assert.deepEqual(smoke.formatCardNumber, { value: '4242 4242 4242 4242', caret: 19 });
    assert.equal(smoke.formatAmex.value, '3782 822463 10005');
    assert.deepEqual(smoke.formatExpiry, { value: '12 / 30', caret: 7 });
    assert.equal(smoke.seal.parts, 5, 'a compact JWE has five parts');
    assert.deepEqual([smoke.seal.header.alg, smoke.seal.header.enc, smoke.seal.header.kid], ['RSA-OAEP-256', 'A256GCM', 'smoke-1']);
    assert.deepEqual([smoke.seal.number, smoke.seal.cvc], ['4242424242424242', '123'], 'WebCrypto opens what the wasm sealed');
    assert.match(smoke.token.id, /^tok_[A-Za-z0-9]{22}$/);
    assert.deepEqual([smoke.token.type, smoke.token.brand, smoke.token.last4, smoke.token.used], ['card', 'visa', '4242', false]);
    assert.deepEqual(smoke.invalidTokenize, { name: 'CardSealError', code: 'invalid_number', isCardSealError: true });
    // The vault made exactly that token: the invalid card never left the page.
    const res = await fetch(`${vault.url}/v1/tokens/${smoke.token.id}`, { headers: { Authorization: `Bearer ${vault.sk}` } });
    assert.equal(res.status, 200);
    assert.equal((await res.json()).card.last4, '4242');
    const events = await (await fetch(`${vault.url}/v1/events?limit=100`, { headers: { Authorization: `Bearer ${vault.sk}` } })).json();
    assert.equal(events.data.filter((e) => e.type === 'token.created').length, 1);
  });

  it('the demo shop: direct-mode checkout attaches, formats, tokenizes; the receipt shows the last4', async () => {
    const before = shop.requests.length;
    await webkit.go(`${shop.url}/checkout?product=notebook`);
    await webkit.until('the snippet to attach', () => webkit.exec('return Boolean(window.cardseal && window.cardseal.instance)'));
    assert.equal(await webkit.exec('return document.querySelector(\'button[type="submit"]\').disabled'), false, 'Pay is enabled once attached');
    await webkit.type('[data-cardseal="number"]', '4242424242424242');
    await webkit.type('[data-cardseal="expiry"]', `12${year}`);
    await webkit.type('[data-cardseal="cvc"]', '123');
    assert.equal(await webkit.exec('return document.querySelector(\'[data-cardseal="number"]\').value'), '4242 4242 4242 4242');
    assert.equal(await webkit.exec('return document.querySelector(\'[data-cardseal="expiry"]\').value'), `12 / ${year}`);
    assert.equal(await webkit.exec('return document.querySelector("[data-shop-brand]").textContent'), 'visa');
    await webkit.click('button[type="submit"]');
    await webkit.until('the receipt', async () => /\/receipt\//.test(await webkit.url()));
    const text = await webkit.exec('return document.querySelector(".receipt").textContent');
    assert.match(text, /Payment successful/);
    assert.match(text, /Visa •••• 4242/);
    const seen = shop.requests.slice(before).map((r) => `${r.url} ${JSON.stringify(r.headers)} ${r.body}`).join('\n');
    assert.match(seen, /cardseal_token=tok_/);
    for (const needle of ['4242424242424242', '4242 4242 4242 4242', '424242', 'cvc=123']) {
      assert.ok(!seen.includes(needle) && !decodeURIComponent(seen.replace(/\+/g, ' ')).includes(needle), `shop saw ${needle.length} card chars`);
    }
  });

  it('the demo shop: hosted-fields checkout pays through the vault\'s iframes; the page cannot read them', async () => {
    const before = shop.requests.length;
    await webkit.go(`${shop.url}/checkout?product=notebook&mode=fields`);
    await webkit.until('the hosted fields', () => webkit.exec('return Boolean(window.cardseal && window.cardseal.attachments && window.cardseal.attachments.length && !document.querySelector(\'button[type="submit"]\').disabled)'));
    for (const [kind, text] of [['number', '4000056655665556'], ['expiry', `12${year}`], ['cvc', '739']]) {
      // WebKitWebDriver types only into an element that has the focus already.
      await webkit.inFrame(`iframe[data-cardseal-frame="${kind}"]`, async () => {
        await webkit.click('input');
        await webkit.type('input', text);
      });
    }
    const number = await webkit.inFrame('iframe[data-cardseal-frame="number"]', () => webkit.exec(`const i = document.querySelector('input');
      return { value: i.value, brand: document.querySelector('.brand').textContent, radius: getComputedStyle(i).borderTopLeftRadius, autocomplete: i.autocomplete }`));
    assert.deepEqual(number, { value: '4000 0566 5566 5556', brand: 'Visa', radius: '6px', autocomplete: 'cc-number' });
    assert.equal(await webkit.exec('return document.querySelector(\'iframe[data-cardseal-frame="number"]\').contentDocument'), null);
    await webkit.click('button[type="submit"]');
    await webkit.until('the receipt', async () => /\/receipt\//.test(await webkit.url()));
    assert.match(await webkit.exec('return document.querySelector(".receipt").textContent'), /Visa •••• 5556/);
    const seen = shop.requests.slice(before).map((r) => `${r.url} ${JSON.stringify(r.headers)} ${r.body}`).join('\n');
    assert.match(seen, /cardseal_token=tok_/);
    for (const needle of ['4000056655665556', '4000 0566 5566 5556', '665566', 'cvc=739']) {
      assert.ok(!seen.includes(needle) && !decodeURIComponent(seen.replace(/\+/g, ' ')).includes(needle), `shop saw ${needle.length} card chars`);
    }
  });
});
