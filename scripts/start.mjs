// `npm start`, after the build: starts the vault (embedded SQLite, the demo account, the built-in
// test processor) and the demo shop on 127.0.0.1, and prints where to go and the demo keys.
//
// VAULT_PORT (default 8787) and SHOP_PORT (default 8080) pick the ports; a port in use is
// replaced by a free one, and the banner says so. Ctrl-C or SIGTERM stops both cleanly.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

import { startShop } from '../www/shop.mjs';
import { repoRoot } from './serve.mjs';

const dataDir = process.env.CARDSEAL_DATA_DIR || join(repoRoot, '.data/vault');

function portFromEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`${name}=${JSON.stringify(raw)} is not a port number (0-65535)`);
  }
  return port;
}

// `port` if it is free, else a free one (and a note for the banner).
function pickPort(name, port, notes) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => {
      const t = net.createServer();
      t.listen(0, '127.0.0.1', () => {
        const free = t.address().port;
        t.close(() => {
          notes.push(`${name}: port ${port} is in use; using ${free} instead.`);
          resolve(free);
        });
      });
    });
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(port)));
  });
}

function startVault(port) {
  const bin = join(repoRoot, 'target/debug/cardseal-vault');
  mkdirSync(dataDir, { recursive: true });
  const args = ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--demo', '--snippet-dir', join(repoRoot, 'pkg/snippet')];
  const child = spawn(bin, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keys = {};
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (d) => {
      out += d.toString();
      for (const line of out.split('\n')) {
        const m = line.match(/^(account|publishable_key|secret_key|restricted_key)\s+(\S+)/);
        if (m) keys[m[1]] = m[2];
        const s = line.match(/^snippet\s+(\S+) integrity=(\S+)/);
        if (s) keys.snippet = { src: s[1], integrity: s[2] };
        const l = line.match(/listening on (http:\/\/\S+)/);
        if (l && keys.publishable_key && keys.secret_key) {
          child.stdout.off('data', onData);
          child.stderr.off('data', onData);
          // From here on the vault's log lines go to this terminal.
          child.stdout.pipe(process.stdout);
          child.stderr.pipe(process.stderr);
          resolve({
            name: 'vault', url: l[1], keys, child,
            close: () => new Promise((r) => {
              if (child.exitCode !== null) return r();
              child.once('exit', r);
              child.kill('SIGTERM');
            }),
          });
        }
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`cardseal-vault exited (${code}) before it was ready:\n${out}`)));
  });
}

const running = [];
let stopping = false;

async function stop(signal) {
  if (stopping) process.exit(130);
  stopping = true;
  console.log(`\n[start] ${signal}: stopping…`);
  for (const s of running.reverse()) await s.close().catch((e) => console.error(`[start] ${s.name}: ${e.message}`));
  process.exit(0);
}
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));

try {
  console.log('[start] building cardseal-vault…');
  execFileSync('cargo', ['build', '--quiet', '-p', 'cardseal-vault'], { cwd: repoRoot, stdio: 'inherit' });
  const notes = [];
  const vault = await startVault(await pickPort('vault', portFromEnv('VAULT_PORT', 8787), notes));
  running.push(vault);
  const shop = await startShop({
    port: await pickPort('shop', portFromEnv('SHOP_PORT', 8080), notes),
    vaultUrl: vault.url,
    publishableKey: vault.keys.publishable_key,
    secretKey: vault.keys.secret_key,
    snippet: vault.keys.snippet,
    quiet: false,
  });
  running.push({ name: 'shop', close: shop.close });
  console.log(`
  cardseal demo is running.${notes.map((n) => `\n  (${n})`).join('')}

    Open the shop:   ${shop.url}/
    Vault:           ${vault.url}   (data in ${dataDir})
    Snippet:         <script src="${vault.keys.snippet.src}"
                             integrity="${vault.keys.snippet.integrity}" crossorigin="anonymous" …>

  Demo account ${vault.keys.account}
    publishable key  ${vault.keys.publishable_key}
    secret key       ${vault.keys.secret_key}
    restricted key   ${vault.keys.restricted_key}   (scope: detokenize)

  Test cards: 4242 4242 4242 4242 succeeds; 4000 0000 0000 0002 is declined;
              4000 0000 0000 9995 has insufficient funds. Any future expiry, any CVC.

  Press Ctrl-C to stop.
`);
} catch (err) {
  console.error(`[start] failed: ${err.message}`);
  for (const s of running.reverse()) await s.close().catch(() => {});
  process.exit(1);
}
