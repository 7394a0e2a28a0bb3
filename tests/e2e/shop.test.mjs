// End to end, in headless Chromium (playwright-core): a customer pays in the demo shop, and
// the shop's back end — which records every request it receives — never sees card data.
// Starts its own vault (target/debug/cardseal-vault) and shop on 127.0.0.1.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { startShop } from '../../www/shop.mjs';
import { launchChromium } from '../support/chromium.mjs';
import { root, snippetTag, startVault } from '../support/servers.mjs';

const year = String((new Date().getUTCFullYear() + 3) % 100).padStart(2, '0');

let vault;
let shop;
let browser;

let strictShop;

before(async () => {
  vault = await startVault({ args: ['--snippet-dir', join(root, 'pkg/snippet')] });
  // The vault prints where it serves the snippet and the integrity= value to use.
  const snippet = snippetTag(vault);
  // The shop loads the snippet from the vault (as DESIGN.md's snippet does) …
  shop = await startShop({ vaultUrl: vault.url, publishableKey: vault.pk, secretKey: vault.sk, snippet });
  // … and a second shop serves its own copy under exactly `script-src 'self' 'wasm-unsafe-eval'`.
  strictShop = await startShop({ vaultUrl: vault.url, publishableKey: vault.pk, secretKey: vault.sk });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await shop?.close();
  await strictShop?.close();
  await vault?.stop();
});

/** A fresh page that records every request the browser makes and every console error. */
async function openPage(path, on = shop, prepare = async () => {}) {
  const page = await browser.newPage();
  await prepare(page);
  const sent = [];
  const problems = [];
  page.on('request', (r) => sent.push({ url: r.url(), method: r.method(), body: r.postData() ?? '' }));
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
  const response = await page.goto(on.url + path);
  return { page, sent, problems, response };
}

async function formReady(page) {
  await page.waitForFunction(() => window.cardseal && window.cardseal.instance, null, { timeout: 20_000 });
}

async function typeCard(page, { number, expiry = `12${year}`, cvc = '123' }) {
  await page.click('[data-cardseal="number"]');
  await page.keyboard.type(number);
  await page.click('[data-cardseal="expiry"]');
  await page.keyboard.type(expiry);
  await page.click('[data-cardseal="cvc"]');
  await page.keyboard.type(cvc);
}

function assertNoCardData(records, { number, cvc }) {
  const digits = number.replace(/\D/g, '');
  const spaced = digits.replace(/(\d{4})(?=\d)/g, '$1 ');
  const middle = digits.slice(6, -4);
  for (const r of records) {
    const text = `${r.method} ${r.url}\n${JSON.stringify(r.headers ?? {})}\n${r.body ?? ''}`;
    const decoded = decodeURIComponent(text.replace(/\+/g, ' '));
    for (const needle of [digits, spaced, middle, `cvc=${cvc}`, `"cvc":"${cvc}"`]) {
      assert.ok(!text.includes(needle) && !decoded.includes(needle), `${r.method} ${r.url} holds card data (${needle.length} chars)`);
    }
  }
}

