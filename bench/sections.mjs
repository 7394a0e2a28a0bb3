// More sections of `npm run bench`: sealing, tokenizing through a real vault, the snippet's
// start-up, and the vault's own benchmark (which also runs `openssl speed rsa2048`). Each returns
// rows for the one table bench/run.mjs prints.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { build } from 'esbuild';

import { repoRoot } from '../scripts/serve.mjs';
import { snippetTag, startVault } from '../tests/support/servers.mjs';

const outDir = join(repoRoot, 'bench/.out');

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};

async function bundleForge() {
  mkdirSync(outDir, { recursive: true });
  await build({
    stdin: { contents: "export { default } from 'node-forge';", resolveDir: repoRoot, loader: 'js' },
    bundle: true, format: 'esm', outfile: join(outDir, 'forge.js'), logLevel: 'error',
  });
}

/** seal() beside WebCrypto RSA-OAEP and node-forge RSA-OAEP, all with one 2048-bit key. */
export async function sealSection({ browser, url }) {
  await bundleForge();
  const page = await browser.newPage();
  try {
    await page.goto(url + 'blank.html');
    const r = await page.evaluate(async () => {
      const { ready, CardSeal } = await import('/pkg/index.js');
      const forge = (await import('/out/forge.js')).default;
      await ready();
      const pair = await crypto.subtle.generateKey({ name: 'RSA-OAEP', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['encrypt', 'decrypt']);
      const jwk = await crypto.subtle.exportKey('jwk', pair.publicKey);
      const seal = await CardSeal.create({ vaultUrl: 'https://vault.invalid', publishableKey: 'pk_test_bench', vaultKey: { kty: 'RSA', n: jwk.n, e: jwk.e, use: 'enc', alg: 'RSA-OAEP-256', kid: 'bench' } });
      const card = { number: '4242424242424242', exp_month: 12, exp_year: new Date().getFullYear() + 2, cvc: '123' };
      const b64 = (s) => forge.util.decode64(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4));
      const fkey = forge.pki.setRsaPublicKey(new forge.jsbn.BigInteger(forge.util.bytesToHex(b64(jwk.n)), 16), new forge.jsbn.BigInteger(forge.util.bytesToHex(b64(jwk.e)), 16));
      const cek = crypto.getRandomValues(new Uint8Array(32));
      const cekBinary = String.fromCharCode(...cek);
      const time = async (n, f) => {
        for (let i = 0; i < Math.min(20, n); i++) await f();
        const best = [];
        for (let round = 0; round < 5; round++) {
          const t0 = performance.now();
          for (let i = 0; i < n; i++) await f();
          best.push((performance.now() - t0) / n);
        }
        return Math.min(...best);
      };
      return {
        cardseal: await time(300, () => seal.seal(card)),
        webcrypto: await time(300, () => crypto.subtle.encrypt({ name: 'RSA-OAEP' }, pair.publicKey, cek)),
        forge: await time(60, () => fkey.encrypt(cekBinary, 'RSA-OAEP', { md: forge.md.sha256.create(), mgf1: { md: forge.md.sha256.create() } })),
      };
    });
    return {
      details: r,
      rows: [
        { section: 'seal', metric: 'seal(): whole JWE, RSA-OAEP-256 + A256GCM (best of 5 × 300)', unit: 'ms', cardseal: r.cardseal, peer: { name: 'WebCrypto RSA-OAEP encrypt, async', value: r.webcrypto }, target: { max: 1 } },
        { section: 'seal', metric: '  same key, RSA-OAEP only', unit: 'ms', cardseal: undefined, peer: { name: 'node-forge RSA-OAEP encrypt', value: r.forge } },
      ],
    };
  } finally {
    await page.close();
  }
}

// CARDSEAL_BENCH_VAULT: a vault binary to use instead of building the release one.
let releaseBuilt = false;
function releaseVault() {
  if (process.env.CARDSEAL_BENCH_VAULT) return process.env.CARDSEAL_BENCH_VAULT;
  if (!releaseBuilt) execFileSync('cargo', ['build', '--quiet', '--release', '-p', 'cardseal-vault'], { cwd: repoRoot, stdio: 'inherit' });
  releaseBuilt = true;
  return join(repoRoot, 'target/release/cardseal-vault');
}

