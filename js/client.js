// The vault client: the options of `CardSeal.create`, `fetch` with a deadline, the key fetch, and
// the token POST with its retries, backoff and idempotency key. Plain JS over the platform's
// fetch: in Rust it cost the wasm a third of its size (futures, web-sys and their glue), and the
// network is I/O, not a card rule. Sealing and every card rule stay in the wasm.
import { CardSealError } from './error.js';

const DEFAULT_TIMEOUT_MS = 15_000;
const DEFAULT_RETRIES = 3;
const BACKOFF_BASE_MS = 250;
const BACKOFF_CAP_MS = 4_000;
/** Deeper than the key parser's nesting limit (127), so cutting a `vaultKey` off changes no verdict. */
const MAX_KEY_DEPTH = 200;

const request = (code, param, message) => new CardSealError(code, message, { type: 'invalid_request_error', param });
const connection = (code, message) => new CardSealError(code, message, { type: 'api_connection_error' });
const timeout = () => connection('timeout', 'The vault did not answer in time.');
const badOptions = () => request('invalid_options', 'options', 'CardSeal.create needs { vaultUrl, publishableKey } strings.');

const NOT_JSON = Symbol('not JSON-like');

/**
 * A `vaultKey` value as JSON text for the key parser: `null` and `undefined` as `null`;
 * booleans; numbers (a safe integer as an integer, any other finite number as a float, `NaN` and
 * infinities as `null`); BigInts within 64 bits; strings; arrays (holes as `null`); `Map`s with
 * string keys and other non-iterable objects by their own enumerable members. Throws `NOT_JSON`
 * for anything else (functions, symbols, `Set`s, bytes, larger BigInts, …).
 */
function keyJson(v, depth) {
  if (depth > MAX_KEY_DEPTH || v === null || v === undefined) return 'null';
  switch (typeof v) {
    case 'boolean':
      return String(v);
    case 'bigint':
      if (v < -(2n ** 63n) || v >= 2n ** 64n) throw NOT_JSON;
      return v.toString();
    case 'number': {
      if (Number.isSafeInteger(v)) return String(v === 0 ? 0 : v);
      if (!Number.isFinite(v)) return 'null';
      // JavaScript's own shortest form; `.0` keeps a large whole number a float.
      const t = String(v);
      return /[.e]/.test(t) ? t : `${t}.0`;
    }
    case 'string':
      return JSON.stringify(v);
    case 'object': {
      if (Array.isArray(v)) return `[${Array.from(v, (x) => keyJson(x, depth + 1)).join(',')}]`;
      if (v instanceof Uint8Array || v instanceof ArrayBuffer) throw NOT_JSON;
      let entries;
      if (v instanceof Map) entries = [...v];
      else if (Symbol.iterator in v) throw NOT_JSON;
      else entries = Object.entries(v);
      return `{${entries.map(([k, x]) => {
        if (typeof k !== 'string') throw NOT_JSON;
        return `${JSON.stringify(k)}:${keyJson(x, depth + 1)}`;
      }).join(',')}}`;
    }
    default:
      throw NOT_JSON;
  }
}

/**
 * The options of `CardSeal.create`, checked: `{ vaultUrl, publishableKey, vaultKey (text or
 * undefined), timeoutMs, retries }`. Members are read through their getters (inherited ones
 * count) in that order; the first of the wrong type (or a getter that throws) makes the options
 * bad, before any value is checked.
 */
export function readOptions(options) {
  if (typeof options !== 'object' || options === null) throw badOptions();
  const optional = (v) => (v === undefined || v === null ? undefined : v);
  const number = (v) => {
    if (optional(v) !== undefined && typeof v !== 'number') throw badOptions();
    return optional(v);
  };
  let vaultUrl, publishableKey, vaultKey, timeoutMs, retries;
  try {
    vaultUrl = options.vaultUrl;
    if (typeof vaultUrl !== 'string') throw badOptions();
    publishableKey = options.publishableKey;
    if (typeof publishableKey !== 'string') throw badOptions();
    vaultKey = optional(options.vaultKey);
    if (vaultKey !== undefined && typeof vaultKey !== 'string') {
      try {
        vaultKey = keyJson(vaultKey, 0);
      } catch {
        throw badOptions();
      }
    }
    timeoutMs = number(options.timeoutMs);
    retries = number(options.retries);
  } catch (e) {
    throw e instanceof CardSealError ? e : badOptions();
  }
  const url = vaultUrl.trim();
  if (!url.startsWith('https://') && !url.startsWith('http://')) {
    throw request('invalid_vault_url', 'vaultUrl', 'vaultUrl must be an http(s) URL.');
  }
  if (!publishableKey.startsWith('pk_')) {
    throw request('invalid_publishable_key', 'publishableKey',
      'publishableKey must be a publishable key (pk_…); never put a secret key in a web page.');
  }
  if (timeoutMs !== undefined && !(timeoutMs >= 1 && timeoutMs <= 600_000)) {
    throw request('invalid_options', 'timeoutMs', 'timeoutMs must be 1 to 600000.');
  }
  if (retries !== undefined && !(Number.isInteger(retries) && retries >= 0 && retries <= 10)) {
    throw request('invalid_options', 'retries', 'retries must be an integer 0 to 10.');
  }
  return {
    vaultUrl: url.replace(/\/+$/, ''),
    publishableKey,
    vaultKey,
    timeoutMs: timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : Math.trunc(timeoutMs),
    retries: retries ?? DEFAULT_RETRIES,
  };
}

