// When the vault cannot be reached, in headless Chromium (playwright-core) and Firefox
// (geckodriver): the checkout says so, keeps Pay disabled and sends nothing to the shop, and
// attaches by itself once the vault is back; a vault lost after the form is ready keeps the
// card for another press; a vault that never answers gets the same message after the timeout.
// The vault is stopped and started again on the same port with the same data.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';

import { startShop } from '../../www/shop.mjs';
import { launchChromium } from '../support/chromium.mjs';
import { freePort, root, snippetTag, startHangServer, startVault } from '../support/servers.mjs';

const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';
const MESSAGE = 'Card payments are unavailable right now. Please try again in a moment.';
// The stall tests shorten the documented 15 s to keep the run short.
const STALL_TIMEOUT_MS = 2000;
const year = String((new Date().getUTCFullYear() + 3) % 100).padStart(2, '0');
const CARD = { number: '4242424242424242', expiry: `12${year}`, cvc: '123' };

let vault;
let hang;
let shop;
let stallScriptShop;
let stallKeysShop;

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

const payPosts = (from) => shop.requests.slice(from).filter((r) => r.method === 'POST' && r.url === '/pay');

before(async () => {
  vault = await startVault({ args: ['--snippet-dir', `${root}/pkg/snippet`] });
  const snippet = snippetTag(vault);
  hang = await startHangServer();
  shop = await startShop({ vaultUrl: vault.url, publishableKey: vault.pk, secretKey: vault.sk, snippet });
  // A vault that accepts connections and never answers, serving the snippet …
  stallScriptShop = await startShop({
    vaultUrl: hang.url, publishableKey: vault.pk, secretKey: vault.sk,
    snippet: { src: hang.url + new URL(snippet.src).pathname, integrity: snippet.integrity },
    snippetData: { 'timeout-ms': STALL_TIMEOUT_MS },
  });
  // … or only the keys (the shop serves the snippet and the wasm itself).
  stallKeysShop = await startShop({
    vaultUrl: hang.url, publishableKey: vault.pk, secretKey: vault.sk, snippetData: { 'timeout-ms': STALL_TIMEOUT_MS },
  });
});

after(async () => {
  await shop?.close();
  await stallScriptShop?.close();
  await stallKeysShop?.close();
  await hang?.stop();
  await vault?.stop();
});

const q = (sel) => `document.querySelector(${JSON.stringify(sel)})`;
const formError = (p) => p.exec(`return ${q('[data-cardseal-error="form"]')}.textContent`);
const payDisabled = (p) => p.exec(`return ${q('button[type="submit"]')}.disabled`);
const unavailableReason = (p) => p.exec(`return ${q('form[data-cardseal]')}.getAttribute('data-cardseal-unavailable')`);
const attached = (p) => p.exec('return Boolean(window.cardseal && window.cardseal.instance)');

async function typeCard(p) {
  await p.type('[data-cardseal="number"]', CARD.number);
  await p.type('[data-cardseal="expiry"]', CARD.expiry);
  await p.type('[data-cardseal="cvc"]', CARD.cvc);
}

