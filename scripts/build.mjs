// Builds the npm package into pkg/: the wasm (cargo, wasm-bindgen, wasm-opt) plus js/.
// Skips the wasm steps when nothing they read changed since the last build.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = join(root, 'pkg');
const wasmOut = join(pkg, 'wasm');
const stamp = join(pkg, '.build-stamp');
const quiet = process.argv.includes('--quiet');
const log = (...a) => { if (!quiet) console.log(...a); };

function newest(path) {
  if (!existsSync(path)) return 0;
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  return Math.max(s.mtimeMs, ...readdirSync(path).map((f) => newest(join(path, f))));
}

function run(cmd, args) {
  execFileSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
}

const inputs = Math.max(newest(join(root, 'src')), newest(join(root, 'Cargo.toml')), newest(join(root, 'Cargo.lock')), newest(join(root, '.cargo')));
const upToDate = existsSync(stamp) && newest(stamp) >= inputs && existsSync(join(wasmOut, 'cardseal_bg.wasm'));

if (!upToDate) {
  log('[build] cargo build --profile wasm --target wasm32-unknown-unknown');
  run('cargo', ['build', '--quiet', '--profile', 'wasm', '--lib', '--target', 'wasm32-unknown-unknown', '-p', 'cardseal']);
  mkdirSync(wasmOut, { recursive: true });
  run('wasm-bindgen', ['--target', 'web', '--out-dir', wasmOut, '--out-name', 'cardseal', '--no-typescript',
    join(root, 'target/wasm32-unknown-unknown/wasm/cardseal.wasm')]);
  // The npm binaryen, never Debian's: its old wasm-opt breaks wasm-bindgen's externref table.
  const wasmOpt = join(root, 'node_modules/.bin/wasm-opt');
  const bg = join(wasmOut, 'cardseal_bg.wasm');
  run(wasmOpt, ['-Oz', '--strip-debug', '--strip-producers', '--enable-reference-types', '--enable-bulk-memory', '--enable-nontrapping-float-to-int',
    '--enable-sign-ext', '--enable-mutable-globals', '--enable-multivalue', bg, '-o', bg]);
  writeFileSync(stamp, new Date().toISOString());
}

mkdirSync(pkg, { recursive: true });
const { build, transform } = await import('esbuild');
// The modules ship minified (what a page loads is half the bytes), each with a source map that
// holds the readable source from js/ for the browser's developer tools. Not bundled: the
// package keeps its module structure, so a bundler still drops what a page does not import.
// How every module of the package is written: ES2022, minified, with a linked source map.
const shippedModule = {
  format: 'esm',
  target: ['es2022'],
  minify: true,
  sourcemap: 'linked',
  sourcesContent: true,
  legalComments: 'none',
  logLevel: 'error',
};
for (const f of readdirSync(join(root, 'js'))) {
  if (!f.endsWith('.js')) {
    copyFileSync(join(root, 'js', f), join(pkg, f));
    continue;
  }
  await build({ ...shippedModule, entryPoints: [join(root, 'js', f)], outfile: join(pkg, f), bundle: false });
}
copyFileSync(join(pkg, 'index.d.ts'), join(pkg, 'node.d.ts'));
// The wasm-bindgen glue too (generated, so no map).
const glue = join(wasmOut, 'cardseal.js');
if (!readFileSync(glue, 'utf8').startsWith('/*! minified */')) {
  const { code } = await transform(readFileSync(glue, 'utf8'), { format: 'esm', target: 'es2022', minify: true, legalComments: 'none' });
  writeFileSync(glue, `/*! minified */\n${code}`);
}

// The snippet: one classic script (IIFE) with the wasm's hash built in, and the wasm beside it.
const snippetDir = join(pkg, 'snippet');
mkdirSync(snippetDir, { recursive: true });
copyFileSync(join(wasmOut, 'cardseal_bg.wasm'), join(snippetDir, 'cardseal_bg.wasm'));
const classic = (entry, outfile, define = {}) => build({
  entryPoints: [join(pkg, entry)],
  outfile: join(snippetDir, outfile),
  bundle: true,
  format: 'iife',
  target: ['es2020'],
  minify: true,
  legalComments: 'none',
  logLevel: 'error',
  // import.meta.url is only the default wasm location; the scripts always pass their own.
  define: { 'import.meta.url': 'undefined', __CARDSEAL_WASM_SRI__: JSON.stringify(sriOf(join(snippetDir, 'cardseal_bg.wasm'))), ...define },
});

