// How `CardSeal.create` reads its options object, down to the odd JS values a page may pass.
import assert from 'node:assert/strict';
import test from 'node:test';

import * as jose from 'jose';
import { CardSeal } from 'cardseal';

const pair = () => jose.generateKeyPair('RSA-OAEP-256', { modulusLength: 2048, extractable: true });
const jwkOf = async (k, kid) => ({ ...(await jose.exportJWK(k.publicKey)), kid, use: 'enc', alg: 'RSA-OAEP-256' });
const jwk = await jwkOf(await pair(), 'k1');
const jwk2 = await jwkOf(await pair(), 'k2');
const base = { vaultUrl: 'https://vault.invalid', publishableKey: 'pk_test_x' };
const create = (options) => CardSeal.create(options);
const withKey = (vaultKey) => create({ ...base, vaultKey });

async function rejects(promise, code, param) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.name, 'CardSealError');
    assert.equal(e.code, code);
    if (param !== undefined) assert.equal(e.param, param);
    return true;
  });
}

test('the options object and its members must have the right types', async () => {
  for (const options of [undefined, null, {}, 'x', 5, () => base, { ...base, vaultUrl: 5 },
    { vaultUrl: base.vaultUrl }, { ...base, publishableKey: undefined }, { ...base, publishableKey: null },
    { ...base, timeoutMs: '100' }, { ...base, retries: '1' }, { ...base, timeoutMs: 10n }]) {
    await rejects(create(options), 'invalid_options', 'options');
  }
  await rejects(create({ ...base, vaultKey: jwk, timeoutMs: 0 }), 'invalid_options', 'timeoutMs');
  await rejects(create({ ...base, vaultKey: jwk, timeoutMs: NaN }), 'invalid_options', 'timeoutMs');
  await rejects(create({ ...base, vaultKey: jwk, retries: 1.5 }), 'invalid_options', 'retries');
  await rejects(create({ ...base, vaultKey: jwk, retries: Infinity }), 'invalid_options', 'retries');
  // A type error is reported before the checks of values.
  await rejects(create({ ...base, vaultUrl: 'ftp://x', timeoutMs: '1' }), 'invalid_options', 'options');
  await rejects(create({ ...base, vaultUrl: 'ftp://x', vaultKey: new Set() }), 'invalid_options', 'options');
  await rejects(create({ ...base, vaultUrl: 'ftp://x', vaultKey: jwk }), 'invalid_vault_url', 'vaultUrl');
  // Absent, undefined and null optional members take their defaults; inherited members count.
  for (const extra of [{}, { timeoutMs: undefined, retries: null }, { timeoutMs: 600000, retries: 10 }]) {
    assert.equal((await create({ ...base, vaultKey: jwk, ...extra })).kid, 'k1');
  }
  assert.equal((await create(Object.assign(Object.create(base), { vaultKey: jwk }))).kid, 'k1');
});

test('vaultKey as a string, object or Map', async () => {
  assert.equal((await withKey(JSON.stringify(jwk))).kid, 'k1');
  assert.equal((await withKey({ ...jwk, x: NaN, y: -Infinity, z: 1e300, w: [undefined, , 1n] })).kid, 'k1');
  assert.equal((await withKey(new Map(Object.entries(jwk)))).kid, 'k1');
  assert.equal((await withKey({ keys: [, null, 5, jwk] })).kid, 'k1');
  assert.equal((await withKey({ keys: [new Map(Object.entries(jwk))] })).kid, 'k1');
  // An undefined member is a null member, not an absent one.
  await rejects(withKey({ ...jwk, kid: undefined }), 'invalid_key');
  await rejects(withKey({ ...jwk, use: undefined }), 'invalid_key');
  // Only own enumerable members are read.
  await rejects(withKey(Object.create(jwk)), 'invalid_key');
  for (const key of [5, true, 10n, [], [jwk], 'not a key', Object.assign(() => {}, jwk)]) {
    await rejects(withKey(key), key instanceof Function ? 'invalid_options' : 'invalid_key');
  }
  // What is not JSON-like at all is an options error, wherever it is.
  for (const key of [new Set(), new Uint8Array(2), new ArrayBuffer(2), Symbol('k'), 2n ** 70n,
    [new Set()], { ...jwk, x: new Set() }, { ...jwk, x: () => 1 }, { keys: [jwk, new Uint8Array(1)] },
    new Map([[1, 'x']]), { ...jwk, x: -(2n ** 64n) }]) {
    await rejects(withKey(key), 'invalid_options', 'options');
  }
});

test('JWKS ordering reads integer iat and nbf only', async () => {
  const set = (a, b) => ({ keys: [{ ...jwk, ...a }, { ...jwk2, ...b }] });
  assert.equal((await withKey(set({ iat: 9 }, { iat: 5 }))).kid, 'k1');
  assert.equal((await withKey(set({ iat: 9 }, { nbf: 10 }))).kid, 'k2');
  // Not integers (or beyond 2^53): as if absent.
  assert.equal((await withKey(set({ iat: 5 }, { iat: 2 ** 53 }))).kid, 'k1');
  assert.equal((await withKey(set({ iat: 5 }, { iat: 9.5 }))).kid, 'k1');
  assert.equal((await withKey(set({ iat: 5 }, { iat: 10n }))).kid, 'k2');
  assert.equal((await withKey(set({ iat: 5 }, { iat: 2n ** 63n }))).kid, 'k1');
  assert.equal((await withKey(set({ iat: -(2 ** 53) + 1 }, { iat: -(2 ** 53) }))).kid, 'k1');
});

test('deep or cyclic vaultKey objects are refused', async () => {
  let deep = {};
  for (let i = 0; i < 300; i++) deep = { a: deep };
  await rejects(withKey({ ...jwk, deep }), 'invalid_key');
  let shallow = {};
  for (let i = 0; i < 100; i++) shallow = [shallow];
  assert.equal((await withKey({ ...jwk, shallow })).kid, 'k1');
  const cyclic = { ...jwk };
  cyclic.self = cyclic;
  await rejects(withKey(cyclic), 'invalid_key');
  await rejects(withKey({ keys: [cyclic] }), 'invalid_key');
});
