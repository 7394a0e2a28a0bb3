// `npm start`, after the build: serves the demo shop (www/ and /pkg/) on 127.0.0.1.
//
// SHOP_PORT picks the port (default 8080). If it is taken, a free port is used instead and the
// banner says so. Ctrl-C or SIGTERM stops every service cleanly.
//
// Each service is one entry in `services`: a start function that resolves to
// `{ name, url, close }`. The vault will join the list the same way.
import { join } from 'node:path';

import { repoRoot, serve } from './serve.mjs';

const DEFAULT_SHOP_PORT = 8080;

// The demo runs under the CSP DESIGN.md promises merchants is enough: no inline scripts, no
// eval, only wasm compilation on top of same-origin scripts.
const SHOP_CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

function portFromEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`${name}=${JSON.stringify(raw)} is not a port number (0-65535)`);
  }
  return port;
}

// Binds `port`; if it is in use, binds a free one and says so.
async function serveWithFallback(name, options) {
  try {
    return await serve(options);
  } catch (err) {
    if (err.code !== 'EADDRINUSE' && err.code !== 'EACCES') throw err;
    const server = await serve({ ...options, port: 0 });
    console.log(`[start] ${name}: port ${options.port} is ${err.code === 'EADDRINUSE' ? 'in use' : 'not allowed'}; using ${server.port} instead.`);
    return server;
  }
}

async function startShop() {
  const port = portFromEnv('SHOP_PORT', DEFAULT_SHOP_PORT);
  const server = await serveWithFallback('shop', {
    root: join(repoRoot, 'www'),
    port,
    headers: { 'Content-Security-Policy': SHOP_CSP },
  });
  return { name: 'shop', url: server.url, close: server.close };
}

const services = [startShop];

const running = [];
let stopping = false;

async function stop(signal) {
  if (stopping) {
    // A second Ctrl-C means "now".
    process.exit(130);
  }
  stopping = true;
  console.log(`\n[start] ${signal}: stopping…`);
  // Reverse order: whatever started last may depend on what started first.
  for (const s of running.reverse()) {
    await s.close().catch((err) => console.error(`[start] ${s.name}: ${err.message}`));
  }
  process.exit(0);
}

process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));

try {
  for (const start of services) running.push(await start());
} catch (err) {
  console.error(`[start] failed: ${err.message}`);
  for (const s of running.reverse()) await s.close().catch(() => {});
  process.exit(1);
}

const shop = running.find((s) => s.name === 'shop');
console.log('');
console.log(`  cardseal demo shop is running.`);
console.log(`  Open ${shop.url}`);
console.log('');
console.log('  Press Ctrl-C to stop.');