// Hosted fields: the field documents' script first, since the version of the field documents
// (the package version and a hash of that script and the wasm, which the vault computes the
// same way in vault/src/fields.rs) is built into the merchant-side code.
await classic('frame.js', 'cardseal-frame.js');
const packageVersion = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
const fieldsHash = createHash('sha256')
  .update(readFileSync(join(snippetDir, 'cardseal-frame.js')))
  .update(readFileSync(join(snippetDir, 'cardseal_bg.wasm')))
  .digest('hex').slice(0, 8);
const fieldsVersion = `${packageVersion}-${fieldsHash}`;
writeFileSync(join(pkg, 'fields-version.js'),
  `// The version of the field documents this build's vault serves (written by scripts/build.mjs).\nexport const FIELDS_VERSION = ${JSON.stringify(fieldsVersion)};\n`);
await classic('snippet.js', 'cardseal.js');
// The small snippet for pages with hosted fields only: no wasm, no validators.
await classic('fields-entry.js', 'cardseal-fields.js');

// The browser entries, each one file: a page that imports the package loads `index.js` and the
// wasm, not a waterfall of modules (which measured ~95 ms of a 125 ms start on loopback). Each
// holds its own copy of CardSealError, which `instanceof` recognizes by a mark (js/error.js).
// Node (node.js) keeps the separate modules; so do the snippets' builds.
const fromPkg = new Set(['./wasm/cardseal.js', './fields-version.js']);
for (const entry of ['index.js', 'fields.js']) {
  await build({
    ...shippedModule,
    entryPoints: [join(root, 'js', entry)],
    outfile: join(pkg, entry),
    allowOverwrite: true,
    bundle: true,
    plugins: [{
      name: 'pkg-layout',
      setup(b) {
        b.onResolve({ filter: /^\.\// }, (args) => (fromPkg.has(args.path) ? { path: join(pkg, args.path) } : undefined));
      },
    }],
  });
}

// The loader the merchant hosts beside its pages (js/loader.js): one small classic script.
await build({
  entryPoints: [join(pkg, 'loader.js')],
  outfile: join(pkg, 'loader/cardseal-loader.js'),
  bundle: true,
  format: 'iife',
  target: ['es2020'],
  minify: true,
  legalComments: 'none',
  logLevel: 'error',
});

function sriOf(file) {
  return 'sha384-' + createHash('sha384').update(readFileSync(file)).digest('base64');
}

const sri = (file) => 'sha384-' + createHash('sha384').update(readFileSync(file)).digest('base64');
const shipped = ['wasm/cardseal_bg.wasm', 'index.js'];
let raw = 0, gz = 0;
for (const f of shipped) {
  const bytes = readFileSync(join(pkg, f));
  raw += bytes.length;
  gz += gzipSync(bytes, { level: 9 }).length;
}
const snippetFiles = ['snippet/cardseal.js', 'snippet/cardseal_bg.wasm'];
const fieldFiles = ['snippet/cardseal-fields.js', 'snippet/cardseal-frame.js'];
const gz9 = (f) => gzipSync(readFileSync(join(pkg, f)), { level: 9 }).length;
const snippetGz = snippetFiles.reduce((n, f) => n + gzipSync(readFileSync(join(pkg, f)), { level: 9 }).length, 0);
const summary = {
  version: JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version,
  rawBytes: raw,
  gzipBytes: gz,
  snippetGzipBytes: snippetGz,
  fieldsVersion,
  // What a hosted-fields page loads itself, and what each field document loads.
  fieldsParentGzipBytes: gz9('snippet/cardseal-fields.js'),
  fieldsFrameGzipBytes: gz9('snippet/cardseal-frame.js') + gz9('snippet/cardseal_bg.wasm'),
  sri: Object.fromEntries([...shipped, ...snippetFiles, ...fieldFiles].map((f) => [f, sri(join(pkg, f))])),
};
writeFileSync(join(pkg, 'build-info.json'), JSON.stringify(summary, null, 2) + '\n');
log(`[build] pkg/ ready: ${raw} bytes, ${gz} bytes gzipped (wasm + glue + wrapper); snippet ${snippetGz} bytes gzipped`);
log(`[build] hosted fields ${fieldsVersion}: merchant page ${summary.fieldsParentGzipBytes} bytes gzipped; each field document ${summary.fieldsFrameGzipBytes} bytes gzipped (script + wasm)`);
for (const [f, h] of Object.entries(summary.sri)) log(`[build]   ${f}  integrity="${h}"`);
