// Stripe's own client libraries against a real vault: stripe-node (the `stripe` npm package) and
// stripe-python (in .venv/, from scripts/setup.sh), pointed at the vault, not at Stripe. A card
// sealed to the vault's key (with `jose`, as a browser's cardseal seals it) becomes a token; the
// library charges it, captures, refunds twice, lists; a used token is refused as the library's
// InvalidRequestError; and the library's own retry (its Idempotency-Key) has one effect.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';

import Stripe from 'stripe';

import { sealedToken } from '../support/sealed-token.mjs';
import { root, startVault } from '../support/servers.mjs';

let vault;

before(async () => {
  vault = await startVault();
});

after(async () => {
  await vault?.stop();
});

/** A token of `number`, made as the browser makes one (see tests/support/sealed-token.mjs). */
const browserToken = (number) => sealedToken(vault, number);

function nodeClient(url, options = {}) {
  const u = new URL(url);
  return new Stripe(vault.sk, {
    host: u.hostname, port: Number(u.port), protocol: u.protocol.replace(':', ''),
    maxNetworkRetries: 0, telemetry: false, ...options,
  });
}

/**
 * A proxy that forwards everything to the vault, but answers the first `POST /v1/charges` with
 * 503 after the vault has charged: the library sees a failure and retries. Records each charge
 * POST's Idempotency-Key.
 */
async function losingProxy(target) {
  let lost = false;
  const keys = [];
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const headers = { ...req.headers };
    delete headers.host;
    delete headers['content-length'];
    const upstream = await fetch(target + req.url, {
      method: req.method, headers, body: req.method === 'GET' ? undefined : Buffer.concat(chunks),
    });
    const text = await upstream.text();
    if (req.method === 'POST' && req.url === '/v1/charges') {
      keys.push(req.headers['idempotency-key'] ?? null);
      if (!lost) {
        lost = true;
        // As a load balancer answers when the vault's answer is lost on the way back.
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { type: 'api_error', code: 'service_unavailable', message: 'Lost.' } }));
        return;
      }
    }
    res.writeHead(upstream.status, { 'content-type': 'application/json' });
    res.end(text);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    keys,
    stop: () => { server.closeAllConnections(); return new Promise((r) => server.close(r)); },
  };
}

