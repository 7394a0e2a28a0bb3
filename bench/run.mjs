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
import { chromium } from 'playwright-core';

import { repoRoot, serve } from '../scripts/serve.mjs';
import { fieldsSection, forwardSection, sealSection, snippetSection, tokenizeSection, vaultSection } from './sections.mjs';

const benchDir = join(repoRoot, 'bench');
const outDir = join(benchDir, '.out');
const pkgDir = join(repoRoot, 'pkg');

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
// The network here is closed: keep Chromium from calling home.
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

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

async function sizeSection({ browser, url }) {
  const pkg = gzipSizes(pkgDir, await loadedPkgFiles(browser, url));
  const wasm = Object.entries(pkg.files).find(([f]) => f.endsWith('.wasm'));
  if (!wasm) throw new Error('the page loaded no .wasm from /pkg/');
  const rows = [
    { section: 'size', metric: `wasm + JS glue as loaded, gzipped -9 (${Object.keys(pkg.files).length} files)`, unit: 'B', cardseal: pkg.gzip },
    { section: 'size', metric: '  of which the wasm', unit: 'B', cardseal: wasm[1].gzip },
  ];
  const details = { package: pkg };
  // The script-tag build, when the build makes one.
  const snippetDir = join(pkgDir, 'snippet');
  if (existsSync(snippetDir)) {
    details.snippet = gzipSizes(snippetDir, readdirSync(snippetDir).filter((f) => /\.(js|wasm)$/.test(f)).sort());
    rows.push({ section: 'size', metric: 'snippet (pkg/snippet/), gzipped -9', unit: 'B', cardseal: details.snippet.gzip });
  }
  return { details, rows };
}

// import('/pkg/index.js') + ready(), each time in a fresh browser context (empty cache, as a
// first visit), over loopback.
async function readySection({ browser, url }) {
  const samples = [];
  for (let i = 0; i < 9; i++) {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(url + 'blank.html');
      samples.push(await page.evaluate(async () => {
        const t0 = performance.now();
        const m = await import('/pkg/index.js');
        await m.ready();
        return performance.now() - t0;
      }));
    } finally {
      await context.close();
    }
  }
  return {
    details: { samplesMs: samples },
    rows: [{
      section: 'startup',
      metric: `import() to ready() resolved, fresh page (median of ${samples.length})`,
      unit: 'ms',
      cardseal: median(samples),
    }],
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
  const shown = Number.isInteger(bound) ? `${bound} ${row.unit}` : formatValue(bound, row.unit);
  return `${op} ${shown}  ${met ? 'met' : 'MISSED'}`;
}

function printTable(rows) {
  const header = ['section', 'metric', 'cardseal', 'peer', 'target'];
  const lines = rows.map((r) => [
    r.section,
    r.metric,
    r.error ? `error: ${r.error}` : r.text ?? formatValue(r.cardseal, r.unit),
    r.peer ? `${formatValue(r.peer.value, r.unit)}  ${r.peer.name}` : '',
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
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
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