const UNLIMITED = ['--key-rate', '100000', '--key-burst', '100000', '--ip-rate', '100000', '--ip-burst', '100000',
  '--card-tokens-per-10m', '0', '--declines-per-minute', '0'];

/** tokenize() from the browser to a vault on loopback, one at a time: p50 and p99. */
export async function tokenizeSection({ browser, url }) {
  const vault = await startVault({ bin: releaseVault(), args: UNLIMITED });
  const page = await browser.newPage();
  try {
    await page.goto(url + 'blank.html');
    const samples = await page.evaluate(async ({ vaultUrl, pk }) => {
      const { CardSeal } = await import('/pkg/index.js');
      const seal = await CardSeal.create({ vaultUrl, publishableKey: pk });
      const card = { number: '4242424242424242', exp_month: 12, exp_year: new Date().getFullYear() + 2, cvc: '123' };
      for (let i = 0; i < 20; i++) await seal.tokenize(card);
      const out = [];
      for (let i = 0; i < 300; i++) {
        const t0 = performance.now();
        await seal.tokenize(card);
        out.push(performance.now() - t0);
      }
      return out;
    }, { vaultUrl: vault.url, pk: vault.pk });
    return {
      details: { samplesMs: samples.length },
      rows: [
        { section: 'tokenize', metric: `tokenize() browser → vault on loopback, p50 (${samples.length} sequential)`, unit: 'ms', cardseal: pct(samples, 0.5) },
        { section: 'tokenize', metric: '  p99', unit: 'ms', cardseal: pct(samples, 0.99) },
      ],
    };
  } finally {
    await page.close();
    await vault.stop();
  }
}

// One fresh page of the demo checkout: from the snippet's tag to `cardseal:ready`, and each step
// from the Performance timeline (resource timings, and the marks js/snippet.js leaves).
async function snippetRun(browser, url) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(url);
    await page.waitForFunction(() => performance.getEntriesByName('cardseal:ready').length > 0, null, { timeout: 20_000 });
    return await page.evaluate(() => {
      const mark = (n) => performance.getEntriesByName(`cardseal:${n}`)[0].startTime;
      const res = (f) => performance.getEntriesByType('resource').filter((e) => f(new URL(e.name).pathname));
      // The tag's request is its `script` entry; a preload of the wasm is a `link` one.
      const tag = res((p) => p.endsWith('/cardseal.js'))[0];
      const wasm = res((p) => p.endsWith('/cardseal_bg.wasm'))[0];
      const keys = res((p) => p.endsWith('/v1/encryption_keys'))[0];
      const t0 = tag.startTime;
      const lastIn = Math.max(mark('wasm-ready'), mark('keys'), mark('dom'));
      return {
        total: mark('ready') - t0,
        scriptFetch: tag.responseEnd - t0,
        scriptRun: mark('script') - tag.responseEnd,
        wasmFetch: wasm.responseEnd - wasm.startTime,
        wasmStart: wasm.startTime - t0,
        // From the later of its last byte and the script's run (a preloaded wasm waits for it).
        compileAfterBytes: mark('wasm-compiled') - Math.max(wasm.responseEnd, mark('script')),
        instantiate: mark('wasm-ready') - mark('wasm-compiled'),
        keysFetch: keys.responseEnd - keys.startTime,
        keysStart: keys.startTime - t0,
        wasmReadyAt: mark('wasm-ready') - t0,
        keysAt: mark('keys') - t0,
        domAt: mark('dom') - t0,
        attach: mark('ready') - lastIn,
      };
    });
  } finally {
    await context.close();
  }
}

/**
 * From the snippet's script tag to `cardseal:ready` (keys fetched, form attached), fresh pages
 * of the demo checkout, with each step; without hints, then with the README's preconnect and
 * preload.
 */
