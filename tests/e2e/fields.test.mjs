// Hosted fields end to end, in headless Chromium (playwright-core): the card inputs are iframes
// of the vault's origin (DESIGN.md, "Hosted fields"). A customer pays; a skimmer on the
// merchant's page gets nothing; a page of an origin the account does not allow cannot frame the
// fields; forged messages are ignored; a hostile style does nothing; the keyboard and screen
// readers work; an invalid card is refused inside the frames and sends nothing.
// Starts its own vaults, shops and a page of another origin, all on 127.0.0.1.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { startShop } from '../../www/shop.mjs';
import { launchChromium } from '../support/chromium.mjs';
import { root, snippetTag, startVault } from '../support/servers.mjs';

const year = String((new Date().getUTCFullYear() + 3) % 100).padStart(2, '0');
// A Visa test card whose middle digits appear nowhere else, and a CVC that is not "123".
const CARD = { number: '4000056655665556', expiry: `12${year}`, cvc: '739' };
const CHECKOUT = '/checkout?product=notebook&mode=fields';

let vault;
let shop;
let browser;
let evil;

before(async () => {
  vault = await startVault({ args: ['--snippet-dir', join(root, 'pkg/snippet')] });
  const snippet = snippetTag(vault);
  shop = await startShop({ vaultUrl: vault.url, publishableKey: vault.pk, secretKey: vault.sk, snippet });
  // A page of another origin, for forged messages: it posts what its URL's hash says.
  evil = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>evil</title><script>
      const got = [];
      addEventListener('message', (e) => got.push(JSON.stringify(e.data)));
      const { channel, frames: n } = JSON.parse(decodeURIComponent(location.hash.slice(1)));
      for (let i = 0; i < n; i++) {
        opener.frames[i].postMessage({ channel, type: 'tokenize', id: 1, kinds: ['number', 'expiry', 'cvc'] }, '*');
        opener.frames[i].postMessage({ channel, type: 'tokenize-cvc', id: 2, kinds: ['cvc'] }, '*');
        opener.frames[i].postMessage({ channel, type: 'collect', nonce: 'evil' }, '*');
      }
      opener.postMessage({ channel, type: 'result', id: 1, token: { id: 'tok_forged' } }, '*');
      window.evilDone = got;
    </script>`);
  });
  await new Promise((r) => evil.listen(0, '127.0.0.1', r));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await shop?.close();
  await vault?.stop();
  await new Promise((r) => (evil ? evil.close(r) : r()));
});

async function openPage(url, prepare = async () => {}) {
  const page = await browser.newPage();
  await prepare(page);
  const sent = [];
  const problems = [];
  page.on('request', (r) => sent.push({ url: r.url(), method: r.method(), body: r.postData() ?? '', frame: r.frame().url() }));
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
  await page.goto(url);
  return { page, sent, problems };
}

async function fieldsReady(page) {
  await page.waitForFunction(() => window.cardseal && window.cardseal.attachments && window.cardseal.attachments.length > 0
    && !document.querySelector('button[type="submit"]').disabled, null, { timeout: 20_000 });
}

const field = (page, kind) => page.frameLocator(`iframe[data-cardseal-frame="${kind}"]`).locator(kind === 'card' ? 'input#cs-number' : 'input');
const frameOf = (page, kind) => page.frames().find((f) => f.url().includes(`/fields/`) && f.url().includes(`/${kind}.html`));

async function typeCard(page, { number, expiry, cvc }) {
  await field(page, 'number').click();
  await page.keyboard.type(number);
  await field(page, 'expiry').click();
  await page.keyboard.type(expiry);
  await field(page, 'cvc').click();
  await page.keyboard.type(cvc);
}

async function tokensCreated(v = vault) {
  const res = await fetch(`${v.url}/v1/events?limit=100`, { headers: { Authorization: `Bearer ${v.sk}` } });
  return (await res.json()).data.filter((e) => e.type === 'token.created').length;
}

/** Every way the card could show: digits, as formatted, the middle digits, the CVC alone. */
function assertNoCard(texts, card = CARD) {
  const digits = card.number;
  const spaced = digits.replace(/(\d{4})(?=\d)/g, '$1 ');
  const middle = digits.slice(6, -4);
  const cvc = new RegExp(`(^|\\D)${card.cvc}(\\D|$)`);
  for (const t of texts) {
    for (const needle of [digits, spaced, middle]) assert.ok(!t.includes(needle), `card digits in: ${t.slice(0, 120)}`);
    assert.ok(!cvc.test(t), `the CVC in: ${t.slice(0, 120)}`);
  }
}

describe('hosted fields (Chromium)', () => {
  it('a customer pays through hosted fields: the receipt shows the last4, the shop and the page never held the card', async () => {
    const before = shop.requests.length;
    const { page, sent, problems } = await openPage(shop.url + CHECKOUT);
    await fieldsReady(page);
    // Each iframe is the vault's, versioned, titled after its field.
    const frames = await page.$$eval('iframe[data-cardseal-frame]', (xs) => xs.map((x) => ({ kind: x.dataset.cardsealFrame, title: x.title, src: x.src })));
    assert.deepEqual(frames.map((f) => [f.kind, f.title]), [['number', 'Card number'], ['expiry', 'Expiry date'], ['cvc', 'Security code'], ['name', 'Name on card']]);
    for (const f of frames) assert.match(f.src, new RegExp(`^${vault.url}/fields/\\d+\\.\\d+\\.\\d+-[0-9a-f]{8}/${f.kind}\\.html\\?pk=pk_`));
    await typeCard(page, CARD);
    assert.equal(await field(page, 'number').inputValue(), '4000 0566 5566 5556');
    assert.equal(await field(page, 'expiry').inputValue(), `12 / ${year}`);
    assert.equal(await page.frameLocator('iframe[data-cardseal-frame="number"]').locator('.brand').textContent(), 'Visa');
    // Autofill works inside the frames.
    assert.equal(await field(page, 'number').getAttribute('autocomplete'), 'cc-number');
    assert.equal(await field(page, 'expiry').getAttribute('autocomplete'), 'cc-exp');
    assert.equal(await field(page, 'cvc').getAttribute('autocomplete'), 'cc-csc');
    if (process.env.CARDSEAL_SCREENSHOTS) {
      mkdirSync(join(root, 'docs'), { recursive: true });
      await page.setViewportSize({ width: 1100, height: 760 });
      await page.screenshot({ path: join(root, 'docs/checkout-fields.png') });
    }
    await Promise.all([page.waitForURL(/\/receipt\//), page.click('button[type="submit"]')]);
    assert.match(await page.textContent('[data-receipt-card]'), /Visa •••• 5556/);
    const shopSaw = shop.requests.slice(before);
    const pay = shopSaw.find((r) => r.method === 'POST' && r.url === '/pay');
    assert.match(pay.body, /cardseal_token=tok_[A-Za-z0-9]{22}/);
    assertNoCard(shopSaw.map((r) => `${r.url}\n${JSON.stringify(r.headers)}\n${r.body}\n${decodeURIComponent(r.body.replace(/\+/g, ' '))}`));
    // The card went to the vault sealed, from the number frame; the merchant page loaded no wasm.
    const posts = sent.filter((r) => r.url === `${vault.url}/v1/tokens` && r.method === 'POST');
    assert.equal(posts.length, 1);
    assert.match(posts[0].frame, /\/fields\/.*\/number\.html/);
    assert.match(JSON.parse(posts[0].body).card, /^[\w-]+\.[\w-]+\.[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.deepEqual(sent.filter((r) => r.url.endsWith('.wasm') && !r.frame.includes('/fields/')), []);
    assert.deepEqual(problems, []);
    await page.close();
  });

  it('a skimmer on the merchant page gets nothing: no number, middle digits or CVC in any event, message, DOM or frame', async () => {
    const records = [];
    const { page } = await openPage(shop.url + CHECKOUT, async (p) => {
      await p.exposeBinding('__skim', (_source, kind, data) => { records.push({ kind, data: String(data) }); });
      await p.addInitScript(() => {
        // The merchant's page only: a skimmer there cannot run in the vault's frames.
        if (window !== window.top) return;
        const send = (kind, data) => { try { window.__skim(kind, typeof data === 'string' ? data : JSON.stringify(data)); } catch { /* closing */ } };
        const str = (v) => { try { return JSON.stringify(v); } catch { return String(v); } };
        const types = ['input', 'change', 'keydown', 'keyup', 'keypress', 'beforeinput', 'paste', 'focus', 'blur', 'focusin',
          'focusout', 'click', 'submit', 'message', 'messageerror', 'pointerdown', 'compositionend', 'cardseal:change',
          'cardseal:brand', 'cardseal:token', 'cardseal:error', 'cardseal:ready'];
        for (const t of types) {
          window.addEventListener(t, (e) => send(`event:${t}`, {
            key: e.key, data: e.data, value: e.target && e.target.value, detail: str(e.detail), message: str(e.data), origin: e.origin,
          }), true);
        }
        const post = window.postMessage;
        window.postMessage = function (...args) { send('postMessage', str(args[0])); return post.apply(this, args); };
        const portPost = MessagePort.prototype.postMessage;
        MessagePort.prototype.postMessage = function (...args) { send('port', str(args[0])); return portPost.apply(this, args); };
        let last = '';
        setInterval(() => {
          if (!document.documentElement) return;
          const values = [...document.querySelectorAll('input, textarea, select')].map((i) => `${i.name}=${i.value}`).join('&');
          const dom = document.documentElement.outerHTML + values;
          if (dom !== last) send('dom', (last = dom));
          for (let i = 0; i < window.frames.length; i++) {
            try { send('frame', window.frames[i].document.documentElement.outerHTML); } catch (e) { send('frame-denied', e.name); }
          }
          for (const f of document.querySelectorAll('iframe')) {
            try { send('contentDocument', f.contentDocument === null ? 'null' : `READ ${f.contentDocument.documentElement.outerHTML}`); } catch (e) { send('contentDocument', `threw ${e.name}`); }
          }
        }, 50);
      });
    });
    await fieldsReady(page);
    await typeCard(page, CARD);
    await Promise.all([page.waitForURL(/\/receipt\//), page.click('button[type="submit"]')]);
    assert.match(await page.textContent('[data-receipt-card]'), /•••• 5556/);
    // The skimmer was there and listening: it saw the fields' messages, the DOM and the frames.
    assert.ok(records.some((r) => r.kind === 'event:message' && r.data.includes('"change"')), 'the skimmer saw the change messages');
    assert.ok(records.some((r) => r.kind === 'event:message' && r.data.includes('tok_')), 'the skimmer saw the token arrive');
    assert.ok(records.some((r) => r.kind === 'dom'));
    // Only the empty about:blank an iframe holds for an instant before the vault's document
    // arrives is readable; the vault's document never is.
    const BLANK = '<html><head></head><body></body></html>';
    const reads = records.filter((r) => r.kind === 'contentDocument');
    assert.ok(reads.some((r) => r.data === 'null'), 'contentDocument is null once the field is there');
    for (const r of reads) assert.ok(['null', `READ ${BLANK}`].includes(r.data) || r.data.startsWith('threw'), `contentDocument gave ${r.data.slice(0, 60)}`);
    assert.ok(records.some((r) => r.kind === 'frame-denied'));
    for (const r of records.filter((x) => x.kind === 'frame')) assert.equal(r.data, BLANK, 'no field document was readable');
    assertNoCard(records.map((r) => r.data));
    // Before the token, no message carried a length or digits: only flags, a brand and codes.
    for (const r of records.filter((x) => x.kind === 'event:message')) {
      const m = JSON.parse(JSON.parse(r.data).message ?? 'null');
      if (!m || m.type === 'result') continue;
      assert.deepEqual(Object.keys(m).filter((k) => !['type', 'channel', 'complete', 'empty', 'brand', 'error', 'height'].includes(k)), [], JSON.stringify(m));
    }
    await page.close();
  });

  it('a page of an origin the account does not allow cannot frame the fields (frame-ancestors)', async () => {
    const other = await startVault({ origins: ['http://localhost:*'], args: ['--snippet-dir', join(root, 'pkg/snippet')] });
    const refusing = await startShop({ vaultUrl: other.url, publishableKey: other.pk, secretKey: other.sk, snippetData: { 'timeout-ms': 1500 } });
    try {
      // From 127.0.0.1, which the account does not allow: the frames never render.
      const { page } = await openPage(refusing.url + CHECKOUT);
      await page.waitForFunction(() => document.querySelector('form[data-cardseal-unavailable]'), null, { timeout: 20_000 });
      assert.equal(await page.isDisabled('button[type="submit"]'), true);
      const src = await page.getAttribute('iframe[data-cardseal-frame="number"]', 'src');
      const res = await fetch(src);
      assert.match(res.headers.get('content-security-policy'), /frame-ancestors http:\/\/localhost:\*$/);
      for (const f of page.frames().filter((x) => x !== page.mainFrame())) {
        const rendered = await f.evaluate(() => Boolean(document.querySelector('input'))).catch(() => false);
        assert.equal(rendered, false, `a refused frame rendered: ${f.url()}`);
      }
      await page.close();
      // The same page from localhost, which it allows, gets working fields.
      const allowed = await openPage(refusing.url.replace('127.0.0.1', 'localhost') + CHECKOUT);
      await fieldsReady(allowed.page);
      await field(allowed.page, 'number').click();
      await allowed.page.keyboard.type('4242');
      assert.equal(await field(allowed.page, 'number').inputValue(), '4242');
      await allowed.page.close();
    } finally {
      await refusing.close();
      await other.stop();
    }
  });

  it('forged messages are ignored: a parent asking for values, and a tokenize or a token from another origin', async () => {
    const { page } = await openPage(shop.url + CHECKOUT);
    await fieldsReady(page);
    await typeCard(page, CARD);
    const tokensBefore = await tokensCreated();
    const channel = await page.$eval('iframe[data-cardseal-frame="number"]', (f) => new URLSearchParams(new URL(f.src).hash.slice(1)).get('channel'));
    // The parent (any script on it) asks each frame for its value, as a sibling would.
    const parentGot = await page.evaluate(async (ch) => {
      const got = [];
      addEventListener('message', (e) => got.push(e.data));
      for (let i = 0; i < frames.length; i++) {
        frames[i].postMessage({ channel: ch, type: 'collect', nonce: 'n' }, '*');
        frames[i].postMessage({ channel: ch, type: 'value', nonce: 'n', kind: 'number', value: '4111111111111111' }, '*');
      }
      // Then a real request, answered after the forged ones were handled (one sender, in order).
      const number = document.querySelector('iframe[data-cardseal-frame="number"]');
      const focused = new Promise((r) => addEventListener('message', (e) => e.source === number.contentWindow && e.data.type === 'focus' && r()));
      document.querySelector('a').focus();
      window.cardseal.attachments[0].fields.getElement('number').focus();
      await focused;
      return got;
    }, channel);
    assert.deepEqual(parentGot.filter((m) => m.type === 'value' || 'value' in m), [], 'no frame answered the parent with a value');
    // Another origin posts a tokenize to every frame and a forged token to the parent.
    const frameCount = await page.evaluate(() => frames.length);
    const [popup] = await Promise.all([
      page.waitForEvent('popup'),
      page.evaluate(([url]) => { window.open(url); }, [`${`http://127.0.0.1:${evil.address().port}`}/#${encodeURIComponent(JSON.stringify({ channel, frames: frameCount }))}`]),
    ]);
    await popup.waitForFunction(() => Array.isArray(window.evilDone));
    // The real tokenize still makes the one and only token, with the real card.
    const token = await page.evaluate(() => window.cardseal.attachments[0].fields.tokenize());
    assert.match(token.id, /^tok_[A-Za-z0-9]{22}$/);
    assert.equal(token.card.last4, '5556');
    assert.deepEqual(await popup.evaluate(() => window.evilDone), [], 'the other origin got no answer');
    assert.equal(await tokensCreated(), tokensBefore + 1);
    await popup.close();
    await page.close();
  });

  it('a hostile style does nothing: url(), @import, unknown properties and selectors are dropped with a warning', async () => {
    const warnings = [];
    const { page, sent } = await openPage(shop.url + CHECKOUT, async (p) => {
      p.on('console', (m) => m.type() === 'warning' && warnings.push(m.text()));
    });
    await fieldsReady(page);
    await page.evaluate(([vaultUrl, publishableKey]) => {
      const host = document.createElement('div');
      host.id = 'styled';
      document.querySelector('main').append(host);
      const f = window.cardseal.fields({
        vaultUrl, publishableKey,
        style: {
          base: {
            color: 'rgb(1, 2, 3)', background: 'url(https://evil.example/a.png)', fontFamily: 'x; background-image: url(https://evil.example/b.png)',
            letterSpacing: 'expression(alert(1))', '@import': 'url(https://evil.example/c.css)', behavior: 'url(#default#x)',
            '::placeholder': { color: 'rgb(4, 5, 6)', backgroundImage: 'url(https://evil.example/d.png)' },
            ':visited': { color: 'rgb(9, 9, 9)' },
          },
          '@import url(https://evil.example/e.css);': {},
        },
      });
      window.styled = f.create('number').mount(host);
    }, [vault.url, vault.pk]);
    // A merchant script that skips the page-side check and writes the hash itself: the frame checks again.
    await page.evaluate(([vaultUrl, publishableKey]) => {
      const src = document.querySelector('#styled iframe').src;
      const hash = new URLSearchParams(new URL(src).hash.slice(1));
      hash.set('style', JSON.stringify({ base: { color: 'rgb(7, 8, 9)', backgroundImage: 'url(https://evil.example/f.png)', fontFamily: 'y;background:url(https://evil.example/g.png)' } }));
      const raw = document.createElement('iframe');
      raw.id = 'raw';
      raw.src = `${src.split('#')[0]}#${hash}`;
      document.querySelector('main').append(raw);
      return [vaultUrl, publishableKey];
    }, [vault.url, vault.pk]);
    const styled = page.frameLocator('#styled iframe').locator('input');
    await styled.waitFor();
    await page.waitForFunction(() => document.querySelector('#raw').contentWindow !== null);
    const raw = page.frameLocator('#raw').locator('input');
    await raw.waitFor();
    const look = (loc) => loc.evaluate((i) => {
      const s = getComputedStyle(i);
      return { color: s.color, background: s.backgroundImage, font: s.fontFamily, spacing: s.letterSpacing, placeholder: getComputedStyle(i, '::placeholder').color };
    });
    const a = await look(styled);
    assert.equal(a.color, 'rgb(1, 2, 3)', 'the allowed property applies');
    assert.equal(a.placeholder, 'rgb(4, 5, 6)');
    assert.equal(a.background, 'none');
    assert.doesNotMatch(a.font, /evil|url/);
    assert.equal(a.spacing, 'normal');
    const b = await look(raw);
    assert.equal(b.color, 'rgb(7, 8, 9)');
    assert.equal(b.background, 'none');
    assert.doesNotMatch(b.font, /evil|url/);
    assert.deepEqual(sent.filter((r) => r.url.includes('evil.example')), [], 'nothing was fetched from the style');
    for (const what of ['base.background', 'base.fontFamily', 'base.letterSpacing', 'base.@import', 'base.behavior', 'base::placeholder.backgroundImage', 'base.:visited', 'style.@import']) {
      assert.ok(warnings.some((w) => w.includes(what)), `a warning names ${what}: ${warnings.join(' | ')}`);
    }
    await page.close();
  });

  it('keyboard only: tab into each iframe and out again, errors are announced, Enter pays', async () => {
    const { page } = await openPage(shop.url + CHECKOUT);
    await fieldsReady(page);
    const active = (kind) => frameOf(page, kind).evaluate(() => (document.hasFocus() ? document.activeElement.id : null));
    // From the merchant's last link before the form (the site's navigation) into the first frame.
    await page.focus('header.site nav a[href="/validate.html"]');
    await page.keyboard.press('Tab');
    assert.equal(await active('number'), 'cs-number');
    await page.keyboard.type('4242424242424241');
    await page.keyboard.press('Tab');
    assert.equal(await active('expiry'), 'cs-expiry');
    // The number's error, inside its frame: text, aria-invalid, aria-describedby, a live region.
    const number = frameOf(page, 'number');
    await number.waitForSelector('input[aria-invalid="true"]');
    const a11y = await number.evaluate(() => {
      const input = document.querySelector('input');
      const err = document.getElementById(input.getAttribute('aria-describedby'));
      return { text: err.textContent, live: err.getAttribute('aria-live'), label: input.labels[0].textContent };
    });
    assert.deepEqual(a11y, { text: 'Your card number is invalid.', live: 'polite', label: 'Card number' });
    await page.keyboard.type(`12${year}`);
    await page.keyboard.press('Tab');
    assert.equal(await active('cvc'), 'cs-cvc');
    await page.keyboard.type(CARD.cvc);
    await page.keyboard.press('Tab');
    assert.equal(await active('name'), 'cs-name');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.name), 'save_card', 'out of the frames, to the merchant\'s checkbox');
    // Back into the number frame to fix the number, then Enter.
    for (let i = 0; i < 4; i++) await page.keyboard.press('Shift+Tab');
    assert.equal(await active('number'), 'cs-number');
    await page.keyboard.press('ControlOrMeta+a');
    await page.keyboard.type('4242424242424242');
    await number.waitForSelector('input:not([aria-invalid])');
    await Promise.all([page.waitForURL(/\/receipt\//), page.keyboard.press('Enter')]);
    assert.match(await page.textContent('[data-receipt-card]'), /Visa •••• 4242/);
    await page.close();
  });

  it('tokenize with an invalid or incomplete card rejects with the field\'s code and sends nothing', async () => {
    const { page, sent } = await openPage(shop.url + CHECKOUT);
    await fieldsReady(page);
    const attempt = () => page.evaluate(() => window.cardseal.attachments[0].fields.tokenize().then(
      () => ({ ok: true }), (e) => ({ name: e.name, code: e.code, type: e.type, param: e.param, isCardSealError: e instanceof window.cardseal.CardSealError })));
    await field(page, 'number').click();
    await page.keyboard.type('4242');
    assert.deepEqual(await attempt(), { name: 'CardSealError', code: 'incomplete_number', type: 'validation_error', param: 'number', isCardSealError: true });
    await page.keyboard.type('424242424241');
    assert.deepEqual((await attempt()).code, 'invalid_number');
    await page.keyboard.press('Backspace');
    await page.keyboard.type('2');
    await field(page, 'expiry').click();
    await page.keyboard.type('0120');
    await field(page, 'cvc').click();
    await page.keyboard.type('739');
    const past = await attempt();
    assert.deepEqual([past.code, past.param], ['invalid_expiry_year_past', 'expiry']);
    // The error shows inside the expiry frame, as the form's submit would show it.
    assert.equal(await field(page, 'expiry').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.frameLocator('iframe[data-cardseal-frame="expiry"]').locator('.error').textContent(), "Your card's expiration date is in the past.");
    assert.equal(sent.filter((r) => r.method === 'POST').length, 0, 'nothing was posted anywhere');
    // A CVC alone: tokenizeCvc().
    const cvc = await page.evaluate(() => window.cardseal.attachments[0].fields.tokenizeCvc());
    assert.equal(cvc.type, 'cvc');
    await page.close();
  });
});