/** An abort signal that fires after `ms`, until `clear()`. */
function deadline(ms) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
}

function send(client, method, path, signal, headers = {}, body = undefined) {
  let url;
  try {
    url = new URL(client.vaultUrl + path);
  } catch {
    throw request('invalid_vault_url', 'vaultUrl', 'vaultUrl is not a valid URL.');
  }
  return fetch(url, { method, signal, body, headers: { Authorization: `Bearer ${client.publishableKey}`, ...headers } });
}

/** A vault's error answer as a CardSealError: its `{"error": {…}}` members that are strings. */
async function vaultError(resp) {
  let body = null;
  try {
    body = await resp.json();
  } catch {
    // Not JSON: the defaults below.
  }
  const err = body !== null && typeof body === 'object' && body.error !== null && typeof body.error === 'object' ? body.error : {};
  const member = (k) => (typeof err[k] === 'string' ? err[k] : undefined);
  const status = resp.status;
  return new CardSealError(member('code') ?? (status >= 500 ? 'api_error' : 'http_error'),
    member('message') ?? `The vault answered HTTP ${status}.`,
    { type: member('type') ?? 'api_error', param: member('param') ?? null, status });
}

/**
 * `GET /v1/encryption_keys` within `timeoutMs`: the JWKS as text. Rejects with `timeout`, a
 * `network_error`, or the vault's own error (with its HTTP `status`).
 */
export async function fetchKeys(client, timeoutMs = client.timeoutMs) {
  const d = deadline(timeoutMs);
  try {
    let resp;
    try {
      resp = await send(client, 'GET', '/v1/encryption_keys', d.signal);
    } catch (e) {
      if (e instanceof CardSealError) throw e;
      // A vault that accepts the connection and never answers ends here too.
      throw d.signal.aborted ? timeout() : connection('network_error', "The vault's keys could not be fetched.");
    }
    if (!resp.ok) throw await vaultError(resp);
    try {
      return await resp.text();
    } catch {
      throw d.signal.aborted ? timeout() : connection('network_error', "The vault's keys could not be fetched.");
    }
  } finally {
    d.clear();
  }
}

/**
 * A `Retry-After` of seconds, in milliseconds; `undefined` for an HTTP-date or anything else. A
 * negative value or NaN is `undefined`: the wait is only ever made longer than the backoff.
 */
export function retryAfterMs(header) {
  if (header === null || header === undefined) return undefined;
  const s = header.trim();
  if (!/^\+?(?:inf(?:inity)?|(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)$/i.test(s)) return undefined;
  const n = Number(s.replace(/^\+/, '').replace(/^inf(inity)?$/i, 'Infinity'));
  return n >= 0 ? n * 1000 : undefined;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** 128 random bits, base64url: an idempotency key. */
function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * POSTs `{ [member]: seal(sealer) }` to `/v1/tokens` with one idempotency key, retrying network
 * errors, 429, 5xx and 409 `idempotency_key_in_use` with exponential backoff and jitter, all within
 * one deadline. An `encryption_key_expired` answer fetches the keys once, seals again with
 * `rekey(keysText)` (which returns the new sealer), and sends that as a new request.
 */
export async function postToken(client, sealer, member, seal, rekey) {
  const end = Date.now() + client.timeoutMs;
  const d = deadline(client.timeoutMs);
  // A failure to reach the vault, or to read its answer: retried, unless the deadline passed.
  const unreachable = () => {
    if (d.signal.aborted) throw timeout();
    return null;
  };
  try {
    let body = JSON.stringify({ [member]: seal(sealer) });
    let idempotencyKey = newKey();
    let refetched = false;
    for (let attempt = 0; ; attempt++) {
      const resp = await send(client, 'POST', '/v1/tokens', d.signal,
        { 'Content-Type': 'application/json', 'Idempotency-Key': idempotencyKey }, body)
        .catch((e) => (e instanceof CardSealError ? Promise.reject(e) : unreachable()));
      let retryAfter;
      if (resp !== null && resp.ok) {
        const token = await resp.json().catch(unreachable);
        if (token !== null) return token;
      } else if (resp !== null) {
        retryAfter = retryAfterMs(resp.headers.get('Retry-After'));
        const err = await vaultError(resp);
        if (err.code === 'encryption_key_expired' && !refetched) {
          // The vault rotated its key: fetch the new one once, seal again, and send it as a new
          // request (the old one made no token).
          refetched = true;
          const next = rekey(await fetchKeys(client, Math.max(1, end - Date.now())));
          body = JSON.stringify({ [member]: seal(next) });
          idempotencyKey = newKey();
          attempt--;
          continue;
        }
        // 409 `idempotency_key_in_use`: an earlier attempt with this key is still being processed
        // (its answer was lost to a timeout or network error); asking again later replays its
        // outcome.
        const inFlight = err.status === 409 && err.code === 'idempotency_key_in_use';
        if ((err.status !== 429 && err.status < 500 && !inFlight) || attempt >= client.retries) throw err;
      }
      if (attempt >= client.retries) throw connection('network_error', 'The vault could not be reached.');
      const jitter = crypto.getRandomValues(new Uint8Array(1))[0];
      const backoff = Math.min(BACKOFF_BASE_MS * 2 ** Math.min(attempt + 1, 8), BACKOFF_CAP_MS) * (0.5 + jitter / 255);
      const wait = Math.max(backoff, retryAfter ?? 0);
      if (end - Date.now() <= wait) throw timeout();
      await sleep(wait);
    }
  } finally {
    d.clear();
  }
}
