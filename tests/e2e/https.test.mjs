// The vault over https, as in production (vault/README.md, "TLS"), in headless Chromium: a
// throwaway CA and a certificate for 127.0.0.1/localhost made with the `openssl` CLI, the vault
// started with `--tls-cert`/`--tls-key`, the demo shop (plain http, a child process that trusts
// the CA through NODE_EXTRA_CA_CERTS) loading the snippet from the https vault, and Chromium
// trusting exactly the leaf's key with `--ignore-certificate-errors-spki-list` (README.md,
// "Browsers in tests"). A customer pays; the snippet, the wasm and the token POST went to the
// vault over TLS, and every answer of the vault carries Strict-Transport-Security.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { launchChromium } from '../support/chromium.mjs';
import { root, snippetTag, startVault } from '../support/servers.mjs';

const year = String((new Date().getUTCFullYear() + 3) % 100).padStart(2, '0');

let dir;
let vault;
let shop;
let browser;
let spki;

const openssl = (args, input) => execFileSync('openssl', args, { cwd: dir, input, stdio: ['pipe', 'pipe', 'pipe'] });

/** A CA, and a leaf for 127.0.0.1 and localhost signed by it (P-256, one day). */
function makeCertificates() {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', '/CN=cardseal test CA', '-keyout', 'ca.key', '-out', 'ca.pem',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-subj', '/CN=127.0.0.1', '-keyout', 'leaf.key', '-out', 'leaf.csr']);
  // An extensions file (rather than `-addext` on the request and `-copy_extensions`, OpenSSL 3 only).
  writeFileSync(join(dir, 'leaf.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n');
  openssl(['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1',
    '-out', 'leaf.pem', '-extfile', 'leaf.ext']);
  // The base64 SHA-256 of the leaf's SubjectPublicKeyInfo: what Chromium's flag takes.
  const pub = openssl(['x509', '-in', 'leaf.pem', '-pubkey', '-noout']);
  const der = openssl(['pkey', '-pubin', '-outform', 'der'], pub);
  return openssl(['dgst', '-sha256', '-binary'], der).toString('base64');
}

/** The demo shop in a child process that trusts the CA (its server charges through the vault). */
async function startShopProcess(options, caFile) {
  const code = `import { startShop } from ${JSON.stringify(join(root, 'www/shop.mjs'))};
    const shop = await startShop(JSON.parse(process.env.SHOP_OPTIONS));
    process.stdout.write(JSON.stringify({ url: shop.url }) + '\\n');
    process.on('SIGTERM', () => shop.close().then(() => process.exit(0)));`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    env: { ...process.env, NODE_EXTRA_CA_CERTS: caFile, SHOP_OPTIONS: JSON.stringify(options) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs = [];
  child.stderr.on('data', (d) => logs.push(d.toString()));
  const url = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]).url);
    });
    child.once('exit', (c) => reject(new Error(`the shop exited with ${c}: ${logs.join('')}`)));
  });
  return {
    url,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

before(async () => {
  const version = execFileSync('openssl', ['version'], { encoding: 'utf8' });
  assert.match(version, /^OpenSSL [13]\./, `openssl: ${version}`);
  dir = mkdtempSync(join(tmpdir(), 'cardseal-tls-'));
  spki = makeCertificates();
  vault = await startVault({
    ca: readFileSync(join(dir, 'ca.pem')),
    args: ['--tls-cert', join(dir, 'leaf.pem'), '--tls-key', join(dir, 'leaf.key'), '--snippet-dir', join(root, 'pkg/snippet')],
  });
  assert.match(vault.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const snippet = snippetTag(vault);
  assert.ok(snippet.src.startsWith(`${vault.url}/`), `the snippet is served over https: ${snippet.src}`);
  shop = await startShopProcess({ vaultUrl: vault.url, publishableKey: vault.pk, secretKey: vault.sk, snippet },
    join(dir, 'ca.pem'));
  browser = await launchChromium([`--ignore-certificate-errors-spki-list=${spki}`]);
});

after(async () => {
  await browser?.close();
  await shop?.stop();
  await vault?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the vault over https (Chromium)', () => {
  it('a customer pays with the snippet loaded from the https vault: snippet, wasm and token POST over TLS, each answer with Strict-Transport-Security', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const problems = [];
    const fromVault = [];
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
    page.on('requestfailed', (r) => problems.push(`${r.url()}: ${r.failure()?.errorText}`));
    page.on('response', (r) => {
      if (r.url().startsWith(`${vault.url}/`)) {
        fromVault.push((async () => ({
          url: r.url(), method: r.request().method(), status: r.status(),
          headers: await r.allHeaders(), tls: await r.securityDetails(),
        }))());
      }
    });
    await page.goto(`${shop.url}/checkout?product=notebook`);
    await page.waitForFunction(() => window.cardseal && window.cardseal.instance, null, { timeout: 20_000 });
    for (const [sel, text] of [['number', '4242424242424242'], ['expiry', `12${year}`], ['cvc', '123']]) {
      await page.click(`[data-cardseal="${sel}"]`);
      await page.keyboard.type(text);
    }
    await Promise.all([page.waitForURL(/\/receipt\//), page.click('button[type="submit"]')]);
    assert.match(await page.textContent('.receipt'), /Payment successful/);
    assert.match(await page.textContent('[data-receipt-card]'), /Visa •••• 4242/);

    const seen = await Promise.all(fromVault);
    const find = (test, what) => {
      const hit = seen.filter(test);
      assert.ok(hit.length >= 1, `${what} came from the vault: ${seen.map((s) => `${s.method} ${s.url}`).join(', ')}`);
      return hit;
    };
    const snippet = find((s) => /\/cardseal\.js$/.test(new URL(s.url).pathname), 'the snippet');
    const wasm = find((s) => new URL(s.url).pathname.endsWith('.wasm'), 'the wasm');
    const post = find((s) => s.method === 'POST' && new URL(s.url).pathname === '/v1/tokens', 'the token POST');
    for (const s of [...snippet, ...wasm, ...post]) {
      assert.ok(s.url.startsWith('https://127.0.0.1:'), s.url);
      assert.ok(s.status >= 200 && s.status < 300, `${s.method} ${s.url}: ${s.status}`);
      // The certificate Chromium saw is the throwaway CA's leaf.
      assert.equal(s.tls?.issuer, 'cardseal test CA', `${s.url}: ${JSON.stringify(s.tls)}`);
      assert.match(s.tls.protocol, /^TLS 1\.[23]$/);
    }
    for (const s of seen) {
      assert.match(s.headers['strict-transport-security'] ?? '', /^max-age=\d+/, `${s.method} ${s.url}: Strict-Transport-Security`);
    }
    assert.deepEqual(problems, []);
    await context.close();
  });

  it('without --ignore-certificate-errors-spki-list Chromium refuses the vault\'s certificate', async () => {
    const plain = await launchChromium();
    try {
      const page = await plain.newPage();
      await assert.rejects(page.goto(`${vault.url}/healthz`), /ERR_CERT_AUTHORITY_INVALID/);
    } finally {
      await plain.close();
    }
  });
});
