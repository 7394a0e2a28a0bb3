// The built package in headless Chromium, in the places issue 2 names:
//   (a) a plain `<script type="module">` page with no bundler;
//   (b) an esbuild bundle of `import … from 'cardseal'`;
//   (c) the plain page under `Content-Security-Policy: script-src 'self' 'wasm-unsafe-eval'`;
// plus the demo shop (www/) under the CSP `npm start` sends.
// Needs pkg/ (node scripts/build.mjs) and /usr/bin/chromium (or CHROMIUM_PATH).
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { build } from 'esbuild';

import { repoRoot, serve } from '../../scripts/serve.mjs';
import { launchChromium } from '../support/chromium.mjs';

const fixtures = join(repoRoot, 'tests/js/fixtures');

const STRICT_CSP = "script-src 'self' 'wasm-unsafe-eval'";
// The control: without 'wasm-unsafe-eval' the wasm must be refused, which shows that the
// violation listener below does see violations.
const NO_WASM_CSP = "script-src 'self'";
const CSP_BY_NAME = { strict: STRICT_CSP, nowasm: NO_WASM_CSP };

const nextYear = new Date().getFullYear() + 1;

let browser;
let server;
let shop;
let bundleDir;

// The CSP comes from the page URL (`?csp=strict`), so one server serves every case.
function cspHeaders(req) {
  const name = new URL(req.url, 'http://x').searchParams.get('csp');
  return CSP_BY_NAME[name] ? { 'Content-Security-Policy': CSP_BY_NAME[name] } : {};
}

const noFavicon = (req, res) => {
  res.writeHead(204);
  res.end();
};

