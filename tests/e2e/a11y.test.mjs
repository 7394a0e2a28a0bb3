// Accessibility of the demo shop in headless Chromium: axe-core (@axe-core/playwright) on every
// page in its empty, error and filled states, plus what axe cannot see: each card input's
// accessible name, errors announced through a live region, the Tab order, and the checkout at
// 200% zoom and on a 375 px wide phone. The hosted-fields checkout too: axe runs inside the
// vault's iframes, and each iframe's title and its input's name are checked. Starts its own vault
// and shop on 127.0.0.1.
//
// CARDSEAL_SCREENSHOTS=1 also writes docs/checkout-375.png.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { AxeBuilder } from '@axe-core/playwright';

import { startShop } from '../../www/shop.mjs';
import { launchChromium } from '../support/chromium.mjs';
import { root, startVault } from '../support/servers.mjs';

const year = String((new Date().getUTCFullYear() + 3) % 100).padStart(2, '0');

// Moderate or minor findings that README.md ("Accessibility") explains, by rule id. Anything else
// fails the test, so the README stays true. Serious and critical findings always fail.
const DOCUMENTED = new Set([]);

let vault;
let shop;
let browser;
let savedCard;
const summary = [];

/** A card saved through the checkout ("Save my card"), for the pages that need one. */
async function ensureSavedCard() {
  if (savedCard) return savedCard;
  const { page, context } = await open('/checkout?product=notebook');
  await snippetReady(page);
  await typeCard(page, { number: '5555555555554444' });
  await page.check('input[name="save_card"]');
  await Promise.all([page.waitForURL(/\/receipt\//), page.click('button[type="submit"]')]);
  await page.goto(`${shop.url}/account`);
  savedCard = await page.getAttribute('.saved-card[data-card]', 'data-card');
  assert.match(savedCard ?? '', /^card_/);
  await context.close();
  return savedCard;
}

before(async () => {
  // --snippet-dir: the vault serves the hosted fields' documents (`/fields/…`) from it.
  vault = await startVault({ args: ['--snippet-dir', join(root, 'pkg/snippet')] });
  shop = await startShop({ vaultUrl: vault.url, publishableKey: vault.pk, secretKey: vault.sk });
  browser = await launchChromium();
});

after(async () => {
  if (summary.length) console.log(`axe findings by page and state (impact: count)\n${summary.map((l) => `  ${l}`).join('\n')}`);
  await browser?.close();
  await shop?.close();
  await vault?.stop();
});

/** A page in a fresh context (axe needs one), with page errors collected. */
async function open(path, contextOptions = {}) {
  const context = await browser.newContext(contextOptions);
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(shop.url + path);
  return { page, context, problems };
}

const snippetReady = (page) => page.waitForFunction(() => window.cardseal && window.cardseal.instance, null, { timeout: 20_000 });
const FIELDS_CHECKOUT = '/checkout?product=notebook&mode=fields';
const FIELD_KINDS = ['number', 'expiry', 'cvc', 'name'];
const fieldsReady = (page) => page.waitForFunction(() => window.cardseal && window.cardseal.attachments && window.cardseal.attachments.length > 0
  && !document.querySelector('button[type="submit"]').disabled, null, { timeout: 20_000 });
const fieldFrame = (page, kind) => page.frameLocator(`iframe[data-cardseal-frame="${kind}"]`);

/** Types into the hosted fields (the vault's iframes); each field given is cleared first. */
async function typeFields(page, card) {
  for (const kind of FIELD_KINDS) {
    if (card[kind] === undefined) continue;
    const input = fieldFrame(page, kind).locator('input');
    await input.fill('');
    await input.click();
    await page.keyboard.type(card[kind]);
  }
}
const validatorReady = (page) => page.waitForFunction(() => !document.getElementById('pay').disabled, null, { timeout: 20_000 });

/** Runs axe; no serious or critical finding, and only documented lesser ones. */
async function audit(page, label) {
  const { violations } = await new AxeBuilder({ page }).analyze();
  const counts = {};
  for (const v of violations) counts[v.impact] = (counts[v.impact] ?? 0) + v.nodes.length;
  summary.push(`${label}: ${Object.entries(counts).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`);
  const describe = (v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`;
  const severe = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(severe.map(describe), [], `${label}: serious or critical axe findings`);
  const undocumented = violations.filter((v) => !DOCUMENTED.has(v.id));
  assert.deepEqual(undocumented.map(describe), [], `${label}: axe findings README.md does not explain`);
}

async function retype(page, selector, text) {
  await page.fill(selector, '');
  await page.click(selector);
  await page.keyboard.type(text);
}

async function typeCard(page, { number, expiry = `12${year}`, cvc = '123', name }) {
  await retype(page, '[data-cardseal="number"]', number);
  await retype(page, '[data-cardseal="expiry"]', expiry);
  await retype(page, '[data-cardseal="cvc"]', cvc);
  if (name !== undefined) await retype(page, '[data-cardseal="name"]', name);
}

/** The live regions (aria-live, role=alert or role=status) whose text mentions `text`. */
function liveRegionsWith(page, text) {
  return page.evaluate((needle) => [...document.querySelectorAll('[aria-live]:not([aria-live="off"]), [role="alert"], [role="status"]')]
    .filter((el) => el.textContent.includes(needle))
    .map((el) => el.getAttribute('aria-live') ?? el.getAttribute('role')), text);
}

/** Tabs from the focused element and lists what gets focus, as `tag#id` or `tag[name]`. */
async function tabOrder(page, presses) {
  const seen = [];
  for (let i = 0; i < presses; i++) {
    await page.keyboard.press('Tab');
    seen.push(await page.evaluate(() => {
      const el = document.activeElement;
      if (el.localName === 'a') return `a(${el.textContent.trim()})`;
      return el.id ? `${el.localName}#${el.id}` : `${el.localName}${el.name ? `[${el.name}]` : ''}${el.type ? `:${el.type}` : ''}`;
    }));
  }
  return seen;
}

/** Every listed element is further down the page, or on the same row further right, than the one before. */
async function assertReadingOrder(page, selectors) {
  const boxes = [];
  for (const s of selectors) boxes.push({ s, box: await page.locator(s).boundingBox() });
  for (let i = 1; i < boxes.length; i++) {
    const [a, b] = [boxes[i - 1], boxes[i]];
    const below = b.box.y >= a.box.y + a.box.height - 1;
    const right = Math.abs(b.box.y - a.box.y) < 2 && b.box.x >= a.box.x + a.box.width;
    assert.ok(below || right, `${b.s} comes after ${a.s} on screen`);
  }
}

/** No horizontal scrolling, and the Pay button is on the page, unobscured, and really gets the click. */
async function assertFits(page, label) {
  const { scrollWidth, clientWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth,
  }));
  assert.ok(scrollWidth <= clientWidth, `${label}: the page scrolls sideways (${scrollWidth} > ${clientWidth} px)`);
  const wide = await page.evaluate(() => [...document.querySelectorAll('body *')]
    .filter((el) => el.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
    .map((el) => el.localName + (el.className ? `.${el.className}` : '')));
  assert.deepEqual(wide, [], `${label}: elements past the right edge`);
}

async function assertPayClickable(page, selector = 'button[type="submit"]') {
  const button = page.locator(selector);
  await button.scrollIntoViewIfNeeded();
  assert.ok(await button.isVisible(), 'Pay is visible');
  const hit = await button.evaluate((el) => {
    const r = el.getBoundingClientRect();
    const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    return { inside: r.left >= 0 && r.right <= document.documentElement.clientWidth, ownHit: el === top || el.contains(top) };
  });
  assert.deepEqual(hit, { inside: true, ownHit: true }, 'Pay lies inside the viewport and nothing covers it');
}

describe('axe: no serious or critical findings on any page', () => {
  it('the product list', async () => {
    const { page, context } = await open('/');
    await audit(page, 'home');
    await context.close();
  });

  for (const [product, label] of [['notebook', 'checkout'], ['membership', 'subscription']]) {
    it(`the ${label} page (/checkout?product=${product}): empty, error, filled, then the receipt`, async () => {
      const { page, context, problems } = await open(`/checkout?product=${product}`);
      await snippetReady(page);
      await audit(page, `${label} empty`);
      await typeCard(page, { number: '4242424242424241', expiry: '0120', cvc: '1' });
      await page.click('button[type="submit"]');
      await page.waitForSelector('[data-cardseal="number"][aria-invalid="true"]');
      await audit(page, `${label} error`);
      await typeCard(page, { number: '4242424242424242', name: 'Ada Lovelace' });
      if (product === 'notebook') await page.check('input[name="save_card"]');
      await audit(page, `${label} filled`);
      await Promise.all([page.waitForURL(/\/receipt\//), page.click('button[type="submit"]')]);
      assert.match(await page.textContent('.receipt'), /Payment successful/);
      await audit(page, `${label} receipt`);
      assert.deepEqual(problems, []);
      await context.close();
    });
  }

  it('the decline page and the failure page', async () => {
    const { page, context } = await open('/checkout?product=notebook');
    await snippetReady(page);
    await typeCard(page, { number: '4000000000000002' });
    await Promise.all([page.waitForURL(/\/receipt\//), page.click('button[type="submit"]')]);
    assert.match(await page.textContent('.receipt'), /declined/);
    await audit(page, 'decline');
    // A form that reached the shop without a token (the shop's guard) shows "Payment failed".
    const res = await fetch(`${shop.url}/pay`, { method: 'POST', body: new URLSearchParams({ product: 'notebook' }), redirect: 'manual' });
    await page.goto(new URL(res.headers.get('location'), shop.url).href);
    assert.match(await page.textContent('.receipt'), /Payment failed/);
    await audit(page, 'failure');
    await context.close();
  });

  it('the saved cards and the pay-again page: empty, error, filled', async () => {
    await ensureSavedCard();
    const { page, context } = await open('/account');
    await audit(page, 'your cards');
    await page.goto(`${shop.url}/pay-again?card=${savedCard}`);
    await snippetReady(page);
    await audit(page, 'pay again empty');
    await retype(page, '[data-cvc-again]', '1');
    await page.click('button[type="submit"]');
    await page.waitForSelector('[data-cvc-again][aria-invalid="true"]');
    await audit(page, 'pay again error');
    await retype(page, '[data-cvc-again]', '123');
    await audit(page, 'pay again filled');
    await context.close();
  });

  it('the hosted-fields checkout (/checkout?product=notebook&mode=fields): empty, error, filled, then the receipt; axe runs inside the vault\'s iframes too', async () => {
    const { page, context, problems } = await open(FIELDS_CHECKOUT);
    await fieldsReady(page);
    // AxeBuilder injects axe into every frame, the vault's cross-origin iframes included: the
    // findings below cover the inputs inside them, as the next assertion shows.
    const inFrames = await new AxeBuilder({ page }).withRules(['label']).analyze();
    const labelled = inFrames.passes.find((r) => r.id === 'label')?.nodes.map((n) => n.target) ?? [];
    for (const kind of FIELD_KINDS) {
      assert.ok(labelled.some((t) => t.length === 2 && /^iframe\b/.test(t[0]) && t[1] === `#cs-${kind}`),
        `axe checked the input inside the ${kind} frame: ${JSON.stringify(labelled)}`);
    }
    await audit(page, 'fields checkout empty');
    await typeFields(page, { number: '4242424242424241', expiry: `12${year}`, cvc: '123' });
    await page.click('button[type="submit"]');
    await fieldFrame(page, 'number').locator('input[aria-invalid="true"]').waitFor();
    assert.equal(await fieldFrame(page, 'number').locator('.error').textContent(), 'Your card number is invalid.');
    await audit(page, 'fields checkout error');
    await fieldFrame(page, 'number').locator('input').fill('');
    await typeFields(page, { number: '4242424242424242', name: 'Ada Lovelace' });
    await fieldFrame(page, 'number').locator('input:not([aria-invalid])').waitFor();
    await page.check('input[name="save_card"]');
    await audit(page, 'fields checkout filled');
    await Promise.all([page.waitForURL(/\/receipt\//), page.click('button[type="submit"]')]);
    assert.match(await page.textContent('[data-receipt-card]'), /Visa •••• 4242/);
    await audit(page, 'fields checkout receipt');
    assert.deepEqual(problems, []);
    await context.close();
  });

  it('the validator page (/validate.html): empty, error, filled', async () => {
    const { page, context } = await open('/validate.html');
    await validatorReady(page);
    await audit(page, 'validator empty');
    await page.click('#pay');
    await page.waitForSelector('#card-number[aria-invalid="true"]');
    await audit(page, 'validator error');
    await retype(page, '#card-number', '4242424242424242');
    await retype(page, '#card-expiry', `12${year}`);
    await retype(page, '#card-cvc', '123');
    await page.click('#pay');
    await page.waitForFunction(() => /valid/.test(document.getElementById('status').textContent));
    await audit(page, 'validator filled');
    await context.close();
  });
});

describe('what axe cannot check', () => {
  it('each card input has an accessible name, on every form', async () => {
    const { page, context } = await open('/checkout?product=notebook');
    await snippetReady(page);
    for (const [field, name] of [['number', 'Card number'], ['expiry', 'Expiry'], ['cvc', 'Security code'], ['name', 'Name on card (optional)']]) {
      const byRole = page.getByRole('textbox', { name, exact: true });
      assert.equal(await byRole.count(), 1, `one textbox named "${name}"`);
      assert.equal(await byRole.getAttribute('data-cardseal'), field);
    }
    await page.goto(`${shop.url}/pay-again?card=${await ensureSavedCard()}`);
    assert.equal(await page.getByRole('textbox', { name: 'Security code', exact: true }).getAttribute('data-cvc-again'), '');
    await page.goto(`${shop.url}/validate.html`);
    for (const [id, name] of [['card-number', 'Card number'], ['card-expiry', 'Expiry'], ['card-cvc', 'CVC'], ['card-name', 'Name on card (optional)']]) {
      assert.equal(await page.getByRole('textbox', { name, exact: true }).getAttribute('id'), id);
    }
    await context.close();
  });

  it('hosted fields: each iframe has a title, and the input inside each frame an accessible name', async () => {
    const { page, context } = await open(FIELDS_CHECKOUT);
    await fieldsReady(page);
    // The iframe's title and its input's label (a visually hidden <label> inside the frame).
    const expected = { number: ['Card number', 'Card number'], expiry: ['Expiry date', 'Expiry date'], cvc: ['Security code', 'Security code'], name: ['Name on card', 'Name on card'] };
    // The frame's name (its title) as the page's accessibility tree has it.
    for (const [kind, [title]] of Object.entries(expected)) {
      const frame = page.locator(`iframe[data-cardseal-frame="${kind}"]`);
      assert.equal(await frame.getAttribute('title'), title);
      const named = page.getByTitle(title, { exact: true });
      assert.equal(await named.getAttribute('data-cardseal-frame'), kind, `the iframe titled "${title}" is the ${kind} field`);
    }
    // Inside each frame: one textbox, found by role and name as a screen reader finds it.
    for (const [kind, [, name]] of Object.entries(expected)) {
      const boxes = fieldFrame(page, kind).getByRole('textbox');
      assert.equal(await boxes.count(), 1, `one textbox in the ${kind} frame`);
      assert.equal(await fieldFrame(page, kind).getByRole('textbox', { name, exact: true }).getAttribute('id'), `cs-${kind}`,
        `the ${kind} frame's input is named "${name}"`);
    }
    // axe, limited to each frame's input (a frame selector, then a selector inside it): the
    // iframes' `frame-title` and the inputs' `label` pass, nothing is left incomplete.
    for (const kind of FIELD_KINDS) {
      const frameSel = `iframe[data-cardseal-frame="${kind}"]`;
      const input = await new AxeBuilder({ page }).include([frameSel, 'input']).withRules(['label']).analyze();
      assert.deepEqual(input.violations, [], `${kind}: label`);
      assert.deepEqual(input.passes.find((r) => r.id === 'label')?.nodes.map((n) => n.target[1]), [`#cs-${kind}`]);
      const frame = await new AxeBuilder({ page }).include(frameSel).withRules(['frame-title', 'frame-title-unique']).analyze();
      assert.deepEqual(frame.violations, [], `${kind}: frame-title`);
      assert.equal(frame.passes.find((r) => r.id === 'frame-title')?.nodes.length, 1, `${kind}: frame-title passes on its iframe`);
    }
    await context.close();
  });

  it('errors are announced: the message lands in a live region, tied to its input', async () => {
    const { page, context } = await open('/checkout?product=notebook');
    await snippetReady(page);
    // The regions exist before anything goes wrong: a region added with its text is not read.
    const live = await page.$$eval('[data-cardseal-error]', (els) => els.map((e) => e.getAttribute('aria-live') ?? e.getAttribute('role')));
    assert.ok(live.every(Boolean), `every error slot is live: ${live}`);
    await typeCard(page, { number: '4242424242424241' });
    await page.click('button[type="submit"]');
    await page.waitForSelector('[data-cardseal="number"][aria-invalid="true"]');
    assert.deepEqual(await liveRegionsWith(page, 'Your card number is invalid.'), ['polite']);
    const describedBy = await page.getAttribute('[data-cardseal="number"]', 'aria-describedby');
    assert.equal(await page.textContent(`#${describedBy}`), 'Your card number is invalid.');
    // Focus goes to the bad field, so its description is read too.
    assert.equal(await page.evaluate(() => document.activeElement.dataset.cardseal), 'number');

    await page.goto(`${shop.url}/pay-again?card=${await ensureSavedCard()}`);
    await snippetReady(page);
    await retype(page, '[data-cvc-again]', '1');
    await page.click('button[type="submit"]');
    await page.waitForSelector('[data-cvc-again][aria-invalid="true"]');
    assert.ok((await liveRegionsWith(page, "Your card's security code is incomplete.")).length >= 1, 'pay again: the CVC error is live');

    await page.goto(`${shop.url}/validate.html`);
    await validatorReady(page);
    await page.click('#pay');
    await page.waitForSelector('#card-number[aria-invalid="true"]');
    assert.ok((await liveRegionsWith(page, 'Your card number is incomplete.')).length >= 1, 'validator: the error is live');
    await context.close();
  });

  it('Tab moves through each form in reading order', async () => {
    const { page, context } = await open('/checkout?product=notebook');
    await snippetReady(page);
    await page.focus('[data-cardseal="number"]');
    assert.deepEqual(await tabOrder(page, 5),
      ['input#card-expiry', 'input#card-cvc', 'input#card-name', 'input[save_card]:checkbox', 'button:submit']);
    await assertReadingOrder(page, ['#card-number', '#card-expiry', '#card-cvc', '#card-name', 'input[name="save_card"]', 'button[type="submit"]']);
    // From the top of a fresh page: the site's links, then the first card field.
    await page.reload();
    await snippetReady(page);
    assert.deepEqual(await tabOrder(page, 5),
      ['a(cardseal demo shop)', 'a(Shop)', 'a(Your cards)', 'a(Validator)', 'input#card-number']);

    await page.goto(`${shop.url}/checkout?product=membership`);
    await snippetReady(page);
    await page.focus('[data-cardseal="number"]');
    assert.deepEqual(await tabOrder(page, 4), ['input#card-expiry', 'input#card-cvc', 'input#card-name', 'button:submit']);

    await page.goto(`${shop.url}/validate.html`);
    await validatorReady(page);
    await page.focus('#card-number');
    assert.deepEqual(await tabOrder(page, 4), ['input#card-expiry', 'input#card-cvc', 'input#card-name', 'button#pay']);
    await context.close();
  });

  // 200% zoom of a 1280 × 800 window lays the page out in 640 × 400 CSS pixels at twice the
  // device scale: the same media queries and reflow as the browser's zoom.
  for (const [label, options] of [
    ['375 px wide (a phone)', { viewport: { width: 375, height: 667 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }],
    ['200% zoom', { viewport: { width: 640, height: 400 }, deviceScaleFactor: 2 }],
  ]) {
    it(`${label}: no page scrolls sideways, and Pay is visible and takes the payment`, async () => {
      const { page, context, problems } = await open('/', options);
      await assertFits(page, 'home');
      for (const path of ['/checkout?product=membership', `/pay-again?card=${await ensureSavedCard()}`, '/account', '/validate.html']) {
        await page.goto(shop.url + path);
        await assertFits(page, path);
      }
      await page.goto(`${shop.url}/checkout?product=notebook`);
      await snippetReady(page);
      await typeCard(page, { number: '4242424242424242' });
      await assertFits(page, 'checkout filled');
      // The whole formatted number shows in its input, beside the brand badge.
      const number = await page.$eval('[data-cardseal="number"]', (el) => {
        const badge = el.parentElement.querySelector('[data-shop-brand]').getBoundingClientRect();
        const style = getComputedStyle(el);
        return { value: el.value, clipped: el.scrollWidth > el.clientWidth,
          textEnd: el.getBoundingClientRect().right - parseFloat(style.paddingRight), badgeStart: badge.left };
      });
      assert.equal(number.value, '4242 4242 4242 4242');
      assert.equal(number.clipped, false, 'the card number is cut off');
      assert.ok(number.textEnd <= number.badgeStart, 'the badge does not cover the number');
      await assertPayClickable(page);
      if (label.startsWith('375')) await saveScreenshot(page, 'checkout-375.png');
      await Promise.all([page.waitForURL(/\/receipt\//), page.locator('button[type="submit"]').click()]);
      assert.match(await page.textContent('.receipt'), /Payment successful/);
      await assertFits(page, 'receipt');
      await page.goto(`${shop.url}/checkout?product=notebook`);
      await snippetReady(page);
      await typeCard(page, { number: '4000000000009995' });
      await Promise.all([page.waitForURL(/\/receipt\//), page.locator('button[type="submit"]').click()]);
      await assertFits(page, 'decline');
      assert.deepEqual(problems, []);
      await context.close();
    });
  }
});

async function saveScreenshot(page, name) {
  if (!process.env.CARDSEAL_SCREENSHOTS) return;
  mkdirSync(join(root, 'docs'), { recursive: true });
  writeFileSync(join(root, 'docs', name), await page.screenshot({ fullPage: true }));
}