describe('the demo shop', () => {
  it('takes a payment: the receipt shows success and the last4, and the shop never saw the card', async () => {
    const { page, sent, problems } = await openPage('/checkout?product=notebook');
    const before = shop.requests.length;
    await formReady(page);
    await typeCard(page, { number: '4242424242424242', cvc: '123' });
    assert.equal(await page.inputValue('[data-cardseal="number"]'), '4242 4242 4242 4242');
    assert.equal(await page.inputValue('[data-cardseal="expiry"]'), `12 / ${year}`);
    await Promise.all([page.waitForURL(/\/receipt\//), page.click('button[type="submit"]')]);
    assert.match(await page.textContent('h2'), /Payment successful/);
    assert.match(await page.textContent('[data-receipt-card]'), /Visa •••• 4242/);
    const shopSaw = shop.requests.slice(before);
    const pay = shopSaw.find((r) => r.method === 'POST' && r.url === '/pay');
    assert.ok(pay, 'the shop received the form');
    assert.match(pay.body, /cardseal_token=tok_[A-Za-z0-9]{22}/);
    assertNoCardData(shopSaw, { number: '4242424242424242', cvc: '123' });
    // The card went to the vault, sealed: the browser's request to it holds a JWE, not the number.
    const toVault = sent.filter((r) => r.url.startsWith(vault.url) && r.method === 'POST');
    assert.equal(toVault.length, 1);
    assert.match(JSON.parse(toVault[0].body).card, /^[\w-]+\.[\w-]+\.[\w-]+\.[\w-]+\.[\w-]+$/);
    assertNoCardData(toVault, { number: '4242424242424242', cvc: '123' });
    assert.deepEqual(problems, []);
    await saveScreenshot(page, 'receipt.png');
    await page.close();
  });

  it('shows inline errors for an invalid number and an expired date, and sends nothing', async () => {
    const { page, sent } = await openPage('/checkout?product=notebook');
    const before = shop.requests.length;
    await formReady(page);
    await typeCard(page, { number: '4242424242424241', expiry: '0120', cvc: '123' });
    await page.click('button[type="submit"]');
    await page.waitForSelector('[data-cardseal="number"][aria-invalid="true"]');
    assert.equal(await page.textContent('[data-cardseal-error="number"]'), 'Your card number is invalid.');
    assert.equal(await page.getAttribute('[data-cardseal="expiry"]', 'aria-invalid'), 'true');
    assert.equal(await page.textContent('[data-cardseal-error="expiry"]'), "Your card's expiration date is in the past.");
    const describedBy = await page.getAttribute('[data-cardseal="number"]', 'aria-describedby');
    assert.equal(await page.getAttribute(`#${describedBy}`, 'data-cardseal-error'), 'number');
    assert.equal(sent.filter((r) => r.url.startsWith(vault.url) && r.method === 'POST').length, 0, 'no request reached the vault');
    assert.equal(shop.requests.slice(before).filter((r) => r.method === 'POST').length, 0, 'nothing was submitted');
    await page.close();
  });

  it('shows the decline message for a declined test card', async () => {
    const { page } = await openPage('/checkout?product=notebook');
    await formReady(page);
    await typeCard(page, { number: '4000000000009995' });
    await Promise.all([page.waitForURL(/\/receipt\//), page.click('button[type="submit"]')]);
    assert.match(await page.textContent('h2'), /declined/i);
    assert.equal(await page.textContent('[data-receipt-message]'), 'Your card has insufficient funds.');
    await page.close();
  });

  it('saves a card, then pays again with only the CVC re-entered', async () => {
    const { page } = await openPage('/checkout?product=notebook');
    const before = shop.requests.length;
    await formReady(page);
    await typeCard(page, { number: '5555555555554444', cvc: '321' });
    await page.check('input[name="save_card"]');
    await Promise.all([page.waitForURL(/\/receipt\//), page.click('button[type="submit"]')]);
    assert.match(await page.textContent('h2'), /Payment successful/);
    await page.goto(shop.url + '/account');
    const again = page.locator('.saved-card', { hasText: '4444' }).locator('a.button');
    await Promise.all([page.waitForURL(/\/pay-again/), again.first().click()]);
    await formReady(page);
    await page.fill('[data-cvc-again]', '321');
    await Promise.all([page.waitForURL(/\/receipt\//), page.click('button[type="submit"]')]);
    assert.match(await page.textContent('h2'), /Payment successful/);
    assert.match(await page.textContent('[data-receipt-card]'), /Mastercard •••• 4444/);
    assert.match(await page.textContent('dd code'), /^ch_/);
    assertNoCardData(shop.requests.slice(before), { number: '5555555555554444', cvc: '321' });
    await page.close();
  });

  it('subscribes: the vault makes the SETUP_COF_RECURRING charge and runs the renewal schedule', async () => {
    const { page } = await openPage('/checkout?product=membership');
    await formReady(page);
    await typeCard(page, { number: '4242424242424242' });
    await Promise.all([page.waitForURL(/\/receipt\//), page.click('button[type="submit"]')]);
    assert.match(await page.textContent('h2'), /Payment successful/);
    assert.match(await page.textContent('.receipt'), /SETUP_COF_RECURRING/);
    const renewal = page.locator('.receipt [data-renewal]');
    assert.equal(await renewal.getAttribute('data-status'), 'active');
    const id = await renewal.getAttribute('data-schedule');
    // The schedule is the vault's: its first charge is the receipt's, its next run a month on.
    const auth = { headers: { Authorization: `Bearer ${vault.sk}` } };
    const rc = await (await fetch(`${vault.url}/v1/recurring/charges/${id}`, auth)).json();
    assert.equal(rc.status, 'active');
    assert.equal(rc.interval, 'month');
    assert.equal(rc.amount, 500);
    assert.equal(rc.charges.length, 1);
    assert.equal(rc.charges[0].id, await page.textContent('.receipt dd code'));
    const next = new Date(rc.next_run * 1000).toISOString().slice(0, 10);
    assert.ok(rc.next_run - rc.start >= 28 * 86400 && rc.next_run - rc.start <= 31 * 86400);
    assert.match(await renewal.textContent(), new RegExp(`renews it on ${next}`));
    // No renewal button of the shop's own: the account page shows the vault's schedule.
    await page.goto(shop.url + '/account');
    assert.equal(await page.locator('form[action="/renew"]').count(), 0);
    const row = page.locator('.saved-card', { has: page.locator(`[data-schedule="${id}"]`) });
    assert.match(await row.textContent(), new RegExp(next));
    await Promise.all([page.waitForURL(/\/account$/), row.locator('form[action="/cancel-membership"] button').click()]);
    const canceled = page.locator(`[data-schedule="${id}"]`);
    assert.equal(await canceled.getAttribute('data-status'), 'canceled');
    const after = await (await fetch(`${vault.url}/v1/recurring/charges/${id}`, auth)).json();
    assert.equal(after.status, 'canceled');
    assert.equal(after.next_run, null);
    assert.equal(after.charges.length, 1);
    await page.close();
  });

  it('works by keyboard alone: Tab through the fields and submit with Enter', async () => {
    const { page } = await openPage('/checkout?product=notebook');
    await formReady(page);
    await page.focus('[data-cardseal="number"]');
    await page.keyboard.type('4242424242424242');
    await page.keyboard.press('Tab');
    await page.keyboard.type(`12${year}`);
    await page.keyboard.press('Tab');
    await page.keyboard.type('123');
    assert.equal(await page.evaluate(() => document.activeElement.dataset.cardseal), 'cvc');
    await Promise.all([page.waitForURL(/\/receipt\//), page.keyboard.press('Enter')]);
    assert.match(await page.textContent('h2'), /Payment successful/);
    await page.close();
  });

  it('makes one token for a double submit and disables the button while it works', async () => {
    const { page, sent } = await openPage('/checkout?product=notebook');
    await formReady(page);
    await typeCard(page, { number: '4242424242424242' });
    // The button's state is read in the same task as the submits: a second evaluate could come
    // after the payment has already navigated to the receipt.
    const receipt = page.waitForURL(/\/receipt\//);
    const disabledWhileWorking = await page.evaluate(() => {
      const form = document.querySelector('form[data-cardseal]');
      form.requestSubmit();
      form.requestSubmit();
      return form.querySelector('button[type="submit"]').disabled;
    });
    assert.equal(disabledWhileWorking, true);
    await receipt;
    assert.equal(sent.filter((r) => r.url === `${vault.url}/v1/tokens` && r.method === 'POST').length, 1);
    await page.close();
  });

  it("works under Content-Security-Policy: script-src 'self' 'wasm-unsafe-eval'", async () => {
    const { page, problems, response } = await openPage('/checkout?product=notebook', strictShop);
    const csp = response.headers()['content-security-policy'];
    assert.match(csp, /script-src 'self' 'wasm-unsafe-eval';/);
    const violations = [];
    await page.exposeFunction('reportViolation', (v) => violations.push(v));
    await page.evaluate(() => document.addEventListener('securitypolicyviolation', (e) => window.reportViolation(e.violatedDirective)));
    await formReady(page);
    await typeCard(page, { number: '4242424242424242' });
    await saveScreenshot(page, 'checkout.png');
    await Promise.all([page.waitForURL(/\/receipt\//), page.click('button[type="submit"]')]);
    assert.match(await page.textContent('h2'), /Payment successful/);
    assert.deepEqual(violations, []);
    assert.deepEqual(problems, []);
    await page.close();
  });

  it('the vault serves the snippet at a versioned, immutable path', async () => {
    const src = vault.logs.join('').match(/snippet\s+(\S+)/)[1];
    assert.match(src, /\/js\/\d+\.\d+\.\d+-[0-9a-f]{8}\/cardseal\.js$/);
    const res = await fetch(src);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), readFileSync(join(root, 'pkg/snippet/cardseal.js')));
  });

  it('does not run a tampered snippet (one byte changed, correct integrity) and posts nothing', async () => {
    const original = readFileSync(join(root, 'pkg/snippet/cardseal.js'));
    const tampered = Buffer.from(original);
    tampered[Math.floor(tampered.length / 2)] ^= 0x01;
    const { page, sent, problems } = await openPage('/checkout?product=notebook', shop, (p) =>
      p.route('**/cardseal.js', (route) => route.fulfill({ status: 200, contentType: 'text/javascript', body: tampered })));
    // The loader sees the refused script, says so, and keeps Pay disabled.
    await page.waitForSelector('form[data-cardseal-unavailable="script"]');
    assert.equal(await page.textContent('[data-cardseal-error="form"]'), 'Card payments are unavailable right now. Please try again in a moment.');
    assert.equal(await page.evaluate(() => typeof window.cardseal), 'undefined');
    assert.ok(problems.some((p) => /integrity/i.test(p)), `the browser reports the integrity failure: ${problems.join(' | ')}`);
    // Only the script itself was requested (the loader retries it): no keys fetched, no card posted.
    const toVault = sent.filter((r) => r.url.startsWith(vault.url)).map((r) => `${r.method} ${new URL(r.url).pathname.replace(/[^/]+\/cardseal/, '…/cardseal')}`);
    assert.ok(toVault.length >= 1);
    assert.deepEqual([...new Set(toVault)], ['GET /js/…/cardseal.js']);
    // Pay stays disabled, and even a script's submit is held back: the shop gets nothing.
    const before = shop.requests.length;
    await typeCard(page, { number: '4242424242424242', cvc: '123' });
    assert.equal(await page.isDisabled('button[type="submit"]'), true);
    await page.click('button[type="submit"]', { force: true });
    // What requestSubmit() or Enter would fire: the loader cancels it.
    assert.equal(await page.evaluate(() => document.querySelector('form[data-cardseal]')
      .dispatchEvent(new SubmitEvent('submit', { bubbles: true, cancelable: true }))), false);
    assert.match(page.url(), /\/checkout\?/);
    // The shop's own guard, for a form that arrives without a token all the same.
    const res = await fetch(`${shop.url}/pay`, { method: 'POST', body: new URLSearchParams({ product: 'notebook' }), redirect: 'manual' });
    const receipt = await (await fetch(new URL(res.headers.get('location'), shop.url))).text();
    assert.match(receipt, /Card payments are unavailable; nothing was charged\./);
    assert.deepEqual(shop.requests.slice(before).map((r) => `${r.method} ${r.url.split('/').slice(0, 2).join('/')}`), ['POST /pay', 'GET /receipt']);
    await page.close();
  });
});

async function saveScreenshot(page, name) {
  if (!process.env.CARDSEAL_SCREENSHOTS) return;
  mkdirSync(join(root, 'docs'), { recursive: true });
  writeFileSync(join(root, 'docs', name), await page.screenshot({ fullPage: true }));
}
