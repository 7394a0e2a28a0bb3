// Servers the browser and end-to-end tests talk to, all on 127.0.0.1: a real cardseal-vault, a
// server that never answers, and a proxy that fails on command. Used by with-servers.mjs.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Where a vault started with `--snippet-dir` serves the snippet, and its integrity= value, as it
 * prints them at start: `{ src, integrity }`. Fails the test if it printed none.
 */
export function snippetTag(vault) {
  const logs = vault.logs.join('');
  const line = logs.match(/snippet\s+(\S+) integrity=(\S+)/);
  assert.ok(line, `the vault prints the snippet tag: ${logs}`);
  return { src: line[1], integrity: line[2] };
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** GET `${url}/healthz` is 200; over https, trusting only `ca` (PEM). */
function healthy(url, ca) {
  if (!ca) return fetch(`${url}/healthz`).then((r) => r.ok);
  return new Promise((resolve, reject) => {
    https.get(`${url}/healthz`, { ca }, (res) => { res.resume(); resolve(res.statusCode === 200); }).on('error', reject);
  });
}

async function waitHealthy(url, child, ca, ms = 30_000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`cardseal-vault exited with ${child.exitCode}`);
    try {
      if (await healthy(url, ca)) return;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`cardseal-vault did not become healthy at ${url}`);
}

/**
 * Starts `cardseal-vault serve` with a fresh data dir and one test account allowed for
 * http://127.0.0.1:* and http://localhost:*. Returns its URL, keys, captured logs, stop() and
 * restart() (the same port and data, so a page that lost the vault can find it again).
 * `ca` (PEM): the vault serves https (pass `--tls-cert`/`--tls-key` in `args`); its URL is
 * https://, and the health check trusts that CA.
 */
export async function startVault({ bin = join(root, 'target/debug/cardseal-vault'), args = [], env = {}, origins, ca } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'cardseal-vault-'));
  // A vault outside --demo needs a master key kept apart from its data: one per test vault.
  env = { CARDSEAL_MASTER_KEY: randomBytes(32).toString('hex'), ...env };
  const allowed = origins ?? ['http://127.0.0.1:*', 'http://localhost:*'];
  const created = JSON.parse(execFileSync(bin, ['accounts', 'create', '--data-dir', dataDir, '--name', 'test',
    ...allowed.flatMap((o) => ['--allowed-origin', o]), '--json'], { encoding: 'utf8', env: { ...process.env, ...env } }));
  const port = await freePort();
  const url = `${ca ? 'https' : 'http'}://127.0.0.1:${port}`;
  const logs = [];
  const run = async () => {
    const child = spawn(bin, ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, ...args], {
      // The tests pay with the same few test cards many times over, all from 127.0.0.1: the
      // card-testing limits (tested in the vault's own suite) are off unless a test sets them.
      env: { ...process.env, CARDSEAL_CARD_RATE: '0', CARDSEAL_DECLINE_RATE: '0', CARDSEAL_IP_RATE: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (d) => logs.push(d.toString()));
    child.stderr.on('data', (d) => logs.push(d.toString()));
    await waitHealthy(url, child, ca);
    return child;
  };
  const vault = {
    url, dataDir, logs,
    child: await run(),
    account: created.account,
    pk: created.publishable_key,
    sk: created.secret_key,
    rk: created.restricted_key,
    async stop({ keepData = false } = {}) {
      const { child } = vault;
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      if (!keepData) rmSync(dataDir, { recursive: true, force: true });
    },
    /** Starts it again after `stop({ keepData: true })`. */
    async restart() {
      vault.child = await run();
    },
  };
  return vault;
}

function cors(res) {
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type, Idempotency-Key');
  res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
}

/** A server that accepts connections and requests but never answers them. */
export async function startHangServer() {
  const pending = new Set();
  const server = http.createServer((req, res) => { pending.add(res); });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    async stop() {
      for (const res of pending) res.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/**
 * A proxy to the vault that can be told, through `POST /__control?fail=N&mode=before|after`, to
 * answer the next N `POST /v1/tokens` with 503: `before` without forwarding, `after` once the
 * vault has answered (so the vault did make a token); `inuse` answers 409 `idempotency_key_in_use`;
 * `expired` 400 `encryption_key_expired` (the vault rotated its key); `busy` 503 with a
 * `Retry-After` of an hour; `teapot` 418 with a body that is not JSON. `GET /__stats` gives what
 * it saw, the key fetches too.
 */
export async function startFlakyProxy(target) {
  let fail = 0;
  let mode = 'before';
  let stats = { posts: 0, idempotencyKeys: [], tokenIds: [], keyFetches: 0 };
  const canned = {
    expired: [400, {}, JSON.stringify({ error: { type: 'invalid_request_error', code: 'encryption_key_expired', message: 'Fetch the keys again.' } })],
    busy: [503, { 'retry-after': '3600' }, JSON.stringify({ error: { type: 'api_error', code: 'service_unavailable', message: 'Busy.' } })],
    teapot: [418, { 'content-type': 'text/plain' }, 'teapot'],
  };
  const server = http.createServer(async (req, res) => {
    cors(res);
    const u = new URL(req.url, 'http://x');
    if (req.method === 'OPTIONS') { res.writeHead(204); res.end(); return; }
    if (u.pathname === '/__control') {
      fail = Number(u.searchParams.get('fail') ?? 0);
      mode = u.searchParams.get('mode') ?? 'before';
      stats = { posts: 0, idempotencyKeys: [], tokenIds: [], keyFetches: 0 };
      res.writeHead(204); res.end(); return;
    }
    if (u.pathname === '/__stats') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(stats)); return;
    }
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    const isTokenPost = req.method === 'POST' && u.pathname === '/v1/tokens';
    if (isTokenPost) {
      stats.posts++;
      stats.idempotencyKeys.push(req.headers['idempotency-key'] ?? null);
    }
    if (isTokenPost && fail > 0 && mode === 'before') {
      fail--;
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { type: 'api_error', code: 'service_unavailable', message: 'Try again.' } }));
      return;
    }
    if (req.method === 'GET' && u.pathname === '/v1/encryption_keys') stats.keyFetches++;
    if (isTokenPost && fail > 0 && canned[mode]) {
      fail--;
      const [status, headers, text] = canned[mode];
      res.setHeader('Access-Control-Expose-Headers', 'Retry-After');
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(text);
      return;
    }
    if (isTokenPost && fail > 0 && mode === 'inuse') {
      // What the vault answers while an earlier request with the same key is still running.
      fail--;
      res.writeHead(409, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { type: 'idempotency_error', code: 'idempotency_key_in_use', message: 'In progress.' } }));
      return;
    }
    const headers = {};
    for (const h of ['authorization', 'content-type', 'idempotency-key', 'origin']) {
      if (req.headers[h]) headers[h] = req.headers[h];
    }
    let upstream;
    try {
      upstream = await fetch(target + req.url, { method: req.method, headers, body: req.method === 'GET' ? undefined : body });
    } catch {
      res.writeHead(502); res.end(); return;
    }
    const text = await upstream.text();
    if (isTokenPost && upstream.ok) {
      try { stats.tokenIds.push(JSON.parse(text).id); } catch { /* not JSON */ }
    }
    if (isTokenPost && fail > 0 && mode === 'after') {
      fail--;
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { type: 'api_error', code: 'service_unavailable', message: 'Try again.' } }));
      return;
    }
    res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
    res.end(text);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    async stop() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