describe('stripe-node against the vault', () => {
  it('retrieves a browser token, charges it, captures, refunds twice and lists', async () => {
    const stripe = nodeClient(vault.url);
    const tok = await browserToken();
    const token = await stripe.tokens.retrieve(tok);
    assert.equal(token.id, tok);
    assert.equal(token.card.last4, '4242');

    const charge = await stripe.charges.create({ amount: 2000, currency: 'eur', source: tok, capture: false });
    assert.equal(charge.object, 'charge');
    assert.equal(charge.captured, false);
    assert.ok(charge.lastResponse.requestId.startsWith('req_'), 'the Request-Id header reaches the library');

    const captured = await stripe.charges.capture(charge.id, { amount: 1500 });
    assert.equal(captured.amount_captured, 1500);
    assert.equal((await stripe.charges.retrieve(charge.id)).captured, true);

    const first = await stripe.refunds.create({ charge: charge.id, amount: 500, metadata: { order: 'A-1' } });
    const second = await stripe.refunds.create({ charge: charge.id, reason: 'requested_by_customer' });
    assert.equal(first.amount, 500);
    assert.equal(first.metadata.order, 'A-1');
    assert.equal(second.amount, 1000, 'the rest by default');
    const got = await stripe.refunds.retrieve(first.id);
    assert.deepEqual([got.id, got.amount, got.charge], [first.id, 500, charge.id]);
    const refunded = await stripe.charges.retrieve(charge.id);
    assert.equal(refunded.amount_refunded, 1500);
    assert.equal(refunded.refunded, true);

    // More than is left: the library's InvalidRequestError, naming the parameter.
    await assert.rejects(stripe.refunds.create({ charge: charge.id, amount: 1 }), (e) => {
      assert.ok(e instanceof Stripe.errors.StripeInvalidRequestError, e.constructor.name);
      assert.equal(e.code, 'charge_already_refunded');
      return true;
    });

    const refunds = await stripe.refunds.list({ charge: charge.id });
    assert.deepEqual(refunds.data.map((r) => r.id), [second.id, first.id]);
    // Auto-pagination walks the pages by starting_after.
    for (let i = 0; i < 3; i++) {
      await stripe.charges.create({ amount: 100 + i, currency: 'eur', source: await browserToken() });
    }
    const seen = [];
    for await (const c of stripe.charges.list({ limit: 2 })) seen.push(c.id);
    assert.equal(seen.length, 4);
    assert.equal(seen.at(-1), charge.id, 'newest first; the first charge last');
    assert.equal(new Set(seen).size, 4);
    const recent = await stripe.charges.list({ created: { gte: charge.created }, limit: 100 });
    assert.equal(recent.data.length, 4);
  });

  it('refuses a used token as InvalidRequestError, and a bad amount naming it', async () => {
    const stripe = nodeClient(vault.url);
    const tok = await browserToken();
    await stripe.charges.create({ amount: 100, currency: 'eur', source: tok });
    await assert.rejects(stripe.charges.create({ amount: 100, currency: 'eur', source: tok }), (e) => {
      assert.ok(e instanceof Stripe.errors.StripeInvalidRequestError, e.constructor.name);
      assert.equal(e.code, 'token_already_used');
      assert.equal(e.statusCode, 400);
      return true;
    });
    await assert.rejects(stripe.charges.create({ amount: 0, currency: 'eur', source: await browserToken() }), (e) => {
      assert.ok(e instanceof Stripe.errors.StripeInvalidRequestError);
      assert.equal(e.param, 'amount');
      return true;
    });
  });

  it('a wrong key is the AuthenticationError, and what the vault does not serve is a 404', async () => {
    const u = new URL(vault.url);
    const wrong = new Stripe('sk_test_wrong', { host: u.hostname, port: Number(u.port), protocol: 'http', maxNetworkRetries: 0, telemetry: false });
    await assert.rejects(wrong.charges.list(), (e) => e instanceof Stripe.errors.StripeAuthenticationError);
    const stripe = nodeClient(vault.url);
    await assert.rejects(stripe.customers.create({ email: 'a@example.com' }), (e) => {
      assert.ok(e instanceof Stripe.errors.StripeInvalidRequestError);
      assert.equal(e.statusCode, 404);
      return true;
    });
    await assert.rejects(stripe.paymentIntents.create({ amount: 100, currency: 'eur' }), (e) => e.statusCode === 404);
    await assert.rejects(stripe.refunds.cancel('re_000000000000000000000000'), (e) => e.statusCode === 404);
    // Tokens are made of sealed cards only: a card sent in clear is not a body the vault takes.
    await assert.rejects(stripe.tokens.create({ card: { number: '4242424242424242', exp_month: 12, exp_year: 2030, cvc: '123' } }), (e) => {
      assert.ok(e instanceof Stripe.errors.StripeInvalidRequestError, `${e.constructor.name} ${e.statusCode} ${e.code} ${e.message}`);
      assert.equal(e.code, 'invalid_body');
      return true;
    });
    assert.ok(!vault.logs.join('').includes('4242424242424242'), 'the refused number is in no log line');
    const charge = await stripe.charges.create({ amount: 100, currency: 'eur', source: await browserToken() });
    // A known URL without that method: 405, which stripe-node raises as its StripeAPIError.
    await assert.rejects(stripe.charges.update(charge.id, { description: 'x' }), (e) => {
      assert.equal(e.statusCode, 405);
      assert.equal(e.code, 'method_not_allowed');
      return true;
    });
  });

  it("the library's own retry of a lost answer charges once", async () => {
    const proxy = await losingProxy(vault.url);
    try {
      const stripe = nodeClient(proxy.url, { maxNetworkRetries: 2 });
      const charge = await stripe.charges.create({ amount: 4242, currency: 'eur', source: await browserToken() });
      assert.equal(proxy.keys.length, 2, 'the library retried once');
      assert.ok(proxy.keys[0], 'the library sent an Idempotency-Key');
      assert.equal(proxy.keys[0], proxy.keys[1], 'the same key on the retry');
      const list = await nodeClient(vault.url).charges.list({ limit: 100 });
      assert.equal(list.data.filter((c) => c.amount === 4242).length, 1, 'one charge');
      assert.equal(list.data.find((c) => c.amount === 4242).id, charge.id);
    } finally {
      await proxy.stop();
    }
  });
});

describe('stripe-python against the vault', () => {
  const python = join(root, '.venv/bin/python');

  it('charges a browser token, captures, refunds twice, lists; a used token is InvalidRequestError', async (t) => {
    assert.ok(existsSync(python), 'stripe-python is missing: run `bash scripts/setup.sh`');
    const tokens = [await browserToken(), await browserToken()];
    const proxy = await losingProxy(vault.url);
    t.after(() => proxy.stop());
    // Asynchronously: the proxy it talks to runs in this process.
    const run = await promisify(execFile)(python, [join(root, 'tests/e2e/fixtures/stripe_python.py')], {
      encoding: 'utf8',
      env: { ...process.env, VAULT_URL: vault.url, PROXY_URL: proxy.url, VAULT_SK: vault.sk, TOKENS: tokens.join(',') },
      timeout: 120_000,
    }).catch((e) => assert.fail(`stripe-python failed: ${e.stdout}\n${e.stderr}`));
    const out = JSON.parse(run.stdout.trim().split('\n').at(-1));
    assert.equal(out.captured, 1500);
    assert.deepEqual(out.refunds, [1000, 500]);
    assert.equal(out.amount_refunded, 1500);
    assert.equal(out.used_token_error, 'InvalidRequestError:token_already_used');
    assert.equal(out.missing, 'InvalidRequestError:404');
    assert.equal(proxy.keys.length, 2, 'stripe-python retried once');
    assert.ok(proxy.keys[0] && proxy.keys[0] === proxy.keys[1], 'with the same Idempotency-Key');
    assert.equal(out.retried_charges, 1, 'one charge');
  });
});
