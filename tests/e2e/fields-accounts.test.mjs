// Hosted fields bound to one account (issue #20, item 6), in headless Chromium: one vault, two
// accounts (A, whose fields the shop mounts, and B) that both allow the shop's origin. A script
// on the merchant's page may rewrite any iframe's src, mount its own iframes of the vault's field
// documents with any key and the shop's channel, post anything and reload frames; a card typed
// into A's frames must never be sealed into B, and a sealing frame of A refuses a sibling of B.
// Each refusal is the CardSealError `fields_key_mismatch`, and B's own events show no token.
// Starts its own vault and shop on 127.0.0.1.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { startShop } from '../../www/shop.mjs';
import { launchChromium } from '../support/chromium.mjs';
import { root, snippetTag, startVault } from '../support/servers.mjs';

const year = String((new Date().getUTCFullYear() + 3) % 100).padStart(2, '0');
const CARD = { number: '4000056655665556', expiry: `12${year}`, cvc: '739' };
const CHECKOUT = '/checkout?product=notebook&mode=fields';
const MISMATCH = 'fields_key_mismatch';

let vault;
let b;
let shop;
let browser;

before(async () => {
  const masterKey = randomBytes(32).toString('hex');
  vault = await startVault({ args: ['--snippet-dir', join(root, 'pkg/snippet')], env: { CARDSEAL_MASTER_KEY: masterKey } });
  // Account B, on the same vault, allowing the same origins as A.
  const created = JSON.parse(execFileSync(join(root, 'target/debug/cardseal-vault'), ['accounts', 'create', '--data-dir', vault.dataDir,
    '--name', 'other', '--allowed-origin', 'http://127.0.0.1:*', '--json'], { encoding: 'utf8', env: { ...process.env, CARDSEAL_MASTER_KEY: masterKey } }));
  b = { pk: created.publishable_key, sk: created.secret_key };
  shop = await startShop({ vaultUrl: vault.url, publishableKey: vault.pk, secretKey: vault.sk, snippet: snippetTag(vault) });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await shop?.close();
  await vault?.stop();
});

/** The tokens an account has made, from its own events (its secret key). */
async function tokensOf(sk) {
  const res = await fetch(`${vault.url}/v1/events?limit=100`, { headers: { Authorization: `Bearer ${sk}` } });
  assert.equal(res.status, 200);
  return (await res.json()).data.filter((e) => e.type === 'token.created').length;
}

async function checkout() {
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(shop.url + CHECKOUT);
  await page.waitForFunction(() => window.cardseal?.attachments?.length > 0 && !document.querySelector('button[type="submit"]').disabled, null, { timeout: 20_000 });
  return { page, problems };
}

const input = (page, selector, part = null) => page.frameLocator(selector).locator(part ? `input#cs-${part}` : 'input');

async function type(page, selector, text, part) {
  await input(page, selector, part).click();
  await page.keyboard.type(text);
}

/** Runs `change(arg)` in the page, then resolves once the iframe `selector` matches says `ready`. */
async function untilReady(page, selector, change, arg) {
  await page.evaluate((sel) => {
    window.__ready = new Promise((resolve) => {
      addEventListener('message', (e) => {
        const frame = document.querySelector(sel);
        if (frame && e.source === frame.contentWindow && e.data?.type === 'ready') resolve();
      });
    });
  }, selector);
  await page.evaluate(change, arg);
  await page.evaluate(() => window.__ready);
}

/** The page script of the attack: the iframe `selector` is loaded again with the key `to`. */
const rekey = ([selector, from, to]) => {
  const f = document.querySelector(selector);
  f.src = f.src.replace(`pk=${from}`, `pk=${to}`);
};

const tokenize = (page) => page.evaluate(() => window.cardseal.attachments[0].fields.tokenize().then(
  (t) => ({ token: t.id }), (e) => ({ code: e.code, type: e.type, isCardSealError: e instanceof window.cardseal.CardSealError })));

