// When the vault cannot be reached, through the hosted fields (iframes of the vault), in headless
// Chromium (playwright-core) and Firefox (geckodriver): the same cases as unavailable.test.mjs
// for the direct form. Without the vault the checkout says so in the merchant page's error area,
// keeps Pay disabled and sends nothing to the shop, and mounts the fields by itself once the
// vault is back; a vault lost after the fields are ready keeps the card in the iframes for
// another press; field documents that never arrive get the same message after the timeout.
// The vault is stopped and started again on the same port with the same data.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';

import { startShop } from '../../www/shop.mjs';
import { launchChromium } from '../support/chromium.mjs';
import { freePort, root, snippetTag, startHangServer, startVault } from '../support/servers.mjs';

const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';
const MESSAGE = 'Card payments are unavailable right now. Please try again in a moment.';
const CHECKOUT = '/checkout?product=notebook&mode=fields';
// The stall test shortens the documented 15 s to keep the run short.
const STALL_TIMEOUT_MS = 2000;
// The self-hosted shop's field timeout: in Firefox each attempt against a refused iframe lasts this long.
const SELF_HOSTED_TIMEOUT_MS = 3000;
const year = String((new Date().getUTCFullYear() + 3) % 100).padStart(2, '0');
const CARD = { number: '4242424242424242', expiry: `12${year}`, cvc: '123' };

let vault;
let hang;
let shop;
let selfHostedShop;
let stallShop;

