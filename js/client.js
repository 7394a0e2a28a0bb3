// The early key fetch of the snippet and the hosted-field documents: `GET /v1/encryption_keys`
// started while the wasm still compiles (so before the wasm's own client, src/wasm/client.rs,
// exists), its text handed to `CardSeal.create` as `vaultKey`. Everything else of the vault
// client (options, the token POST, retries, backoff, idempotency, key rotation) is Rust.
import { CardSealError } from './error.js';

const DEFAULT_TIMEOUT_MS = 15_000;
const DEFAULT_RETRIES = 3;

const request = (code, param, message) => new CardSealError(code, message, { type: 'invalid_request_error', param });
const connection = (code, message) => new CardSealError(code, message, { type: 'api_connection_error' });
const timeout = () => connection('timeout', 'The vault did not answer in time.');
const badOptions = () => request('invalid_options', 'options', 'CardSeal.create needs { vaultUrl, publishableKey } strings.');

/**
 * The options the early fetch needs, checked as the wasm checks them: `{ vaultUrl,
 * publishableKey, timeoutMs, retries }`.
 */
export function readOptions(options) {
  if (typeof options !== 'object' || options === null) throw badOptions();
  const optional = (v) => (v === undefined || v === null ? undefined : v);
  const number = (v) => {
    if (optional(v) !== undefined && typeof v !== 'number') throw badOptions();
    return optional(v);
  };
  let vaultUrl, publishableKey, timeoutMs, retries;
  try {
    vaultUrl = options.vaultUrl;
    if (typeof vaultUrl !== 'string') throw badOptions();
    publishableKey = options.publishableKey;
    if (typeof publishableKey !== 'string') throw badOptions();
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
