// The main payment flow in headless Firefox, driven through geckodriver's WebDriver API
// (playwright's Firefox needs its own browser build, which cannot be downloaded here).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, it } from 'node:test';

import { startShop } from '../../www/shop.mjs';
import { join } from 'node:path';

import { freePort, root, startVault } from '../support/servers.mjs';

const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';
const year = String((new Date().getUTCFullYear() + 3) % 100).padStart(2, '0');

let vault;
let shop;
let driver;
let base;
let session;

async function wd(method, path, body) {
  const res = await fetch(`${base}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body && JSON.stringify(body) });
  const json = await res.json();
  if (!res.ok) throw new Error(`WebDriver ${method} ${path}: ${json.value?.message ?? res.status}`);
  return json.value;
}

const s = (path) => `/session/${session}${path}`;
const find = async (css) => (await wd('POST', s('/element'), { using: 'css selector', value: css }))[ELEMENT];
const exec = (script, args = []) => wd('POST', s('/execute/sync'), { script, args });

async function until(what, fn, ms = 20_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

before(async () => {
  // The vault serves the hosted fields' documents from the build's snippet directory.
  vault = await startVault({ args: ['--snippet-dir', join(root, 'pkg/snippet')] });
  shop = await startShop({ vaultUrl: vault.url, publishableKey: vault.pk, secretKey: vault.sk });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  driver = spawn('geckodriver', ['--port', String(port), '--host', '127.0.0.1'], { stdio: 'ignore' });
  await until('geckodriver', async () => fetch(`${base}/status`).then((r) => r.ok, () => false));
  const created = await wd('POST', '/session', {
    capabilities: { alwaysMatch: { browserName: 'firefox', 'moz:firefoxOptions': { args: ['-headless'], prefs: {
      'network.captive-portal-service.enabled': false, 'app.update.enabled': false, 'network.connectivity-service.enabled': false,
    } } } },
  });
  session = created.sessionId;
});

after(async () => {
  if (session) await wd('DELETE', s('')).catch(() => {});
  driver?.kill();
  await shop?.close();
  await vault?.stop();
});

it('Firefox: a customer pays, the receipt shows the last4, the shop never saw the card', async () => {
  const before = shop.requests.length;
  await wd('POST', s('/url'), { url: `${shop.url}/checkout?product=notebook` });
  await until('the snippet to attach', () => exec('return Boolean(window.cardseal && window.cardseal.instance)'));
  await wd('POST', s(`/element/${await find('[data-cardseal="number"]')}/value`), { text: '4242424242424242' });
  await wd('POST', s(`/element/${await find('[data-cardseal="expiry"]')}/value`), { text: `12${year}` });
  await wd('POST', s(`/element/${await find('[data-cardseal="cvc"]')}/value`), { text: '123' });
  assert.equal(await exec('return document.querySelector(\'[data-cardseal="number"]\').value'), '4242 4242 4242 4242');
  await wd('POST', s(`/element/${await find('button[type="submit"]')}/click`), {});
  await until('the receipt', async () => /\/receipt\//.test(await wd('GET', s('/url'))));
  const text = await exec('return document.querySelector(".receipt").textContent');
  assert.match(text, /Payment successful/);
  assert.match(text, /Visa •••• 4242/);
  const seen = shop.requests.slice(before).map((r) => `${r.url} ${JSON.stringify(r.headers)} ${r.body}`).join('\n');
  assert.match(seen, /cardseal_token=tok_/);
  for (const needle of ['4242424242424242', '4242 4242 4242 4242', '424242', 'cvc=123']) {
    assert.ok(!seen.includes(needle) && !decodeURIComponent(seen).includes(needle), `shop saw ${needle.length} card chars`);
  }
});

it('Firefox: a customer pays through hosted fields; the page cannot read the frames and never held the card', async () => {
  const before = shop.requests.length;
  await wd('POST', s('/url'), { url: `${shop.url}/checkout?product=notebook&mode=fields` });
  await until('the hosted fields', () => exec('return Boolean(window.cardseal && window.cardseal.attachments && window.cardseal.attachments.length && !document.querySelector(\'button[type="submit"]\').disabled)'));
  const inFrame = async (kind, fn) => {
    await wd('POST', s('/frame'), { id: { [ELEMENT]: await find(`iframe[data-cardseal-frame="${kind}"]`) } });
    try {
      return await fn();
    } finally {
      await wd('POST', s('/frame/parent'), {});
    }
  };
  for (const [kind, text] of [['number', '4000056655665556'], ['expiry', `12${year}`], ['cvc', '739']]) {
    await inFrame(kind, async () => wd('POST', s(`/element/${await find('input')}/value`), { text }));
  }
  const number = await inFrame('number', () => exec(`const i = document.querySelector('input');
    return { value: i.value, brand: document.querySelector('.brand').textContent, radius: getComputedStyle(i).borderTopLeftRadius, autocomplete: i.autocomplete }`));
  // Formatted, the brand shown, the frame's own stylesheet applied, autofill named.
  assert.deepEqual(number, { value: '4000 0566 5566 5556', brand: 'Visa', radius: '6px', autocomplete: 'cc-number' });
  assert.equal(await exec('return document.querySelector(\'iframe[data-cardseal-frame="number"]\').contentDocument'), null);
  await wd('POST', s(`/element/${await find('button[type="submit"]')}/click`), {});
  await until('the receipt', async () => /\/receipt\//.test(await wd('GET', s('/url'))));
  assert.match(await exec('return document.querySelector(".receipt").textContent'), /Visa •••• 5556/);
  const seen = shop.requests.slice(before).map((r) => `${r.url} ${JSON.stringify(r.headers)} ${r.body}`).join('\n');
  assert.match(seen, /cardseal_token=tok_/);
  for (const needle of ['4000056655665556', '4000 0566 5566 5556', '665566', 'cvc=739']) {
    assert.ok(!seen.includes(needle) && !decodeURIComponent(seen).includes(needle), `shop saw ${needle.length} card chars`);
  }
});
