// `npm run bench` (after the build): measures cardseal in headless Chromium and prints one
// table from one run. Results also go to bench/.out/results.json.
//
// Each section is an async function of the shared context that returns rows:
//   { section, metric, unit, cardseal, peer?: { name, value }, target?: { max | min } }
// Later sections (vault throughput, seal latency, tokenize latency) append to `SECTIONS`.
// Figures are reported, never asserted: the exit code is non-zero only if something failed
// to run.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { build } from 'esbuild';

import { repoRoot, serve } from '../scripts/serve.mjs';
import { launchChromium } from '../tests/support/chromium.mjs';
import {
  fieldsSection, forwardSection, migrateSection, peerBundles, peerSizeRows, sealSection, snippetSection, tokenizeSection, vaultSection,
} from './sections.mjs';
import { unsealTimingSection } from './sections.mjs';

const benchDir = join(repoRoot, 'bench');
const outDir = join(benchDir, '.out');
const pkgDir = join(repoRoot, 'pkg');

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// card-validator is CommonJS; esbuild turns it into one ES module the bench page imports.
async function bundlePeers() {
  mkdirSync(outDir, { recursive: true });
  await build({
    stdin: { contents: "export { number } from 'card-validator';", resolveDir: repoRoot, loader: 'js' },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    outfile: join(outDir, 'card-validator.js'),
    logLevel: 'warning',
  });
}

async function validationSection({ browser, url }) {
  const page = await browser.newPage();
  try {
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url + 'index.html');
    await page.waitForFunction(() => window.benchReady === true, null, { timeout: 15000 }).catch(() => {
      throw new Error(`the bench page did not load: ${errors.join('; ') || 'timeout'}`);
    });
    const r = await page.evaluate((opts) => window.bench.validation(opts), {
      count: 100_000, seed: 20251123, rounds: 5, repeats: { cardseal: 3, peer: 1 }, warmup: 1,
    });
    return {
      details: r,
      rows: [{
        section: 'validation',
        metric: `validateNumber, per number (${r.count.toLocaleString('en')} numbers; median of ${r.passesMs.cardseal.length} / ${r.passesMs.peer.length} passes)`,
        unit: 'µs',
        cardseal: r.cardsealUs,
        peer: { name: 'card-validator number()', value: r.peerUs },
        target: { max: 1 },
      }],
    };
  } finally {
    await page.close();
  }
}

// What a browser downloads for `import … from 'cardseal'` + `ready()`: recorded from a real page
// load rather than listed here, so new modules are counted as soon as they ship.
async function loadedPkgFiles(browser, url) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const files = new Set();
    page.on('response', (res) => {
      const path = new URL(res.url()).pathname;
      if (res.ok() && path.startsWith('/pkg/')) files.add(path.slice('/pkg/'.length));
    });
    await page.goto(url + 'blank.html');
    await page.evaluate(async () => (await import('/pkg/index.js')).ready());
    return [...files].sort();
  } finally {
    await context.close();
  }
}

function gzipSizes(dir, names) {
  const files = {};
  let raw = 0;
  let gzip = 0;
  for (const f of names) {
    const bytes = readFileSync(join(dir, f));
    files[f] = { raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
    raw += files[f].raw;
    gzip += files[f].gzip;
  }
  return { files, raw, gzip };
}

// What a page with the snippet tag loads from pkg/snippet/ (the hosted-fields files are the
// fields section's).
const SNIPPET_FILES = ['cardseal.js', 'cardseal_bg.wasm'];
// The goal for each: 50 KB, taken as 50 × 1024 B.
const SIZE_GOAL = 50 * 1024;
const SIZE_PEERS = ['jwe', 'braintree', 'adyen'];

async function sizeSection({ browser, url }) {
  const pkg = gzipSizes(pkgDir, await loadedPkgFiles(browser, url));
  const wasm = Object.entries(pkg.files).find(([f]) => f.endsWith('.wasm'));
  if (!wasm) throw new Error('the page loaded no .wasm from /pkg/');
  const besidePeers = '  beside a peer, bundled in this run (esbuild --minify, gzip -9)';
  const rows = [
    { section: 'size', metric: `package, wasm + JS glue as loaded, gzip -9 (${Object.keys(pkg.files).length} files; goal 50 KB = 50 × 1024 B)`, unit: 'B', cardseal: pkg.gzip, target: { max: SIZE_GOAL } },
    ...await peerSizeRows('size', besidePeers, pkg.gzip, SIZE_PEERS),
    { section: 'size', metric: '  of which the wasm', unit: 'B', cardseal: wasm[1].gzip },
  ];
  const details = { package: pkg, peers: await peerBundles() };
  // The script-tag build, when the build makes one.
  const snippetDir = join(pkgDir, 'snippet');
  if (SNIPPET_FILES.every((f) => existsSync(join(snippetDir, f)))) {
    details.snippet = gzipSizes(snippetDir, SNIPPET_FILES);
    rows.push(
      { section: 'size', metric: `snippet, ${SNIPPET_FILES.join(' + ')}, gzip -9 (goal 50 KB = 50 × 1024 B)`, unit: 'B', cardseal: details.snippet.gzip, target: { max: SIZE_GOAL } },
      ...await peerSizeRows('size', besidePeers, details.snippet.gzip, SIZE_PEERS),
    );
  }
  return { details, rows };
}

// One fresh browser context (empty cache, as a first visit) per call of `f(page)`.
async function freshPage(browser, url, f) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(url + 'blank.html');
    return await f(page);
  } finally {
    await context.close();
  }
}

