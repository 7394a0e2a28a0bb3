// The checkout in the customer's language: the demo's language switch sets the snippet tag's
// `data-locale`, and the form's messages follow it (headless Chromium, a real vault).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { startShop } from '../../www/shop.mjs';
import { launchChromium } from '../support/chromium.mjs';
import { root, startVault } from '../support/servers.mjs';

let vault;
let shop;
let browser;

before(async () => {
  vault = await startVault({ args: ['--snippet-dir', join(root, 'pkg/snippet')] });
  shop = await startShop({ vaultUrl: vault.url, publishableKey: vault.pk, secretKey: vault.sk });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await shop?.close();
  await vault?.stop();
});

async function invalidCardMessages(path, contextOptions = {}) {
  const context = await browser.newContext(contextOptions);
  const page = await context.newPage();
  await page.goto(shop.url + path);
  await page.waitForFunction(() => window.cardseal && window.cardseal.instance, null, { timeout: 20_000 });
  await page.click('[data-cardseal="number"]');
  await page.keyboard.type('4242424242424241');
  await page.click('[data-cardseal="cvc"]');
  await page.keyboard.type('1');
  await page.click('button[type="submit"]');
  await page.waitForFunction(() => document.querySelector('[data-cardseal-error="number"]').textContent !== '');
  const read = (field) => page.evaluate((f) => {
    const el = document.querySelector(`[data-cardseal-error="${f}"]`);
    return { text: el.textContent, lang: el.lang };
  }, field);
  const out = { number: await read('number'), cvc: await read('cvc'), locale: await page.evaluate(() => window.cardseal.instance.locale) };
  await context.close();
  return out;
}

describe('checkout messages in the chosen language', () => {
  it('the switch sets the language of the card messages', async () => {
    const de = await invalidCardMessages('/checkout?product=notebook&lang=de');
    assert.equal(de.locale, 'de');
    assert.deepEqual(de.number, { text: 'Die Kartennummer ist ungültig.', lang: 'de' });
    assert.equal(de.cvc.text, 'Die Kartenprüfnummer ist unvollständig.');
    const ja = await invalidCardMessages('/checkout?product=notebook&lang=ja');
    assert.equal(ja.number.text, 'カード番号が正しくありません。');
    const zh = await invalidCardMessages('/checkout?product=notebook&lang=zh-Hans');
    assert.deepEqual(zh.number, { text: '卡号无效。', lang: 'zh-Hans' });
  });

  it("'auto' follows the browser's languages, and falls back to English", async () => {
    const pt = await invalidCardMessages('/checkout?product=notebook', { locale: 'pt-PT' });
    assert.equal(pt.locale, 'pt-BR');
    assert.equal(pt.number.text, 'O número do cartão é inválido.');
    const other = await invalidCardMessages('/checkout?product=notebook&lang=auto', { locale: 'ko-KR' });
    assert.equal(other.locale, 'en');
    assert.equal(other.number.text, 'Your card number is invalid.');
  });

  it('a malformed data-locale is English with one console warning, never a throw', async () => {
    const page = await browser.newPage();
    const warnings = [];
    const errors = [];
    page.on('console', (m) => m.type() === 'warning' && m.text().includes('locale') && warnings.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    // The shop's switch only passes its own languages; this shop puts a bad tag on the snippet.
    const odd = await startShop({ vaultUrl: vault.url, publishableKey: vault.pk, secretKey: vault.sk, snippetData: { locale: '<x y>' } });
    after(() => odd.close());
    await page.goto(`${odd.url}/checkout?product=notebook`);
    await page.waitForFunction(() => window.cardseal && window.cardseal.instance, null, { timeout: 20_000 });
    assert.equal(await page.evaluate(() => window.cardseal.instance.locale), 'en');
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('the switch is on the checkout page, with the current language marked', async () => {
    const page = await browser.newPage();
    await page.goto(`${shop.url}/checkout?product=notebook&lang=sv`);
    const links = await page.$$eval('nav.languages a', (as) => as.map((a) => ({ text: a.textContent, current: a.getAttribute('aria-current') })));
    assert.equal(links.length, 12);
    assert.deepEqual(links.filter((l) => l.current).map((l) => l.text), ['Svenska']);
    await page.close();
  });
});
