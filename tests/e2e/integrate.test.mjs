// README's "Integrate into your own app", step by step:
//   - a fresh checkout (no pkg/) packs: `prepack` builds pkg/, and the tarball installs and imports;
//   - without the build tools, packing fails loudly instead of shipping a package with no wasm;
//   - the walkthrough's app (tests/e2e/fixtures/integrate: index.html, main.js, server.mjs, the
//     same code README shows) installed from the tarball, built by Vite for production, served
//     by its ~20-line back end, takes a payment in headless Chromium against a real vault.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { launchChromium } from '../support/chromium.mjs';
import { root, startVault } from '../support/servers.mjs';

const app = join(root, 'tests/e2e/fixtures/integrate');
const year = String((new Date().getUTCFullYear() + 3) % 100).padStart(2, '0');
const npmQuiet = ['--no-audit', '--no-fund', '--loglevel=error'];

let work;

before(() => {
  work = mkdtempSync(join(tmpdir(), 'cardseal-integrate-'));
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The files of this checkout that git would give a fresh clone (tracked, plus new unignored ones). */
function freshCheckout(dir) {
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' })
    // Regular files only: a symlink (a shared `target` link, say) is nothing a clone would get.
    .split('\0').filter((f) => f && existsSync(join(root, f)) && lstatSync(join(root, f)).isFile());
  for (const f of files) {
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    copyFileSync(join(root, f), join(dir, f));
  }
  assert.ok(!existsSync(join(dir, 'pkg')), 'a fresh checkout has no pkg/');
}

function packedFiles(tarball) {
  return execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n').filter(Boolean);
}

/** `npm install <tarball>` into a new project, then `import … from 'cardseal'` in Node. */
function assertInstallsAndImports(tarball) {
  const dir = mkdtempSync(join(work, 'node-user-'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'user', private: true, type: 'module' }));
  execFileSync('npm', ['install', ...npmQuiet, tarball], { cwd: dir, stdio: 'pipe' });
  writeFileSync(join(dir, 'main.js'), "import { ready, validateNumber } from 'cardseal';\nawait ready();\n" +
    "console.log(JSON.stringify(validateNumber('4242 4242 4242 4242')));\n");
  const out = JSON.parse(execFileSync('node', ['main.js'], { cwd: dir, encoding: 'utf8' }));
  assert.deepEqual(out, { brand: 'visa', candidates: ['visa'], isValid: true, isPotentiallyValid: true, code: null });
}

describe('packing', () => {
  it('a fresh checkout packs with its pkg/ (prepack builds it), and the tarball installs and imports', () => {
    const dir = join(work, 'clone');
    freshCheckout(dir);
    // The tools `npm run build` would install, and the compiled crates, shared with this checkout.
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
    symlinkSync(join(root, 'target'), join(dir, 'target'), 'dir');
    const packed = JSON.parse(execFileSync('npm', ['pack', '--json', ...npmQuiet, '--pack-destination', work], { cwd: dir, encoding: 'utf8' }));
    const tarball = join(work, packed[0].filename);
    const files = packedFiles(tarball);
    for (const f of ['index.js', 'node.js', 'index.d.ts', 'core.js', 'wasm/cardseal.js', 'wasm/cardseal_bg.wasm', 'snippet/cardseal.js', 'snippet/cardseal_bg.wasm']) {
      assert.ok(files.includes(`package/pkg/${f}`), `the tarball holds pkg/${f}`);
    }
    assert.ok(!files.some((f) => f.startsWith('package/src/') || f.startsWith('package/target/')), 'only pkg/ ships');
    assertInstallsAndImports(tarball);
  });

  it('without the build tools, packing fails loudly and makes no tarball', () => {
    const dir = join(work, 'bare');
    freshCheckout(dir);
    const out = join(work, 'bare-out');
    mkdirSync(out);
    // No cargo (HOME has no .cargo/bin), no node_modules: what a machine with only Node has.
    const env = { ...process.env, PATH: dirname(process.execPath) + ':/usr/bin:/bin', HOME: join(work, 'empty-home') };
    const r = spawnSync('npm', ['pack', ...npmQuiet, '--pack-destination', out], { cwd: dir, env, encoding: 'utf8' });
    assert.notEqual(r.status, 0, 'npm pack must fail');
    assert.match(r.stderr, /cardseal prepack: cannot build pkg\/: missing cargo \(Rust\)/);
    assert.match(r.stderr, /npm run build/);
    assert.deepEqual(readdirSync(out), [], 'no tarball');
  });
});

describe('the walkthrough app: Vite production build, its back end, a real vault', () => {
  let vault;
  let server;
  let browser;

  after(async () => {
    await browser?.close();
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server.once('exit', r));
      server.kill('SIGTERM');
      await exited;
    }
    await vault?.stop();
  });

  it('the README shows exactly the code this test runs', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    for (const f of ['main.js', 'server.mjs', 'vite.config.js']) {
      assert.ok(readme.includes(readFileSync(join(app, f), 'utf8').trim()), `README.md holds ${f} verbatim`);
    }
  });

  it('builds with Vite, serves with server.mjs, and a card typed in Chromium is charged', async () => {
    // 1. Build, pack and install: the app depends on the packed tarball, as on a published version.
    const packed = JSON.parse(execFileSync('npm', ['pack', '--json', ...npmQuiet, '--pack-destination', work], { cwd: root, encoding: 'utf8' }));
    const dir = join(work, 'app');
    mkdirSync(dir);
    for (const f of ['index.html', 'main.js', 'server.mjs', 'vite.config.js']) copyFileSync(join(app, f), join(dir, f));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({
      name: 'my-shop', private: true, type: 'module', dependencies: { cardseal: `file:${join(work, packed[0].filename)}` },
    }));
    execFileSync('npm', ['install', ...npmQuiet], { cwd: dir, stdio: 'pipe' });

    // 2. A vault with an account for the app's origin (startVault allows http://127.0.0.1:*).
    vault = await startVault();

    // 3. A production build; VITE_* variables are read from the environment at build time.
    const { build } = await import('vite');
    const saved = { ...process.env };
    process.env.VITE_CARDSEAL_VAULT_URL = vault.url;
    process.env.VITE_CARDSEAL_PUBLISHABLE_KEY = vault.pk;
    try {
      await build({ root: dir, logLevel: 'silent' });
    } finally {
      process.env = saved;
    }
    const assets = readdirSync(join(dir, 'dist/assets'));
    assert.ok(assets.some((f) => f.endsWith('.wasm')), `Vite emitted the wasm: ${assets}`);
    const bundle = assets.filter((f) => f.endsWith('.js')).map((f) => readFileSync(join(dir, 'dist/assets', f), 'utf8')).join('\n');
    assert.ok(!bundle.includes('node:fs'), 'the Node entry stayed out of the browser bundle');
    assert.ok(bundle.includes(vault.pk), 'the publishable key is built in');

    // 4. The back end.
    server = spawn(process.execPath, ['server.mjs'], {
      cwd: dir, env: { ...process.env, VAULT_URL: vault.url, CARDSEAL_SECRET_KEY: vault.sk, PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'],
    });
    const url = await new Promise((resolve, reject) => {
      let out = '';
      server.stdout.on('data', (d) => {
        out += d;
        const m = out.match(/listening on (http:\S+)/);
        if (m) resolve(m[1]);
      });
      server.once('exit', (code) => reject(new Error(`server.mjs exited with ${code}`)));
    });

    // 5. A customer pays.
    browser = await launchChromium();
    const page = await browser.newPage();
    const problems = [];
    const posts = [];
    page.on('pageerror', (e) => problems.push(e.message));
    // Failed loads are checked through the responses, which leave out only the favicon that
    // Chromium asks server.mjs for (a 404: the example serves no icon).
    page.on('console', (m) => m.type() === 'error' && !m.text().startsWith('Failed to load resource') && problems.push(m.text()));
    page.on('request', (r) => r.method() === 'POST' && posts.push({ url: r.url(), body: r.postData() ?? '' }));
    page.on('response', (r) => r.status() >= 400 && problems.push(`${r.url()}: HTTP ${r.status()}`));
    await page.goto(url + '/');
    // attach() enables the button the page marked data-cardseal-pending; main.js does nothing.
    await page.waitForSelector('#checkout button:not([disabled]):not([data-cardseal-pending])', { timeout: 20_000 });
    await page.click('#number');
    await page.keyboard.type('4242424242424242');
    assert.equal(await page.inputValue('#number'), '4242 4242 4242 4242', 'attach() formats as the customer types');
    await page.click('#expiry');
    await page.keyboard.type(`12${year}`);
    await page.click('#cvc');
    await page.keyboard.type('123');
    await Promise.all([page.waitForURL(`${url}/pay`), page.click('#checkout button')]);
    assert.equal(await page.textContent('h1'), 'Paid');
    assert.equal(await page.textContent('p'), 'visa •••• 4242');
    const toServer = posts.filter((p) => p.url.startsWith(url));
    assert.equal(toServer.length, 1);
    assert.match(toServer[0].body, /^cardseal_token=tok_[A-Za-z0-9]{22}$/, 'the back end got the token and nothing else');
    const toVault = posts.filter((p) => p.url.startsWith(vault.url));
    assert.deepEqual(toVault.map((p) => new URL(p.url).pathname), ['/v1/tokens']);
    assert.ok(!toVault[0].body.includes('4242'), 'the card went to the vault sealed');
    assert.deepEqual(problems, []);
  });

  it("Vite's dev server (with the README's vite.config.js) loads the wasm and the vault's key", async () => {
    const dir = join(work, 'app');
    assert.ok(existsSync(join(dir, 'node_modules/cardseal')), 'the test above installed the app');
    const { createServer } = await import('vite');
    const saved = { ...process.env };
    process.env.VITE_CARDSEAL_VAULT_URL = vault.url;
    process.env.VITE_CARDSEAL_PUBLISHABLE_KEY = vault.pk;
    const dev = await createServer({ root: dir, logLevel: 'silent', server: { host: '127.0.0.1', port: 0 } });
    try {
      await dev.listen();
      const page = await browser.newPage();
      const problems = [];
      page.on('pageerror', (e) => problems.push(e.message));
      page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
      await page.goto(dev.resolvedUrls.local[0]);
      await page.waitForSelector('#checkout button:not([disabled])', { timeout: 20_000 });
      await page.click('#number');
      await page.keyboard.type('378282246310005');
      assert.equal(await page.inputValue('#number'), '3782 822463 10005');
      assert.deepEqual(problems, []);
      await page.close();
    } finally {
      await dev.close();
      process.env = saved;
    }
  });
});