export async function snippetSection({ browser }) {
  const vault = await startVault({ bin: releaseVault(), args: [...UNLIMITED, '--snippet-dir', join(repoRoot, 'pkg/snippet')] });
  const { startShop } = await import('../www/shop.mjs');
  const options = { vaultUrl: vault.url, publishableKey: vault.pk, secretKey: vault.sk, snippet: snippetTag(vault) };
  const plain = await startShop({ ...options, preconnect: false });
  const hinted = await startShop({ ...options, preloadWasm: true });
  const runs = { plain: [], hinted: [] };
  try {
    // Alternating, so both see the same background load.
    for (let i = 0; i < 9; i++) {
      runs.plain.push(await snippetRun(browser, `${plain.url}/checkout?product=notebook`));
      runs.hinted.push(await snippetRun(browser, `${hinted.url}/checkout?product=notebook`));
    }
  } finally {
    await plain.close();
    await hinted.close();
    await vault.stop();
  }
  const med = (xs, k) => pct(xs.map((x) => x[k]), 0.5);
  const n = runs.plain.length;
  const steps = (r) => [
    ['  script fetched (tag to last byte)', 'scriptFetch'],
    ['  script parsed and run (last byte to cardseal:script)', 'scriptRun'],
    ['  wasm fetch (request to last byte)', 'wasmFetch'],
    ['  wasm compile after its last byte (or the script\'s run, if later)', 'compileAfterBytes'],
    ['  wasm instantiate + tables (core ready())', 'instantiate'],
    ['  keys fetch (request to last byte)', 'keysFetch'],
    ['  attach: CardSeal.create + forms, after the last of wasm/keys/DOM', 'attach'],
  ].map(([metric, k]) => ({ section: 'snippet', metric, unit: 'ms', cardseal: med(r, k) }));
  return {
    details: runs,
    rows: [
      { section: 'snippet', metric: `script tag to form ready (fresh page, no hints; median of ${n})`, unit: 'ms', cardseal: med(runs.plain, 'total'), target: { max: 50 } },
      ...steps(runs.plain),
      { section: 'snippet', metric: '  timeline: wasm / keys requested, wasm ready / keys in / DOM ready at', unit: 'ms', cardseal: med(runs.plain, 'wasmReadyAt'),
        text: ['wasmStart', 'keysStart', 'wasmReadyAt', 'keysAt', 'domAt'].map((k) => med(runs.plain, k).toFixed(1)).join(' / ') + ' ms' },
      { section: 'snippet', metric: `script tag to form ready, with preconnect + wasm preload (median of ${runs.hinted.length})`, unit: 'ms', cardseal: med(runs.hinted, 'total'), target: { max: 50 } },
      { section: 'snippet', metric: '  wasm ready / keys in, after the tag\'s request', unit: 'ms', cardseal: med(runs.hinted, 'wasmReadyAt'),
        text: ['wasmReadyAt', 'keysAt'].map((k) => med(runs.hinted, k).toFixed(1)).join(' / ') + ' ms' },
    ],
  };
}