async function until(what, fn, ms = 45_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function tokensCreated() {
  const res = await fetch(`${vault.url}/v1/events?limit=100`, { headers: { Authorization: `Bearer ${vault.sk}` } });
  assert.equal(res.status, 200);
  return (await res.json()).data.filter((e) => e.type === 'token.created').length;
}

const payPosts = (s, from) => s.requests.slice(from).filter((r) => r.method === 'POST' && r.url === '/pay');

before(async () => {
  vault = await startVault({ args: ['--snippet-dir', `${root}/pkg/snippet`] });
  const snippet = snippetTag(vault);
  hang = await startHangServer();
  // The demo's set-up: cardseal-fields.js from the vault, so without the vault the script fails first.
  shop = await startShop({ vaultUrl: vault.url, publishableKey: vault.pk, secretKey: vault.sk, snippet });
  // The shop serves cardseal-fields.js itself: only the iframes need the vault.
  selfHostedShop = await startShop({
    vaultUrl: vault.url, publishableKey: vault.pk, secretKey: vault.sk, snippetData: { 'timeout-ms': SELF_HOSTED_TIMEOUT_MS },
  });
  // A vault that accepts connections and never answers, for the field documents.
  stallShop = await startShop({
    vaultUrl: hang.url, publishableKey: vault.pk, secretKey: vault.sk, snippetData: { 'timeout-ms': STALL_TIMEOUT_MS },
  });
});

after(async () => {
  await shop?.close();
  await selfHostedShop?.close();
  await stallShop?.close();
  await hang?.stop();
  await vault?.stop();
});

const q = (sel) => `document.querySelector(${JSON.stringify(sel)})`;
const formError = (p) => p.exec(`return ${q('[data-cardseal-error="form"]')}.textContent`);
const payDisabled = (p) => p.exec(`return ${q('button[type="submit"]')}.disabled`);
const unavailableReason = (p) => p.exec(`return ${q('form[data-cardseal-fields]')}.getAttribute('data-cardseal-unavailable')`);
// The form mode's attachments exist once every field has said `ready`.
const attached = (p) => p.exec('return Boolean(window.cardseal && window.cardseal.attachments && window.cardseal.attachments.length > 0)');
const frameCount = (p) => p.exec('return document.querySelectorAll("iframe[data-cardseal-frame]").length');

async function typeCard(p) {
  await p.typeIn('number', CARD.number);
  await p.typeIn('expiry', CARD.expiry);
  await p.typeIn('cvc', CARD.cvc);
}

async function assertCardKept(p) {
  assert.equal(await p.valueIn('number'), '4242 4242 4242 4242');
  assert.equal(await p.valueIn('expiry'), `12 / ${year}`);
  assert.equal(await p.valueIn('cvc'), CARD.cvc);
}

async function assertPaid(p) {
  await until('the receipt', async () => /\/receipt\//.test(await p.url()));
  const text = await p.exec(`return ${q('.receipt')}.textContent`);
  assert.match(text, /Payment successful/);
  assert.match(text, /Visa •••• 4242/);
}

function scenarios(browser) {
  for (const [where, shopOf, reason] of [
    ['the snippet from the vault', () => shop, 'script'],
    ['the snippet from the shop', () => selfHostedShop, 'fields'],
  ]) {
    // Firefox fires no `load` for an iframe whose vault refused the connection, so there an
    // attempt lasts its whole timeout: the self-hosted shop sets a short one (`data-timeout-ms`).
    it(`vault down before the page loads (${where}): the message shows, Pay sends nothing, and the fields attach once the vault is back`, async (t) => {
      const s = shopOf();
      const from = s.requests.length;
      await vault.stop({ keepData: true });
      let restarted = false;
      const opened = Date.now();
      const p = await browser.open(`${s.url}${CHECKOUT}`);
      try {
        await until('the unavailable message', async () => (await formError(p)) === MESSAGE);
        const shown = Date.now() - opened;
        assert.equal(await payDisabled(p), true);
        assert.equal(await unavailableReason(p), reason);
        assert.equal(await attached(p), false);
        // The customer presses Pay anyway; nothing leaves the page.
        await p.click('button[type="submit"]');
        await vault.restart();
        restarted = true;
        const back = Date.now();
        await until('the fields to attach', async () => (await attached(p)) && !(await payDisabled(p)));
        const attachedAfter = Date.now() - back;
        assert.equal(await formError(p), '');
        assert.equal(await unavailableReason(p), null);
        assert.equal(await frameCount(p), 4, 'one iframe per field, none left over from the failed attempts');
        if (p.events) {
          const events = await p.events();
          assert.deepEqual(events[0], { type: 'cardseal:unavailable', reason, retrying: true });
          assert.equal(events.at(-1).type, 'cardseal:ready');
        }
        assert.equal(payPosts(s, from).length, 0, 'the shop received no form while the vault was down');
        const tokens = await tokensCreated();
        await typeCard(p);
        await p.click('button[type="submit"]');
        await assertPaid(p);
        assert.equal(payPosts(s, from).length, 1);
        assert.match(payPosts(s, from)[0].body, /cardseal_token=tok_[A-Za-z0-9]{22}/);
        assert.equal(await tokensCreated() - tokens, 1, 'one press made one token');
        t.diagnostic(`${browser.name}, ${where}: message after ${shown} ms; fields attached ${attachedAfter} ms after the vault was back`);
      } finally {
        await p.close();
        if (!restarted) await vault.restart();
      }
    });
  }

  it('vault down after the fields are ready: Pay shows the message and keeps the card in the iframes; once the vault is back, Pay makes one token', async (t) => {
    const from = shop.requests.length;
    const p = await browser.open(`${shop.url}${CHECKOUT}`);
    let restarted = true;
    try {
      await until('the fields to attach', async () => (await attached(p)) && !(await payDisabled(p)));
      await typeCard(p);
      const tokens = await tokensCreated();
      await vault.stop({ keepData: true });
      restarted = false;
      const pressed = Date.now();
      await p.click('button[type="submit"]');
      await until('the unavailable message', async () => (await formError(p)) === MESSAGE);
      const shown = Date.now() - pressed;
      await until('Pay to be enabled again', async () => !(await payDisabled(p)));
      await assertCardKept(p);
      assert.match(await p.url(), /\/checkout\?/);
      assert.equal(payPosts(shop, from).length, 0);
      await vault.restart();
      restarted = true;
      await p.click('button[type="submit"]');
      await assertPaid(p);
      assert.equal(payPosts(shop, from).length, 1);
      assert.match(payPosts(shop, from)[0].body, /cardseal_token=tok_[A-Za-z0-9]{22}/);
      assert.equal(await tokensCreated() - tokens, 1, 'the presses made one token');
      t.diagnostic(`${browser.name}: message ${shown} ms after Pay`);
    } finally {
      await p.close();
      if (!restarted) await vault.restart();
    }
  });

  it('a vault that never answers for the field documents: the same message after the timeout', async (t) => {
    const from = stallShop.requests.length;
    const opened = Date.now();
    const p = await browser.open(`${stallShop.url}${CHECKOUT}`);
    try {
      await until('the unavailable message', async () => (await formError(p)) === MESSAGE);
      const shown = Date.now() - opened;
      // A stalled vault is a timeout: whichever notices first names it, the fields ('fields')
      // or, when the page is slow to run the snippet, the loader ('timeout').
      const reason = await unavailableReason(p);
      assert.ok(['fields', 'timeout'].includes(reason), `the reason: ${reason}`);
      assert.equal(await payDisabled(p), true, 'Pay is disabled');
      assert.equal(await attached(p), false, 'not attached');
      assert.ok(shown >= STALL_TIMEOUT_MS, `the message waited for the timeout (${shown} ms)`);
      await p.click('button[type="submit"]');
      assert.equal(payPosts(stallShop, from).length, 0);
      t.diagnostic(`${browser.name}: message ${shown} ms after opening (data-timeout-ms=${STALL_TIMEOUT_MS})`);
    } finally {
      await p.close();
    }
  });
}

describe('hosted fields without a vault, in Chromium', () => {
  let browser;
  before(async () => {
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
  });
  scenarios({
    name: 'Chromium',
    async open(url) {
      const page = await browser.newPage();
      // Records the events from the start, on the merchant's page only.
      await page.addInitScript(() => {
        if (window !== window.top) return;
        window.__cardsealEvents = [];
        document.addEventListener('cardseal:unavailable', (e) => window.__cardsealEvents.push(
          { type: 'cardseal:unavailable', reason: e.detail.reason, retrying: e.detail.retrying }));
        document.addEventListener('cardseal:ready', () => window.__cardsealEvents.push({ type: 'cardseal:ready' }));
      });
      // Not until `load`: frames from a vault that never answers hold that back.
      await page.goto(url, { waitUntil: 'domcontentloaded' });
      const input = (kind) => page.frameLocator(`iframe[data-cardseal-frame="${kind}"]`).locator('input');
      return {
        exec: (body) => page.evaluate(`(() => { ${body} })()`),
        events: () => page.evaluate(() => window.__cardsealEvents),
        async typeIn(kind, text) {
          await input(kind).click();
          await page.keyboard.type(text);
        },
        valueIn: (kind) => input(kind).inputValue(),
        // `force`: a real click even on a disabled button.
        click: (sel) => page.click(sel, { force: true, noWaitAfter: true }),
        url: () => page.url(),
        close: () => page.close(),
      };
    },
  });
});

describe('hosted fields without a vault, in Firefox', () => {
  let driver;
  let base;
  let session;
  const wd = async (method, path, body) => {
    const res = await fetch(`${base}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body && JSON.stringify(body) });
    const json = await res.json();
    if (!res.ok) throw new Error(`WebDriver ${method} ${path}: ${json.value?.message ?? res.status}`);
    return json.value;
  };
  const s = (path) => `/session/${session}${path}`;
  const find = async (css) => (await wd('POST', s('/element'), { using: 'css selector', value: css }))[ELEMENT];
  const inFrame = async (kind, fn) => {
    await wd('POST', s('/frame'), { id: { [ELEMENT]: await find(`iframe[data-cardseal-frame="${kind}"]`) } });
    try {
      return await fn();
    } finally {
      await wd('POST', s('/frame/parent'), {});
    }
  };

  before(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    driver = spawn('geckodriver', ['--port', String(port), '--host', '127.0.0.1'], { stdio: 'ignore' });
    await until('geckodriver', async () => fetch(`${base}/status`).then((r) => r.ok, () => false));
    const created = await wd('POST', '/session', {
      capabilities: { alwaysMatch: { browserName: 'firefox', pageLoadStrategy: 'eager', 'moz:firefoxOptions': { args: ['-headless'], prefs: {
        'network.captive-portal-service.enabled': false, 'app.update.enabled': false, 'network.connectivity-service.enabled': false,
      } } } },
    });
    session = created.sessionId;
  });
  after(async () => {
    if (session) await wd('DELETE', s('')).catch(() => {});
    driver?.kill();
  });
  scenarios({
    name: 'Firefox',
    async open(url) {
      await wd('POST', s('/url'), { url });
      return {
        exec: (body) => wd('POST', s('/execute/sync'), { script: body, args: [] }),
        typeIn: (kind, text) => inFrame(kind, async () => wd('POST', s(`/element/${await find('input')}/value`), { text })),
        valueIn: (kind) => inFrame(kind, () => wd('POST', s('/execute/sync'), { script: 'return document.querySelector("input").value', args: [] })),
        click: async (sel) => wd('POST', s(`/element/${await find(sel)}/click`), {}),
        url: () => wd('GET', s('/url')),
        close: () => wd('POST', s('/url'), { url: 'about:blank' }),
      };
    },
  });
});
