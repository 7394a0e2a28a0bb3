// The snippet's start-up, in headless Chromium: the wasm and the keys are fetched side by side
// and each once; the README's preload of the wasm is taken over (one request, no warning) and
// its hash still checked.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { startShop } from '../../www/shop.mjs';
import { launchChromium } from '../support/chromium.mjs';
import { root, snippetTag, startVault } from '../support/servers.mjs';

let vault;
let shop;
let preloadShop;
let browser;

before(async () => {
  vault = await startVault({ args: ['--snippet-dir', join(root, 'pkg/snippet')] });
  const snippet = snippetTag(vault);
  shop = await startShop({ vaultUrl: vault.url, publishableKey: vault.pk, secretKey: vault.sk, snippet });
  preloadShop = await startShop({ vaultUrl: vault.url, publishableKey: vault.pk, secretKey: vault.sk, snippet, preloadWasm: true });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await shop?.close();
  await preloadShop?.close();
  await vault?.stop();
});

async function open(on, prepare = async () => {}) {
  const page = await browser.newPage();
  await prepare(page);
  const sent = [];
  const console = [];
  page.on('request', (r) => sent.push(new URL(r.url()).pathname));
  page.on('console', (m) => console.push(`${m.type()}: ${m.text()}`));
  await page.goto(`${on.url}/checkout?product=notebook`);
  return { page, sent, console };
}

const count = (sent, suffix) => sent.filter((p) => p.endsWith(suffix)).length;
const attached = (page) => page.waitForFunction(() => window.cardseal && window.cardseal.instance, null, { timeout: 20_000 });

describe('the snippet starts up', () => {
  it('fetches the wasm and the keys side by side, each once, and leaves a mark for each step', async () => {
    const { page, sent, console } = await open(shop);
    await attached(page);
    const t = await page.evaluate(() => ({
      marks: Object.fromEntries(performance.getEntriesByType('mark').filter((m) => m.name.startsWith('cardseal:')).map((m) => [m.name.slice(9), m.startTime])),
      keys: performance.getEntriesByType('resource').find((e) => e.name.endsWith('/v1/encryption_keys')).startTime,
    }));
    for (const step of ['script', 'dom', 'wasm-compiled', 'wasm-ready', 'keys', 'ready']) assert.equal(typeof t.marks[step], 'number', step);
    assert.ok(t.keys < t.marks['wasm-compiled'], `the keys were asked for before the wasm was compiled (${JSON.stringify(t)})`);
    assert.ok(t.marks.script <= t.marks['wasm-compiled'] && t.marks['wasm-compiled'] <= t.marks['wasm-ready'] && t.marks['wasm-ready'] <= t.marks.ready);
    assert.ok(t.marks.keys <= t.marks.ready && t.marks.dom <= t.marks.ready);
    // The page asking for the wasm again gets the one it has.
    await page.evaluate(() => window.cardseal.ready());
    assert.equal(count(sent, '/cardseal_bg.wasm'), 1);
    assert.equal(count(sent, '/v1/encryption_keys'), 1);
    assert.deepEqual(console.filter((m) => !m.startsWith('log')), []);
    await page.close();
  });

  it('takes the preloaded wasm over: one request, no warning', async () => {
    const { page, sent, console } = await open(preloadShop);
    await attached(page);
    // Chromium warns of an unused preload a few seconds after `load`.
    await page.waitForTimeout(3500);
    assert.equal(count(sent, '/cardseal_bg.wasm'), 1);
    assert.deepEqual(console.filter((m) => !m.startsWith('log')), []);
    await page.close();
  });

  it('still checks the hash of a preloaded wasm: a changed one is refused', async () => {
    const wasm = Buffer.from(readFileSync(join(root, 'pkg/snippet/cardseal_bg.wasm')));
    wasm[wasm.length >> 1] ^= 0x01;
    const { page } = await open(preloadShop, (p) => p.route('**/cardseal_bg.wasm', (route) => route.fulfill({
      status: 200, contentType: 'application/wasm', body: wasm, headers: { 'access-control-allow-origin': '*' },
    })));
    await page.waitForSelector('form[data-cardseal-unavailable="wasm"]');
    assert.equal(await page.evaluate(() => Boolean(window.cardseal && window.cardseal.instance)), false);
    assert.equal(await page.isDisabled('button[type="submit"]'), true);
    await page.close();
  });
});