// import('/pkg/index.js') + ready() on fresh pages over loopback, and what it is made of: the
// resource timings of the same load (JS modules, the wasm's fetch) and, on other fresh pages,
// the same steps taken one by one (the glue's init with a module compiled apart, then ready(),
// whose own work is then only reading the tables). Beside it: import() of the peer bundle
// (card-validator + jose's JWE encrypt) on fresh pages of the same run.
async function readySection({ browser, url }) {
  const { jwe } = await peerBundles();
  const whole = [];
  const steps = [];
  const peer = [];
  for (let i = 0; i < 9; i++) {
    whole.push(await freshPage(browser, url, (page) => page.evaluate(async () => {
      const t0 = performance.now();
      const m = await import('/pkg/index.js');
      const imported = performance.now();
      await m.ready();
      const done = performance.now();
      const entries = performance.getEntriesByType('resource').filter((e) => e.name.includes('/pkg/'));
      const wasm = entries.find((e) => e.name.endsWith('.wasm'));
      return {
        total: done - t0,
        modules: imported - t0,
        wasmFetch: wasm.responseEnd - wasm.startTime,
        afterBytes: done - wasm.responseEnd,
        wasmRequestedAfter: wasm.startTime - imported,
      };
    })));
    steps.push(await freshPage(browser, url, (page) => page.evaluate(async () => {
      const t0 = performance.now();
      const glue = await import('/pkg/wasm/cardseal.js');
      const m = await import('/pkg/index.js');
      const t1 = performance.now();
      const bytes = await (await fetch('/pkg/wasm/cardseal_bg.wasm')).arrayBuffer();
      const t2 = performance.now();
      const module = await WebAssembly.compile(bytes);
      const t3 = performance.now();
      await glue.default({ module_or_path: module });
      const t4 = performance.now();
      // The glue is initialized: what is left of ready() is reading the tables.
      await m.ready(module);
      const t5 = performance.now();
      return { modules: t1 - t0, fetch: t2 - t1, compile: t3 - t2, instantiate: t4 - t3, tables: t5 - t4, sum: t5 - t0 };
    })));
    if (!jwe.error) {
      peer.push(await freshPage(browser, url, (page) => page.evaluate(async (file) => {
        const t0 = performance.now();
        await import(`/out/${file}`);
        return performance.now() - t0;
      }, jwe.file)));
    }
  }
  const med = (xs, k) => median(xs.map((x) => x[k]));
  const row = (metric, cardseal) => ({ section: 'startup', metric, unit: 'ms', cardseal });
  return {
    details: { whole, steps, peerMs: peer },
    rows: [
      { ...row(`import() to ready() resolved, fresh page (median of ${whole.length})`, med(whole, 'total')),
        peer: peer.length ? { name: `import() of ${jwe.name}`, value: median(peer) } : undefined, target: { max: 25 } },
      row('  import(): the JS modules', med(whole, 'modules')),
      row('  wasm fetch (request to last byte)', med(whole, 'wasmFetch')),
      row('  after the wasm\'s last byte: compile tail + instantiate + tables', med(whole, 'afterBytes')),
      row(`  step by step (other fresh pages; sum ${med(steps, 'sum').toFixed(1)} ms): modules`, med(steps, 'modules')),
      row('    wasm fetch + arrayBuffer()', med(steps, 'fetch')),
      row('    WebAssembly.compile of the bytes (not streaming)', med(steps, 'compile')),
      row('    instantiate (the glue\'s init with the module)', med(steps, 'instantiate')),
      row('    tables read at ready()', med(steps, 'tables')),
    ],
  };
}