describe('hosted fields of two accounts on one vault (Chromium)', () => {
  it('a page script rewrites the number frame\'s pk to account B: the card typed into A\'s expiry and CVC is not sealed into B', async () => {
    const [aBefore, bBefore] = [await tokensOf(vault.sk), await tokensOf(b.sk)];
    const { page, problems } = await checkout();
    const number = 'iframe[data-cardseal-frame="number"]';
    await untilReady(page, number, rekey, [number, vault.pk, b.pk]);
    assert.match(await page.getAttribute(number, 'src'), new RegExp(`pk=${b.pk}#channel=`), 'the number frame is B\'s now, on the same channel');
    await type(page, number, CARD.number);
    await type(page, 'iframe[data-cardseal-frame="expiry"]', CARD.expiry);
    await type(page, 'iframe[data-cardseal-frame="cvc"]', CARD.cvc);
    assert.deepEqual(await tokenize(page), { code: MISMATCH, type: 'invalid_request_error', isCardSealError: true });
    assert.equal(await tokensOf(b.sk), bBefore, 'no token in account B');
    assert.equal(await tokensOf(vault.sk), aBefore, 'nor in account A');
    assert.deepEqual(problems, []);
    await page.close();
  });

  it('a page script mounts its own number frame of account B on the shop\'s channel and asks it to tokenize: it gets nothing', async () => {
    const bBefore = await tokensOf(b.sk);
    const { page } = await checkout();
    // The attacker's frame stands where the shop's number field was; the customer types into it.
    await untilReady(page, '#evil', ([from, to]) => {
      const real = document.querySelector('iframe[data-cardseal-frame="number"]');
      const evil = document.createElement('iframe');
      evil.id = 'evil';
      evil.src = real.src.replace(`pk=${from}`, `pk=${to}`);
      real.style.display = 'none';
      real.after(evil);
    }, [vault.pk, b.pk]);
    await type(page, '#evil', CARD.number);
    await type(page, 'iframe[data-cardseal-frame="expiry"]', CARD.expiry);
    await type(page, 'iframe[data-cardseal-frame="cvc"]', CARD.cvc);
    const result = await page.evaluate(() => new Promise((resolve) => {
      const evil = document.querySelector('#evil');
      const channel = new URLSearchParams(new URL(evil.src).hash.slice(1)).get('channel');
      addEventListener('message', (e) => { if (e.source === evil.contentWindow && e.data?.type === 'result') resolve(e.data); });
      evil.contentWindow.postMessage({ channel, type: 'tokenize', id: 7, kinds: ['number', 'expiry', 'cvc', 'name'] }, new URL(evil.src).origin);
    }));
    assert.equal(result.token, undefined, 'no token');
    assert.equal(result.error.code, MISMATCH);
    assert.equal(await tokensOf(b.sk), bBefore, 'no token in account B');
    await page.close();
  });

  it('a collector reads the asking frame\'s key from that frame\'s own document: a sealer of B is refused whatever its message says', async () => {
    const { page } = await checkout();
    const number = 'iframe[data-cardseal-frame="number"]';
    await untilReady(page, number, rekey, [number, vault.pk, b.pk]);
    await type(page, 'iframe[data-cardseal-frame="expiry"]', CARD.expiry);
    await type(page, 'iframe[data-cardseal-frame="cvc"]', CARD.cvc);
    // From inside B's document, past its own check: ask every sibling for its value, claiming A's key.
    const frame = page.frames().find((f) => f.url().includes(`pk=${b.pk}`));
    const answers = await frame.evaluate((pkA) => {
      const channel = new URLSearchParams(location.hash.slice(1)).get('channel');
      const asked = [];
      for (let i = 0; i < parent.length; i++) {
        const w = parent[i];
        if (w === window) continue;
        asked.push(new Promise((resolve) => {
          const { port1, port2 } = new MessageChannel();
          port1.onmessage = (e) => resolve(e.data);
          // Today's protocol answered on the window; a value there counts too.
          addEventListener('message', (e) => { if (e.source === w && e.data?.type === 'value') resolve(e.data); });
          w.postMessage({ type: 'collect', channel, nonce: 'n', pk: pkA }, location.origin, [port2]);
        }));
      }
      return Promise.all(asked);
    }, vault.pk);
    assert.equal(answers.length, 3, 'expiry, cvc and name were asked');
    assert.deepEqual(answers.map((a) => a.type), ['refused', 'refused', 'refused']);
    assert.ok(answers.every((a) => !('value' in a)), 'no value left an A frame');
    await page.close();
  });

  it('A\'s sealing frame refuses a sibling of B: the expiry frame reloaded with B\'s key', async () => {
    const [aBefore, bBefore] = [await tokensOf(vault.sk), await tokensOf(b.sk)];
    const { page } = await checkout();
    const expiry = 'iframe[data-cardseal-frame="expiry"]';
    await untilReady(page, expiry, rekey, [expiry, vault.pk, b.pk]);
    await type(page, 'iframe[data-cardseal-frame="number"]', CARD.number);
    await type(page, expiry, CARD.expiry);
    await type(page, 'iframe[data-cardseal-frame="cvc"]', CARD.cvc);
    assert.deepEqual(await tokenize(page), { code: MISMATCH, type: 'invalid_request_error', isCardSealError: true });
    assert.equal(await tokensOf(vault.sk), aBefore, 'no token in account A');
    assert.equal(await tokensOf(b.sk), bBefore, 'nor in account B');
    await page.close();
  });

  it('the card frame: it answers no sealer of B, refuses to seal beside a frame of B, and seals into A once that frame is gone', async () => {
    const [aBefore, bBefore] = [await tokensOf(vault.sk), await tokensOf(b.sk)];
    const { page } = await checkout();
    await untilReady(page, '#all iframe', ([vaultUrl, publishableKey]) => {
      const host = document.createElement('div');
      host.id = 'all';
      document.querySelector('main').append(host);
      window.all = window.cardseal.fields({ vaultUrl, publishableKey });
      window.all.create('card').mount(host);
    }, [vault.url, vault.pk]);
    await type(page, '#all iframe', CARD.number, 'number');
    await type(page, '#all iframe', CARD.expiry, 'expiry');
    await type(page, '#all iframe', CARD.cvc, 'cvc');
    // A number frame of B on the card's channel, asked to tokenize what the card frame holds.
    await untilReady(page, '#evil', ([from, to]) => {
      const card = document.querySelector('#all iframe');
      const evil = document.createElement('iframe');
      evil.id = 'evil';
      evil.src = card.src.replace('/card.html', '/number.html').replace(`pk=${from}`, `pk=${to}`);
      document.querySelector('#all').append(evil);
    }, [vault.pk, b.pk]);
    await type(page, '#evil', CARD.number);
    const stolen = await page.evaluate(() => new Promise((resolve) => {
      const evil = document.querySelector('#evil');
      const channel = new URLSearchParams(new URL(evil.src).hash.slice(1)).get('channel');
      addEventListener('message', (e) => { if (e.source === evil.contentWindow && e.data?.type === 'result') resolve(e.data); });
      evil.contentWindow.postMessage({ channel, type: 'tokenize', id: 9, kinds: ['card', 'number', 'expiry', 'cvc'] }, new URL(evil.src).origin);
    }));
    assert.equal(stolen.token, undefined);
    assert.equal(stolen.error.code, MISMATCH);
    const all = () => page.evaluate(() => window.all.tokenize().then((t) => ({ token: t.id, last4: t.card.last4 }), (e) => ({ code: e.code })));
    assert.deepEqual(await all(), { code: MISMATCH }, 'the card frame refuses to seal beside a frame of B');
    await page.evaluate(() => document.querySelector('#evil').remove());
    const token = await all();
    assert.match(token.token, /^tok_/);
    assert.equal(token.last4, '5556');
    assert.equal(await tokensOf(vault.sk), aBefore + 1, 'the one token is A\'s');
    assert.equal(await tokensOf(b.sk), bBefore, 'none is B\'s');
    await page.close();
  });

  it('the fields of A and of B side by side on one page (two instances) each seal into their own account', async () => {
    const [aBefore, bBefore] = [await tokensOf(vault.sk), await tokensOf(b.sk)];
    const { page, problems } = await checkout();
    await page.evaluate(([vaultUrl, publishableKey]) => {
      const host = document.createElement('div');
      host.id = 'b';
      host.innerHTML = '<div id="b-number"></div><div id="b-expiry"></div><div id="b-cvc"></div>';
      document.querySelector('main').append(host);
      window.bFields = window.cardseal.fields({ vaultUrl, publishableKey });
      for (const kind of ['number', 'expiry', 'cvc']) window.bFields.create(kind).mount(`#b-${kind}`);
    }, [vault.url, b.pk]);
    await page.evaluate(() => window.bFields.ready());
    await type(page, '#b-number iframe', '4242424242424242');
    await type(page, '#b-expiry iframe', CARD.expiry);
    await type(page, '#b-cvc iframe', '314');
    const tokenB = await page.evaluate(() => window.bFields.tokenize().then((t) => t.card.last4));
    assert.equal(tokenB, '4242');
    // And the shop's own form (A) pays as always.
    await type(page, 'form iframe[data-cardseal-frame="number"]', CARD.number);
    await type(page, 'form iframe[data-cardseal-frame="expiry"]', CARD.expiry);
    await type(page, 'form iframe[data-cardseal-frame="cvc"]', CARD.cvc);
    await Promise.all([page.waitForURL(/\/receipt\//), page.click('button[type="submit"]')]);
    assert.match(await page.textContent('[data-receipt-card]'), /•••• 5556/);
    assert.equal(await tokensOf(vault.sk), aBefore + 1);
    assert.equal(await tokensOf(b.sk), bBefore + 1);
    assert.deepEqual(problems, []);
    await page.close();
  });
});
