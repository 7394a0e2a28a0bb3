// The vault client (js/client.js) in Node against servers on 127.0.0.1 that this test starts: a
// real vault, a server that never answers, a flaky proxy in front of the vault, and a scripted
// fake vault for key rotation and Retry-After.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';

import * as jose from 'jose';
import { chromium } from 'playwright-core';
import { CardSeal } from 'cardseal';

import { retryAfterMs } from '../../pkg/client.js';
import { serve } from '../../scripts/serve.mjs';
import { startFlakyProxy, startHangServer, startVault } from '../support/servers.mjs';

let vault, hang, flaky;
before(async () => {
  vault = await startVault();
  hang = await startHangServer();
  flaky = await startFlakyProxy(vault.url);
});
after(async () => {
  await Promise.all([vault?.stop(), hang?.stop(), flaky?.stop()]);
});

const card = (number) => ({ number, exp_month: 12, exp_year: 2035, cvc: '123', name: 'Ada Lovelace' });
const jwks = async () => (await fetch(`${vault.url}/.well-known/jwks.json`)).json();
const options = (vaultUrl, extra = {}) => ({ vaultUrl, publishableKey: vault.pk, ...extra });
const control = (query) => fetch(`${flaky.url}/__control?${query}`, { method: 'POST' });
const stats = async () => (await fetch(`${flaky.url}/__stats`)).json();

async function rejects(promise, expected) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.name, 'CardSealError');
    for (const [k, v] of Object.entries(expected)) assert.equal(e[k], v, k);
    return true;
  });
}

test('tokenize against a real vault: a card token and a CVC token', async () => {
  const seal = await CardSeal.create(options(vault.url));
  assert.ok(seal.kid);
  const token = await seal.tokenize(card('4242 4242 4242 4242'));
  assert.match(token.id, /^tok_.{22}$/);
  assert.equal(token.type, 'card');
  assert.equal(token.used, false);
  assert.equal(token.card.last4, '4242');
  assert.equal(token.card.brand, 'visa');
  // Nothing of the number but the last four digits comes back.
  assert.ok(!JSON.stringify(token).includes('42424242'));
  const cvc = await seal.tokenizeCvc('123');
  assert.equal(cvc.type, 'cvc');
});

test('an invalid card rejects before any request', async () => {
  await control('fail=0');
  const seal = await CardSeal.create(options(flaky.url, { vaultKey: await jwks() }));
  await rejects(seal.tokenize(card('4242 4242 4242 4241')), { code: 'invalid_number', param: 'number' });
  await rejects(seal.tokenizeCvc('12a'), { param: 'cvc' });
  assert.equal((await stats()).posts, 0);
});

test('a server that never answers times out, keys and tokens alike', async () => {
  // `timeout`, not `network_error`: the snippet tells a stalled vault from a refused one.
  await rejects(CardSeal.create(options(hang.url, { timeoutMs: 400 })), { code: 'timeout', type: 'api_connection_error' });
  const seal = await CardSeal.create(options(hang.url, { vaultKey: await jwks(), timeoutMs: 400, retries: 1 }));
  await rejects(seal.tokenize(card('4242424242424242')), { code: 'timeout', type: 'api_connection_error' });
});