const SECTIONS = [
  { name: 'validation', run: validationSection },
  { name: 'size', run: sizeSection },
  { name: 'startup', run: readySection },
  { name: 'seal', run: sealSection },
  { name: 'tokenize', run: tokenizeSection },
  { name: 'snippet', run: snippetSection },
  { name: 'fields', run: fieldsSection },
  { name: 'vault', run: vaultSection },
  { name: 'forward', run: forwardSection },
  { name: 'unseal-timing', run: unsealTimingSection },
  { name: 'migrate', run: migrateSection },
  { name: 'scale', run: (ctx) => import('./sections.mjs').then((m) => m.scaleSection(ctx)) },
];

function formatValue(value, unit) {
  if (value === undefined || value === null) return '';
  if (unit === 'B') return `${(value / 1024).toFixed(1)} KiB (${value.toLocaleString('en')} B)`;
  if (unit === 'µs') return `${value.toFixed(value < 10 ? 2 : 1)} µs`;
  if (unit === 'ms') return `${value.toFixed(value < 1 ? 3 : value < 10 ? 2 : 1)} ms`;
  return `${Number.isInteger(value) ? value : value.toFixed(2)} ${unit}`;
}

function formatTarget(row) {
  const t = row.target;
  if (!t) return '';
  const [op, bound, met] = t.max !== undefined
    ? ['≤', t.max, row.cardseal <= t.max]
    : ['≥', t.min, row.cardseal >= t.min];
  const shown = Number.isInteger(bound) && row.unit !== 'B' ? `${bound} ${row.unit}` : formatValue(bound, row.unit);
  return `${op} ${shown}  ${met ? 'met' : 'MISSED'}`;
}

// cardseal ÷ peer, for every row that has both from this run: below 1 is smaller or faster,
// except for rates (tokens/s), where above 1 is more.
function formatRatio(r) {
  if (!r.peer || typeof r.cardseal !== 'number' || typeof r.peer.value !== 'number' || r.peer.value === 0) return '';
  const x = r.cardseal / r.peer.value;
  return `${x.toFixed(x < 0.1 ? 3 : 2)}×`;
}

function printTable(rows) {
  const header = ['section', 'metric', 'cardseal', 'peer (same run)', 'cardseal/peer', 'target'];
  const lines = rows.map((r) => [
    r.section,
    r.metric,
    r.error ? `error: ${r.error}` : r.text ?? formatValue(r.cardseal, r.unit),
    r.peer ? `${formatValue(r.peer.value, r.unit)}  ${r.peer.name}` : '',
    formatRatio(r),
    formatTarget(r),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  console.log(fmt(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const l of lines) console.log(fmt(l));
}

async function main() {
  const started = new Date();
  await bundlePeers();
  const server = await serve({ root: benchDir, routes: { '/out/': outDir } });
  const browser = await launchChromium();
  const rows = [];
  const details = {};
  let failed = false;
  try {
    // `node bench/run.mjs --only seal,tokenize` runs some sections only.
    const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1].split(',') : null;
    for (const section of SECTIONS.filter((x) => !only || only.includes(x.name))) {
      process.stderr.write(`[bench] ${section.name}…\n`);
      try {
        const out = await section.run({ browser, url: server.url });
        rows.push(...out.rows);
        details[section.name] = out.details;
      } catch (err) {
        failed = true;
        rows.push({ section: section.name, metric: '(did not run)', error: err.message.split('\n')[0] });
        details[section.name] = { error: String(err.stack || err) };
      }
    }
  } finally {
    await browser.close().catch(() => {});
    await server.close();
  }

  const environment = {
    date: started.toISOString(),
    chromium: browser.version(),
    node: process.version,
    cpu: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
    loadavg: loadavg().map((x) => Number(x.toFixed(2))),
  };
  console.log(`\ncardseal benchmark · Chromium ${environment.chromium} (headless) · ${environment.cpu} · load ${environment.loadavg.join(' ')}\n`);
  printTable(rows);
  const v = details.validation;
  if (v && !v.error) {
    console.log(`\nSame ${v.count.toLocaleString('en')} numbers for both (seed ${v.seed}); valid: cardseal ${v.valid.cardseal.toLocaleString('en')}, card-validator ${v.valid.peer.toLocaleString('en')}.`);
  }
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'results.json'), JSON.stringify({ environment, rows, details }, null, 2) + '\n');
  console.log('Results: bench/.out/results.json');
  if (failed) process.exitCode = 1;
}

main().catch((err) => {
  console.error(`[bench] failed: ${err.stack || err}`);
  process.exit(1);
});