/** The vault's own benchmark (vault/benches/tokens.rs), with `openssl speed rsa2048` in the same run. */
export async function vaultSection() {
  const out = execFileSync('cargo', ['bench', '--quiet', '-p', 'cardseal-vault', '--bench', 'tokens'], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const json = JSON.parse(out.split('\n').find((l) => l.startsWith('BENCH_JSON ')).slice('BENCH_JSON '.length));
  const rows = [
    { section: 'vault', metric: `POST /v1/tokens throughput, keep-alive clients on loopback (${json.vault_cores} cores)`, unit: 'tokens/s', cardseal: json.tokens_per_s,
      peer: json.openssl_rsa2048_sign_per_s ? { name: 'openssl speed rsa2048 sign/s (1 core)', value: json.openssl_rsa2048_sign_per_s } : undefined,
      target: json.target_tokens_per_s ? { min: json.target_tokens_per_s } : undefined },
    { section: 'vault', metric: '  p50 / p99 at full load', unit: 'ms', cardseal: json.p50_ms, text: `${json.p50_ms.toFixed(2)} / ${json.p99_ms.toFixed(2)} ms` },
    { section: 'vault', metric: `  p99 at half load (${Math.round(json.half_load_per_s)}/s, open loop)`, unit: 'ms', cardseal: json.half_load_p99_ms, target: { max: 25 } },
    { section: 'vault', metric: '  vault CPU per token (RSA decrypt share)', unit: 'µs', cardseal: json.vault_cpu_us_per_token, text: `${json.vault_cpu_us_per_token.toFixed(0)} µs (${Math.round(100 * json.rsa_share_of_vault_cpu)}% RSA)` },
    { section: 'vault', metric: '  peak RSS', unit: 'MiB', cardseal: json.vault_peak_rss_mib },
  ];
  return { details: json, rows };
}

/** POST /v1/forward beside a direct call to the same fake processor (vault/benches/forward.rs). */
export async function forwardSection() {
  const out = execFileSync('cargo', ['bench', '--quiet', '-p', 'cardseal-vault', '--bench', 'forward'], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const json = JSON.parse(out.split('\n').find((l) => l.startsWith('BENCH_JSON ')).slice('BENCH_JSON '.length));
  return {
    details: json,
    rows: [
      { section: 'forward', metric: `POST /v1/forward overhead over a direct https call, p50 (${json.requests} sequential, loopback)`, unit: 'ms', cardseal: json.overhead_p50_ms,
        peer: { name: 'direct call p50 (new TLS connection)', value: json.direct_p50_ms }, target: { max: 2 } },
      { section: 'forward', metric: '  overhead p99', unit: 'ms', cardseal: json.overhead_p99_ms, peer: { name: 'direct call p99', value: json.direct_p99_ms } },
      { section: 'forward', metric: '  forward round trip p50 / p99', unit: 'ms', cardseal: json.forward_p50_ms, text: `${json.forward_p50_ms.toFixed(2)} / ${json.forward_p99_ms.toFixed(2)} ms` },
    ],
  };
}

/** `export` and `import` of 5,000 saved cards with the release binary (vault/benches/migrate.rs), beside the RSA limit. */
export async function migrateSection() {
  const out = execFileSync('cargo', ['bench', '--quiet', '-p', 'cardseal-vault', '--bench', 'migrate'], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const json = JSON.parse(out.split('\n').find((l) => l.startsWith('BENCH_JSON ')).slice('BENCH_JSON '.length));
  const rsa = { name: 'aws-lc-rs RSA-2048 OAEP decrypt/s (1 core, the import\'s limit)', value: json.rsa_decrypt_per_s_one_core };
  return {
    details: json,
    rows: [
      { section: 'migrate', metric: `export, ${json.cards} saved cards sealed for another vault (whole command)`, unit: 'cards/s', cardseal: json.export_cards_per_s, peer: rsa, target: { min: json.target_cards_per_s } },
      { section: 'migrate', metric: `import, ${json.cards} cards checked, opened and stored (whole command)`, unit: 'cards/s', cardseal: json.import_cards_per_s, peer: rsa, target: { min: json.target_cards_per_s } },
    ],
  };
}

// The peers' merchant-side code, bundled from their npm packages the way a merchant's bundler
// would (esbuild, minified) and gzipped -9, once per run: what the size rows and the fields rows
// put beside cardseal. The hosted-fields peers' iframes load more from their own servers, which
// cannot be measured here.
export const PEERS = {
  jwe: ['card-validator number() + jose JWE encrypt', "export { number } from 'card-validator'; export { CompactEncrypt, importJWK } from 'jose';"],
  braintree: ['braintree-web client + hosted-fields', "export { default as client } from 'braintree-web/client'; export { default as hostedFields } from 'braintree-web/hosted-fields';"],
  adyen: ['@adyen/adyen-web core + Card', "export { AdyenCheckout, Card } from '@adyen/adyen-web';"],
};
let peerBundlesOnce = null;
export function peerBundles() {
  peerBundlesOnce ??= (async () => {
    const { gzipSync } = await import('node:zlib');
    const { readFileSync } = await import('node:fs');
    mkdirSync(outDir, { recursive: true });
    const out = {};
    for (const [key, [name, contents]] of Object.entries(PEERS)) {
      // bench/.out/peer-jwe.js etc.: the startup section imports the first one too.
      const outfile = join(outDir, `peer-${key}.js`);
      try {
        await build({ stdin: { contents, resolveDir: repoRoot, loader: 'js' }, bundle: true, minify: true, format: 'esm', platform: 'browser',
          target: 'es2020', outfile, logLevel: 'error', legalComments: 'none' });
        const bytes = readFileSync(outfile);
        out[key] = { name, raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length, file: `peer-${key}.js` };
      } catch (e) {
        out[key] = { name, error: `not installed or did not bundle: ${e.message.split('\n')[0]}` };
      }
    }
    return out;
  })();
  return peerBundlesOnce;
}

/** Rows of `cardseal` (bytes) beside each of `keys`' peer bundles, with the ratio. */
export async function peerSizeRows(section, metric, cardseal, keys) {
  const peers = await peerBundles();
  return keys.map((k) => (peers[k].error
    ? { section, metric: `  peer ${peers[k].name}`, error: peers[k].error }
    : { section, metric, unit: 'B', cardseal, peer: { name: peers[k].name, value: peers[k].gzip } }));
}

/**
 * Hosted fields: from the `mount()` calls to every field's `ready` (each iframe loads its
 * document, script and wasm, and the number frame the keys), on a fresh page over loopback; the
 * bytes the merchant page loads itself and those each iframe loads, gzipped -9; the peers'
 * merchant-side bundles beside them.
 */
export async function fieldsSection({ browser, url }) {
  const { gzipSync } = await import('node:zlib');
  const bin = releaseVault();
  const vault = await startVault({ bin, args: [...UNLIMITED, '--snippet-dir', join(repoRoot, 'pkg/snippet')] });
  const samples = [];
  const steps = {};
  const bytes = { page: {}, frames: {} };
  try {
    for (let i = 0; i < 9; i++) {
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        const bodies = [];
        if (i === 0) {
          page.on('response', (res) => bodies.push(res.body().then((b) => ({ url: res.url(), frame: res.frame().url(), gzip: gzipSync(b, { level: 9 }).length }), () => null)));
        }
        await page.goto(url + 'blank.html');
        await page.addScriptTag({ url: '/pkg/snippet/cardseal-fields.js' });
        const run = await page.evaluate(async ([vaultUrl, publishableKey]) => {
          for (const k of ['number', 'expiry', 'cvc']) document.body.insertAdjacentHTML('beforeend', `<div id="f-${k}"></div>`);
          const t0 = performance.now();
          const f = window.cardseal.fields({ vaultUrl, publishableKey });
          for (const k of ['number', 'expiry', 'cvc']) f.create(k).mount(`#f-${k}`);
          await f.ready();
          return { total: performance.now() - t0, t0: performance.timeOrigin + t0 };
        }, [vault.url, vault.pk]);
        samples.push(run.total);
        // Each frame's steps, on its own timeline, as ms after the mount() calls.
        for (const frame of page.frames().filter((fr) => fr.url().includes('/fields/'))) {
          const kind = (frame.url().match(/\/(\w+)\.html/) ?? [])[1];
          (steps[kind] ??= []).push(await frame.evaluate((t0) => {
            const at = (t) => performance.timeOrigin + t - t0;
            const mark = (n) => performance.getEntriesByName(`cardseal:${n}`)[0]?.startTime;
            const res = (suffix) => performance.getEntriesByType('resource').find((e) => new URL(e.name).pathname.endsWith(suffix));
            const wasm = res('.wasm');
            const keys = res('/v1/encryption_keys');
            return {
              documentIn: at(performance.getEntriesByType('navigation')[0].responseEnd),
              scriptIn: at(res('.js').responseEnd),
              scriptRun: at(mark('script')),
              wasmIn: at(wasm.responseEnd),
              wasmReady: at(mark('wasm-ready')),
              keysRequested: keys ? at(keys.startTime) : undefined,
              keysIn: keys ? at(keys.responseEnd) : undefined,
              ready: at(mark('ready')),
            };
          }, run.t0));
        }
        if (i === 0) {
          for (const b of (await Promise.all(bodies)).filter(Boolean)) {
            const path = new URL(b.url).pathname;
            if (b.url.startsWith(vault.url)) {
              const kind = (b.frame.match(/\/(\w+)\.html/) ?? [])[1] ?? 'page';
              (bytes.frames[kind] ??= {})[path.replace(/^\/fields\/[^/]+\//, '').replace(/\?.*/, '')] = b.gzip;
            } else if (!path.endsWith('blank.html')) {
              bytes.page[path] = b.gzip;
            }
          }
        }
      } finally {
        await context.close();
      }
    }
  } finally {
    await vault.stop();
  }
  const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0);
  const peers = await peerBundles();
  const pageGzip = sum(bytes.page);
  const rows = [
    { section: 'fields', metric: `mount() to every field ready (3 iframes; fresh page, median of ${samples.length})`, unit: 'ms', cardseal: pct(samples, 0.5), target: { max: 150 } },
    { section: 'fields', metric: 'merchant page, hosted-fields script, gzipped -9', unit: 'B', cardseal: pageGzip, target: { max: 10 * 1024 } },
    ...Object.entries(steps).map(([kind, xs]) => {
      const med = (k) => pct(xs.map((x) => x[k]).filter((v) => v !== undefined), 0.5);
      const keys = kind === 'number' ? ` / keys asked ${med('keysRequested').toFixed(1)}, in ${med('keysIn').toFixed(1)}` : '';
      return {
        section: 'fields', metric: `  ${kind} frame, ms after mount(): document / script / wasm in, script run, wasm ready${kind === 'number' ? ', keys' : ''}, ready`, unit: 'ms', cardseal: med('ready'),
        text: `${['documentIn', 'scriptIn', 'wasmIn', 'scriptRun', 'wasmReady'].map((k) => med(k).toFixed(1)).join(' / ')}${keys} / ready ${med('ready').toFixed(1)}`,
      };
    }),
    ...await peerSizeRows('fields', '  beside a peer\'s merchant-side bundle (esbuild, gzipped -9)', pageGzip, ['braintree', 'adyen']),
    ...Object.entries(bytes.frames).map(([kind, files]) => ({
      section: 'fields', metric: `each ${kind} iframe loads, gzipped -9 (${Object.keys(files).join(', ')})`, unit: 'B', cardseal: sum(files),
    })),
  ];
  return { details: { samplesMs: samples, steps, bytes, peers: [peers.braintree, peers.adyen] }, rows };
}

/** dudect's Welch t-test on the vault's unseal failure paths (vault/benches/unseal_timing.rs). */
export async function unsealTimingSection() {
  const out = execFileSync('cargo', ['bench', '--quiet', '-p', 'cardseal-vault', '--bench', 'unseal_timing'], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const json = JSON.parse(out.split('\n').find((l) => l.startsWith('BENCH_JSON ')).slice('BENCH_JSON '.length));
  return {
    details: json,
    // |t| < 4.5 is dudect's bar: a figure, not an assertion.
    rows: json.pairs.map((p, i) => ({
      section: 'unseal timing',
      metric: `${i ? '  ' : ''}|t|, ${p.a} vs ${p.b} (${json.measurements_per_pair.toLocaleString('en')} unseals, fastest 90%; all: ${p.t_all.toFixed(2)})`,
      unit: '',
      cardseal: p.t_fastest_90,
      target: { max: 4.5 },
    })),
  };
}

/**
 * The vault at scale (vault/benches/scale.rs): the hot requests on bulk-loaded databases beside
 * the same run's empty database and `openssl speed rsa2048`; SQLite, and PostgreSQL with one and
 * two instances on a throwaway cluster (scripts/pg.sh) when PostgreSQL is installed.
 * `CARDSEAL_SCALE_SIZES=0,100000,1000000` picks the sizes.
 */
export async function scaleSection() {
  // Imported here, not at the top, so that this section stays one block of the file.
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const sizes = process.env.CARDSEAL_SCALE_SIZES || '0,100000,1000000';
  const args = ['bench', '--quiet', '-p', 'cardseal-vault', '--bench', 'scale', '--', '--sizes', sizes, '--requests', '2000'];
  let pgDir = null;
  try {
    try {
      execFileSync('bash', ['scripts/pg.sh', 'bindir'], { cwd: repoRoot, stdio: 'ignore' });
      pgDir = mkdtempSync(join(tmpdir(), 'cardseal-scale-pg-'));
      const url = execFileSync('bash', ['scripts/pg.sh', 'start', pgDir], { cwd: repoRoot, encoding: 'utf8' }).trim();
      args.push('--database-url', url);
    } catch {
      pgDir = null; // No PostgreSQL here: SQLite only.
    }
    const out = execFileSync('cargo', args, { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
    const json = JSON.parse(out.split('\n').find((l) => l.startsWith('BENCH_JSON ')).slice('BENCH_JSON '.length));
    const rsa = json.openssl_rsa2048_sign_per_s;
    const rows = [];
    if (rsa) {
      rows.push({ section: 'scale', metric: `RSA limit: openssl speed rsa2048 sign/s × ${json.cores} cores`, unit: 'tokens/s', cardseal: rsa * json.cores });
    }
    const pct = (a, b) => (b ? `${Math.round((100 * a) / b)}%` : '');
    for (const r of json.runs) {
      const empty = json.runs.find((e) => e.backend === r.backend && e.instances === r.instances && e.tokens === 0);
      const where = `${r.backend}${r.backend === 'postgres' ? ` ×${r.instances}` : ''}, ${r.tokens.toLocaleString('en')} tokens + ${r.cards.toLocaleString('en')} cards`;
      rows.push(
        { section: 'scale', metric: `POST /v1/tokens (${where})`, unit: 'tokens/s', cardseal: r.tokens_per_s,
          peer: empty && r.tokens ? { name: 'empty database, same run', value: empty.tokens_per_s } : undefined,
          text: `${Math.round(r.tokens_per_s)}/s, ${pct(r.tokens_per_s, empty?.tokens_per_s)} of empty, ${pct(r.tokens_per_s, rsa * json.cores)} of the RSA limit` },
        { section: 'scale', metric: '  p50 / p99', unit: 'ms', cardseal: r.tokens_p50_ms, text: `${r.tokens_p50_ms.toFixed(2)} / ${r.tokens_p99_ms.toFixed(2)} ms` },
        { section: 'scale', metric: '  POST /v1/charges on a saved card; p99', unit: 'req/s', cardseal: r.charges_per_s, text: `${Math.round(r.charges_per_s)}/s; ${r.charges_p99_ms.toFixed(2)} ms` },
        { section: 'scale', metric: '  GET /v1/cards/{id}; p99', unit: 'req/s', cardseal: r.cards_get_per_s, text: `${Math.round(r.cards_get_per_s)}/s; ${r.cards_get_p99_ms.toFixed(2)} ms` },
        { section: 'scale', metric: '  database on disk / vault RSS', unit: 'MiB', cardseal: r.db_mib, text: `${r.db_mib.toFixed(1)} MiB / ${r.vault_rss_mib.toFixed(1)} MiB` },
        { section: 'scale', metric: '  purge batch (128 rows) p50 / max, writer held', unit: 'ms', cardseal: r.purge_batch_max_ms, target: { max: 5 },
          text: `${r.purge_batch_p50_ms.toFixed(2)} / ${r.purge_batch_max_ms.toFixed(2)} ms (${r.purge_batches} batches)` },
      );
    }
    return { details: json, rows };
  } finally {
    if (pgDir) execFileSync('bash', ['scripts/pg.sh', 'stop', pgDir], { cwd: repoRoot, stdio: 'ignore' });
  }
}