before(async () => {
  assert.ok(existsSync(join(repoRoot, 'pkg/index.js')), 'pkg/ is missing: run `node scripts/build.mjs` first');
  bundleDir = mkdtempSync(join(tmpdir(), 'cardseal-bundle-'));
  server = await serve({
    root: fixtures,
    routes: { '/bundle/': bundleDir, '/favicon.ico': noFavicon },
    headers: cspHeaders,
  });
  shop = await serve({
    root: join(repoRoot, 'www'),
    headers: { 'Content-Security-Policy': `default-src 'self'; ${STRICT_CSP}` },
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.close();
  await shop?.close();
  if (bundleDir) rmSync(bundleDir, { recursive: true, force: true });
});

// Opens `url` in a fresh page and collects everything that went wrong on it.
async function open(url) {
  const page = await browser.newPage();
  const problems = { console: [], pageErrors: [], failed: [] };
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.console.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.pageErrors.push(e.message));
  page.on('requestfailed', (r) => problems.failed.push(`${r.url()}: ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.failed.push(`${r.url()}: HTTP ${r.status()}`);
  });
  // Runs before any page script, outside the page's CSP, so no violation can be missed.
  await page.addInitScript(() => {
    window.cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.cspViolations.push(`${e.effectiveDirective} blocked ${e.blockedURI}`);
    });
  });
  await page.goto(url);
  await page.waitForFunction(() => window.smoke !== undefined, null, { timeout: 15000 });
  const smoke = await page.evaluate(() => window.smoke);
  const violations = await page.evaluate(() => window.cspViolations);
  return { page, smoke, violations, problems };
}

function assertClean({ smoke, violations, problems }) {
  assert.equal(smoke.status, 'done', `the page failed: ${JSON.stringify(smoke.error)}`);
  assert.deepEqual(violations, [], 'CSP violations');
  assert.deepEqual(problems, { console: [], pageErrors: [], failed: [] });
}

function assertPlainResults(s) {
  assert.deepEqual(s.beforeReady, { name: 'CardSealError', code: 'not_ready', isCardSealError: true });
  for (const name of ['ready', 'validateNumber', 'validateExpiry', 'validateCvc', 'validateCard',
    'formatCardNumber', 'formatExpiry', 'messageFor', 'CardSealError']) {
    assert.ok(s.exports.includes(name), `export ${name}`);
  }
  assert.deepEqual(s.validateNumber,
    { brand: 'visa', candidates: ['visa'], isValid: true, isPotentiallyValid: true, code: null });
  assert.equal(s.validateNumberPartial.isPotentiallyValid, true);
  assert.equal(s.validateNumberPartial.isValid, false);
  assert.ok(s.validateNumberPartial.candidates.includes('amex'));
  assert.deepEqual(s.validateExpiry, { isValid: true, isPotentiallyValid: true, code: null });
  assert.deepEqual(s.validateExpiryField, { isValid: true, isPotentiallyValid: true, code: null });
  assert.equal(s.validateExpiryBad.code, 'invalid_expiry_month');
  assert.deepEqual(s.validateCvc, { isValid: true, isPotentiallyValid: true, code: null });
  assert.equal(s.validateCvcShort.code, 'incomplete_cvc');
  assert.deepEqual(s.validateCard, { valid: true, brand: 'amex', errors: [] });
  assert.equal(s.validateCardBad.valid, false);
  assert.deepEqual(s.validateCardBad.errors.map((e) => [e.field, e.code]),
    [['number', 'invalid_number'], ['expiry', 'invalid_expiry_month'], ['cvc', 'incomplete_cvc']]);
  for (const e of s.validateCardBad.errors) assert.ok(e.message.length > 0, `message for ${e.code}`);
  assert.deepEqual(s.formatCardNumber, { value: '4242 4242 4242 4242', caret: 19 });
  assert.equal(s.formatAmex.value, '3782 822463 10005');
  assert.deepEqual(s.formatExpiry, { value: '12 / 30', caret: 7 });
  assert.equal(s.messageFor, 'Your card number is invalid.');
  assert.deepEqual(s.junkThrew, []);
  if (s.exports.includes('CardSeal')) {
    assert.equal(s.seal.parts, 5, 'a compact JWE has five parts');
    assert.equal(s.seal.header.alg, 'RSA-OAEP-256');
    assert.equal(s.seal.header.enc, 'A256GCM');
    assert.equal(s.seal.header.kid, 'smoke-1');
    assert.equal(s.seal.invalid?.code, 'invalid_number', 'an invalid card is never sealed');
  }
}

describe('cardseal in headless Chromium', () => {
  it('(a) works in a plain module page with no bundler', async () => {
    const r = await open(server.url + 'plain.html');
    try {
      assertClean(r);
      assertPlainResults(r.smoke);
    } finally {
      await r.page.close();
    }
  });

  it("(b) works from an esbuild bundle of import … from 'cardseal'", async () => {
    // `cardseal` resolves the way it would after `npm install`: through node_modules and the
    // package.json `exports` map (the browser gets the "default" condition, not "node").
    const modules = join(bundleDir, 'node_modules');
    mkdirSync(modules, { recursive: true });
    symlinkSync(repoRoot, join(modules, 'cardseal'), 'dir');
    const result = await build({
      entryPoints: [join(fixtures, 'bundle-entry.js')],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      outfile: join(bundleDir, 'app.js'),
      nodePaths: [modules],
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile.inputs).map((f) => relative(repoRoot, join(process.cwd(), f)));
    assert.ok(inputs.includes('pkg/index.js'), `bundled the browser entry: ${inputs.join(', ')}`);
    assert.ok(!inputs.includes('pkg/node.js'), 'the Node entry must not reach a browser bundle');
    // esbuild leaves `new URL('./wasm/…', import.meta.url)` alone: the wasm goes beside the bundle.
    mkdirSync(join(bundleDir, 'wasm'));
    copyFileSync(join(repoRoot, 'pkg/wasm/cardseal_bg.wasm'), join(bundleDir, 'wasm/cardseal_bg.wasm'));

    const r = await open(server.url + 'bundle.html');
    try {
      assertClean(r);
      assert.equal(r.smoke.number.brand, 'mastercard');
      assert.equal(r.smoke.number.isValid, true);
      assert.equal(r.smoke.formatted.value, '5555 5555 5555 4444');
      assert.deepEqual(r.smoke.card, { valid: true, brand: 'visa', errors: [] });
    } finally {
      await r.page.close();
    }
  });

  it(`(c) works under Content-Security-Policy: ${STRICT_CSP}`, async () => {
    const r = await open(server.url + 'plain.html?csp=strict');
    try {
      const header = await r.page.evaluate(async () => (await fetch(location.href)).headers.get('content-security-policy'));
      assert.equal(header, STRICT_CSP, 'the page was served with the CSP');
      assertClean(r);
      assertPlainResults(r.smoke);
    } finally {
      await r.page.close();
    }
  });

  it(`(c, control) the wasm is refused under ${NO_WASM_CSP}, and the test sees it`, async () => {
    const r = await open(server.url + 'plain.html?csp=nowasm');
    try {
      assert.equal(r.smoke.status, 'error');
      assert.equal(r.smoke.error.code, 'wasm_load_failed');
      assert.ok(r.violations.some((v) => v.startsWith('script-src')), `violations: ${r.violations}`);
    } finally {
      await r.page.close();
    }
  });

  it('the demo shop formats and validates as the customer types, under the CSP', async () => {
    const page = await browser.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
    try {
      await page.goto(shop.url + 'validate.html');
      await page.waitForFunction(() => !document.getElementById('pay').disabled, null, { timeout: 15000 });
      const inputs = await page.$$eval('input', (els) => els.map((e) => e.getAttribute('name')));
      assert.deepEqual(inputs, [null, null, null, null], 'card inputs carry no name');

      const number = page.locator('#card-number');
      await number.pressSequentially('378282246310005');
      assert.equal(await number.inputValue(), '3782 822463 10005');
      assert.equal(await page.locator('#card-brand').getAttribute('data-brand'), 'amex');
      // Typing in the middle keeps the caret after the typed digit.
      await number.fill('');
      await number.pressSequentially('42424242');
      await number.evaluate((el) => el.setSelectionRange(2, 2));
      await page.keyboard.type('9');
      assert.equal(await number.inputValue(), '4294 2424 2');
      assert.equal(await number.evaluate((el) => el.selectionStart), 3);

      await page.locator('#card-expiry').pressSequentially('4');
      assert.equal(await page.locator('#card-expiry').inputValue(), '04');
      await page.click('#pay');
      assert.equal(await number.getAttribute('aria-invalid'), 'true');
      assert.equal(await number.getAttribute('aria-describedby'), 'card-number-error');
      assert.equal(await page.locator('#card-number-error').textContent(), 'Your card number is incomplete.');

      await number.fill('');
      await number.pressSequentially('4242424242424242');
      await page.locator('#card-expiry').fill('');
      await page.locator('#card-expiry').pressSequentially(`12${String(nextYear).slice(2)}`);
      await page.locator('#card-cvc').fill('123');
      await page.click('#pay');
      assert.equal(await page.locator('#status').textContent(), 'Card is valid (visa •••• 4242)');
      assert.equal(await number.getAttribute('aria-invalid'), null);
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  });
});