async function assertPaid(p) {
  await until('the receipt', async () => /\/receipt\//.test(await p.url()));
  const text = await p.exec(`return ${q('.receipt')}.textContent`);
  assert.match(text, /Payment successful/);
  assert.match(text, /Visa •••• 4242/);
}

function scenarios(browser) {
  it('vault down before the page loads: the message shows, Pay sends nothing, and the form attaches once the vault is back', async (t) => {
    const from = shop.requests.length;
    await vault.stop({ keepData: true });
    const opened = Date.now();
    const p = await browser.open(`${shop.url}/checkout?product=notebook`);
    try {
      await until('the unavailable message', async () => (await formError(p)) === MESSAGE);
      const shown = Date.now() - opened;
      assert.equal(await payDisabled(p), true);
      assert.equal(await unavailableReason(p), 'script');
      // The customer may type and press Pay meanwhile; nothing leaves the page.
      await typeCard(p);
      await p.click('button[type="submit"]');
      await vault.restart();
      const back = Date.now();
      await until('the form to attach', async () => (await attached(p)) && !(await payDisabled(p)));
      const attachedAfter = Date.now() - back;
      assert.equal(await formError(p), '');
      assert.equal(await unavailableReason(p), null);
      // What was typed before the snippet arrived is kept, and formatted on attach.
      assert.equal(await p.exec(`return ${q('[data-cardseal="number"]')}.value`), '4242 4242 4242 4242');
      assert.equal(await p.exec(`return ${q('[data-cardseal="expiry"]')}.value`), `12 / ${year}`);
      if (p.events) {
        const events = await p.events();
        assert.deepEqual(events[0], { type: 'cardseal:unavailable', reason: 'script', retrying: true });
        assert.equal(events.at(-1).type, 'cardseal:ready');
      }
      assert.equal(payPosts(from).length, 0, 'the shop received no form while the vault was down');
      const tokens = await tokensCreated();
      await p.click('button[type="submit"]');
      await assertPaid(p);
      assert.equal(payPosts(from).length, 1);
      assert.match(payPosts(from)[0].body, /cardseal_token=tok_[A-Za-z0-9]{22}/);
      assert.equal(await tokensCreated() - tokens, 1, 'one press made one token');
      t.diagnostic(`${browser.name}: message after ${shown} ms; attached ${attachedAfter} ms after the vault was back`);
    } finally {
      await p.close();
    }
  });

  it('vault down after ready: Pay shows the message and keeps the card; once the vault is back, Pay makes one token', async (t) => {
    const from = shop.requests.length;
    const p = await browser.open(`${shop.url}/checkout?product=notebook`);
    try {
      await until('the form to attach', () => attached(p));
      await typeCard(p);
      const tokens = await tokensCreated();
      await vault.stop({ keepData: true });
      const pressed = Date.now();
      await p.click('button[type="submit"]');
      await until('the unavailable message', async () => (await formError(p)) === MESSAGE);
      const shown = Date.now() - pressed;
      await until('Pay to be enabled again', async () => !(await payDisabled(p)));
      assert.equal(await p.exec(`return ${q('[data-cardseal="number"]')}.value`), '4242 4242 4242 4242');
      assert.equal(await p.exec(`return ${q('[data-cardseal="expiry"]')}.value`), `12 / ${year}`);
      assert.equal(await p.exec(`return ${q('[data-cardseal="cvc"]')}.value`), CARD.cvc);
      assert.match(await p.url(), /\/checkout\?/);
      assert.equal(payPosts(from).length, 0);
      await vault.restart();
      await p.click('button[type="submit"]');
      await assertPaid(p);
      assert.equal(payPosts(from).length, 1);
      assert.equal(await tokensCreated() - tokens, 1, 'the presses made one token');
      t.diagnostic(`${browser.name}: message ${shown} ms after Pay`);
    } finally {
      await p.close();
    }
  });

  for (const [what, shopOf] of [['the snippet', () => stallScriptShop], ['the keys', () => stallKeysShop]]) {
    it(`a vault that never answers for ${what}: the same message after the timeout`, async (t) => {
      const opened = Date.now();
      const p = await browser.open(`${shopOf().url}/checkout?product=notebook`);
      try {
        await until('the unavailable message', async () => (await formError(p)) === MESSAGE);
        const shown = Date.now() - opened;
        assert.equal(await unavailableReason(p), 'timeout');
        assert.equal(await payDisabled(p), true);
        assert.ok(shown >= STALL_TIMEOUT_MS, `the message waited for the timeout (${shown} ms)`);
        t.diagnostic(`${browser.name}: message ${shown} ms after opening (data-timeout-ms=${STALL_TIMEOUT_MS})`);
      } finally {
        await p.close();
      }
    });
  }
}

describe('the checkout without a vault, in Chromium', () => {
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
      // Records the events from the start (an init script is not subject to the page's CSP).
      await page.addInitScript(() => {
        window.__cardsealEvents = [];
        for (const type of ['cardseal:unavailable', 'cardseal:ready']) {
          document.addEventListener(type, (e) => window.__cardsealEvents.push(
            type === 'cardseal:ready' ? { type } : { type, reason: e.detail.reason, retrying: e.detail.retrying }));
        }
      });
      // Not until `load`: a script from a vault that never answers holds that back.
      await page.goto(url, { waitUntil: 'domcontentloaded' });
      return {
        exec: (body) => page.evaluate(`(() => { ${body} })()`),
        events: () => page.evaluate(() => window.__cardsealEvents),
        async type(sel, text) {
          await page.click(sel);
          await page.keyboard.type(text);
        },
        // `force`: a real click even on a disabled button.
        click: (sel) => page.click(sel, { force: true, noWaitAfter: true }),
        url: () => page.url(),
        close: () => page.close(),
      };
    },
  });
});

describe('the checkout without a vault, in Firefox', () => {
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
        type: async (sel, text) => wd('POST', s(`/element/${await find(sel)}/value`), { text }),
        click: async (sel) => wd('POST', s(`/element/${await find(sel)}/click`), {}),
        url: () => wd('GET', s('/url')),
        close: () => wd('POST', s('/url'), { url: 'about:blank' }),
      };
    },
  });
});