test('a refused connection is a network_error after the retries', async () => {
  const closed = http.createServer();
  await new Promise((r) => closed.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${closed.address().port}`;
  await new Promise((r) => closed.close(r));
  await rejects(CardSeal.create(options(url)), { code: 'network_error', type: 'api_connection_error' });
  const seal = await CardSeal.create(options(url, { vaultKey: await jwks(), retries: 1 }));
  await rejects(seal.tokenize(card('4242424242424242')), { code: 'network_error', type: 'api_connection_error' });
});

async function throughFlaky(mode, number) {
  await control(`fail=1&mode=${mode}`);
  const seal = await CardSeal.create(options(flaky.url, { vaultKey: await jwks() }));
  const token = await seal.tokenize(card(number));
  const s = await stats();
  assert.equal(s.posts, 2, 'one failure, one retry');
  return { token, ids: s.tokenIds, keys: s.idempotencyKeys };
}

test('a 503 is retried with the same idempotency key and makes one token', async () => {
  const { token, ids, keys } = await throughFlaky('before', '5555 5555 5555 4444');
  assert.equal(keys.length, 2);
  assert.ok(keys[0].length >= 16);
  assert.equal(keys[0], keys[1]);
  assert.deepEqual(ids, [token.id]);
});

test('a 503 after the vault made the token replays that token', async () => {
  // The vault made a token but the answer was lost: the retry, with the same idempotency key,
  // gets the same token back instead of a second one.
  const { token, ids, keys } = await throughFlaky('after', '4242 4242 4242 4242');
  assert.equal(keys[0], keys[1]);
  assert.deepEqual(ids, [token.id, token.id], 'the vault answered both attempts, with one token');
});

test('a 409 idempotency_key_in_use is retried', async () => {
  const { token, ids, keys } = await throughFlaky('inuse', '4242 4242 4242 4242');
  assert.equal(keys[0], keys[1]);
  assert.deepEqual(ids, [token.id]);
});

test('bad options reject clearly, before any request', async () => {
  await rejects(CardSeal.create(options('ftp://x')), { code: 'invalid_vault_url', param: 'vaultUrl' });
  await rejects(CardSeal.create({ ...options(vault.url), publishableKey: 'sk_test_oops' }), { code: 'invalid_publishable_key' });
  await rejects(CardSeal.create(options(vault.url, { vaultKey: 'not a key' })), { code: 'invalid_key' });
  await rejects(CardSeal.create(options('http://exa mple')), { code: 'invalid_vault_url', param: 'vaultUrl' });
});

/** A scripted vault: its JWKS, and the answers to the token POSTs in turn. */
async function fakeVault(answers) {
  const pair = async (kid) => {
    const k = await jose.generateKeyPair('RSA-OAEP-256', { modulusLength: 2048, extractable: true });
    return { kid, jwk: { ...(await jose.exportJWK(k.publicKey)), kid, use: 'enc', alg: 'RSA-OAEP-256' } };
  };
  const keys = [await pair('old'), await pair('new')];
  const seen = { keyFetches: 0, posts: [] };
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    if (req.url === '/v1/encryption_keys') {
      // The first fetch sees the old key, later ones the new one.
      const key = keys[Math.min(seen.keyFetches++, 1)];
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [key.jwk] }));
      return;
    }
    const body = JSON.parse(Buffer.concat(chunks).toString());
    seen.posts.push({ kid: jose.decodeProtectedHeader(body.card).kid, idempotencyKey: req.headers['idempotency-key'] });
    const [status, headers, answer] = answers[Math.min(seen.posts.length - 1, answers.length - 1)];
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(answer));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, seen, close: () => new Promise((r) => server.close(r)) };
}

const expired = [400, {}, { error: { type: 'invalid_request_error', code: 'encryption_key_expired', message: 'Fetch the keys again.' } }];
const made = [200, {}, { id: 'tok_fake', type: 'card' }];

test('a rotated vault key: the keys are fetched once more, the card sealed again and sent anew', async () => {
  const fake = await fakeVault([expired, made]);
  try {
    const seal = await CardSeal.create({ vaultUrl: fake.url, publishableKey: 'pk_test_x' });
    assert.equal(seal.kid, 'old');
    assert.equal((await seal.tokenize(card('4242424242424242'))).id, 'tok_fake');
    assert.equal(fake.seen.keyFetches, 2);
    assert.deepEqual(fake.seen.posts.map((p) => p.kid), ['old', 'new']);
    assert.notEqual(fake.seen.posts[0].idempotencyKey, fake.seen.posts[1].idempotencyKey);
    // The instance keeps the new key.
    assert.equal(seal.kid, 'new');
  } finally {
    await fake.close();
  }
});

test('a key that expires twice is the vault error, not a loop', async () => {
  const fake = await fakeVault([expired]);
  try {
    const seal = await CardSeal.create({ vaultUrl: fake.url, publishableKey: 'pk_test_x' });
    await rejects(seal.tokenize(card('4242424242424242')), { code: 'encryption_key_expired', status: 400 });
    assert.equal(fake.seen.posts.length, 2);
  } finally {
    await fake.close();
  }
});

test('a Retry-After beyond the deadline ends in timeout instead of a retry', async () => {
  const busy = [503, { 'Retry-After': '3600' }, { error: { type: 'api_error', code: 'service_unavailable', message: 'Busy.' } }];
  const fake = await fakeVault([busy, made]);
  try {
    const seal = await CardSeal.create({ vaultUrl: fake.url, publishableKey: 'pk_test_x', timeoutMs: 5000 });
    await rejects(seal.tokenize(card('4242424242424242')), { code: 'timeout' });
    assert.equal(fake.seen.posts.length, 1, 'it did not retry before the hour was up');
  } finally {
    await fake.close();
  }
});

test('an error answer that is not JSON still has a code, a type and the status', async () => {
  const fake = await fakeVault([[418, {}, 'teapot']]);
  try {
    const seal = await CardSeal.create({ vaultUrl: fake.url, publishableKey: 'pk_test_x' });
    await rejects(seal.tokenize(card('4242424242424242')), { code: 'http_error', type: 'api_error', status: 418 });
  } finally {
    await fake.close();
  }
});

// The same client in headless Chromium, through CORS, from a page that imports the package as a
// browser does (pkg/index.js): a retried 503, and a vault that never answers.
test('in Chromium: a 503 is retried with one idempotency key, and a silent vault times out', async () => {
  const page0 = await serve({ root: new URL('./fixtures/', import.meta.url).pathname });
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const page = await browser.newPage();
    await page.goto(`${page0.url}plain.html`);
    await control('fail=1&mode=before');
    const r = await page.evaluate(async ({ flakyUrl, hangUrl, pk, vaultKey }) => {
      const { CardSeal, ready } = await import('/pkg/index.js');
      await ready();
      const card = { number: '4242 4242 4242 4242', exp_month: 12, exp_year: 2035, cvc: '123' };
      const seal = await CardSeal.create({ vaultUrl: flakyUrl, publishableKey: pk, vaultKey });
      const token = await seal.tokenize(card);
      const stats = await (await fetch(`${flakyUrl}/__stats`)).json();
      const silent = await CardSeal.create({ vaultUrl: hangUrl, publishableKey: pk, vaultKey, timeoutMs: 400, retries: 1 });
      const err = await silent.tokenize(card).then(() => null, (e) => ({ name: e.name, code: e.code, type: e.type }));
      return { token, stats, err };
    }, { flakyUrl: flaky.url, hangUrl: hang.url, pk: vault.pk, vaultKey: await jwks() });
    assert.match(r.token.id, /^tok_/);
    assert.equal(r.stats.posts, 2, 'one failure, one retry');
    assert.equal(r.stats.idempotencyKeys[0], r.stats.idempotencyKeys[1]);
    assert.deepEqual(r.stats.tokenIds, [r.token.id]);
    assert.deepEqual(r.err, { name: 'CardSealError', code: 'timeout', type: 'api_connection_error' });
  } finally {
    await browser.close();
    await page0.close();
  }
});

test('Retry-After: seconds as str::parse::<f64> reads them; dates and junk are ignored', () => {
  const cases = {
    0: 0, 1: 1000, ' 2 ': 2000, 120: 120000, '+3': 3000, 1.5: 1500, 0.25: 250, '.5': 500, '5.': 5000,
    '1e2': 100000, '1E+2': 100000, '15e-1': 1500, '2.5e-3': 2.5, inf: Infinity, '+Infinity': Infinity, INF: Infinity,
    '1e400': Infinity, '1e-400': 0, '00000000000000000000000000001': 1000,
  };
  for (const [input, ms] of Object.entries(cases)) {
    assert.ok(Math.abs(retryAfterMs(input) - ms) <= ms * 1e-12 || retryAfterMs(input) === ms, `${input}: ${retryAfterMs(input)}`);
  }
  for (const input of ['-1', '-inf', 'nan', 'NaN', '', ' ', '.', 'e5', '1e', '1e+', '1.5.3', '1e5e3', '0x10', '1_000', '٣',
    'Wed, 21 Oct 2015 07:28:00 GMT', 'infinit', 'infinityy', null]) {
    assert.equal(retryAfterMs(input), undefined, String(input));
  }
});
