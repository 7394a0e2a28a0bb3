// WebKit (Safari's engine) for the tests: Debian's WebKitWebDriver and MiniBrowser under a
// virtual X display, driven with plain W3C WebDriver (HTTP + JSON). playwright's WebKit build
// cannot be downloaded here and safaridriver is macOS only, so this is the whole client.
//
//   const webkit = await startWebKit();           // { skip } when WebKit is not installed
//   await webkit.go(url); await webkit.exec('return document.title');
//   await webkit.close();                          // the session, the driver and Xvfb
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';

import { freePort } from './servers.mjs';

const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';

function onPath(name) {
  return (process.env.PATH ?? '').split(delimiter).map((d) => join(d, name)).find((f) => existsSync(f)) ?? null;
}

/** MiniBrowser's path: `WEBKIT_MINIBROWSER`, else the webkit2gtk-4.x directory of this machine's architecture. */
export function findMiniBrowser() {
  if (process.env.WEBKIT_MINIBROWSER) return process.env.WEBKIT_MINIBROWSER;
  for (const lib of ['/usr/lib', '/usr/libexec']) {
    let dirs = [];
    try { dirs = readdirSync(lib); } catch { continue; }
    for (const d of [...dirs, '.']) {
      for (const api of ['webkit2gtk-4.1', 'webkit2gtk-4.0', 'webkitgtk-6.0']) {
        const f = join(lib, d, api, 'MiniBrowser');
        if (existsSync(f)) return f;
      }
    }
  }
  return null;
}

/** What is missing for WebKit tests, or null when everything is there. */
export function webkitMissing() {
  const missing = [];
  if (!onPath('WebKitWebDriver')) missing.push('WebKitWebDriver (apt-get install webkit2gtk-driver)');
  if (!findMiniBrowser()) missing.push('MiniBrowser (apt-get install webkit2gtk-driver)');
  if (!onPath('Xvfb')) missing.push('Xvfb (apt-get install xvfb)');
  return missing.length ? missing.join(', ') : null;
}

async function until(what, fn, ms = 20_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// Each helper process gets its own process group, so stopping it also stops what it started
// (WebKitWebDriver starts MiniBrowser and WebKit's helper processes).
function startGroup(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { detached: true, stdio: 'ignore', ...opts });
  child.unref();
  return child;
}

async function stopGroup(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  try { process.kill(-child.pid, 'SIGTERM'); } catch { return; }
  const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, 5_000);
  await exited;
  clearTimeout(timer);
}

/** Xvfb on a display number it picks itself (`-displayfd`), so parallel runs never collide. */
async function startXvfb() {
  const child = spawn('Xvfb', ['-displayfd', '3', '-screen', '0', '1280x1024x24', '-nolisten', 'tcp'], {
    detached: true, stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
  });
  child.unref();
  const stderr = [];
  child.stdio[2].on('data', (d) => stderr.push(d.toString()));
  const display = await new Promise((resolve, reject) => {
    let out = '';
    child.stdio[3].on('data', (d) => {
      out += d.toString();
      if (out.includes('\n')) resolve(`:${out.trim()}`);
    });
    child.once('exit', (code) => reject(new Error(`Xvfb exited with ${code}: ${stderr.join('')}`)));
  });
  child.stdio[2].destroy();
  child.stdio[3].destroy();
  return { child, display };
}

/**
 * Starts Xvfb, WebKitWebDriver and one MiniBrowser session. Resolves
 * to `{ skip: reason }` when WebKit is not installed, so callers can skip loudly.
 */
export async function startWebKit() {
  const missing = webkitMissing();
  if (missing) return { skip: `WebKit is not installed here: missing ${missing}. Run scripts/setup.sh.` };
  let xvfb = null;
  let driver = null;
  let session = null;
  const close = async () => {
    if (session) await wd('DELETE', `/session/${session}`).catch(() => {});
    session = null;
    await stopGroup(driver);
    await stopGroup(xvfb?.child);
  };
  let base;
  let created;
  async function wd(method, path, body) {
    const res = await fetch(`${base}${path}`, {
      method, headers: { 'content-type': 'application/json' }, body: body && JSON.stringify(body),
    });
    const json = await res.json();
    if (!res.ok) throw new Error(`WebDriver ${method} ${path}: ${json.value?.error ?? res.status}: ${json.value?.message ?? ''}`);
    return json.value;
  }
  try {
    // Always a display of our own: MiniBrowser has no headless mode, and a test run must never
    // open windows on someone's desktop.
    xvfb = await startXvfb();
    const { display } = xvfb;
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    driver = startGroup('WebKitWebDriver', [`--port=${port}`, '--host=127.0.0.1'], {
      env: { ...process.env, DISPLAY: display },
    });
    await until('WebKitWebDriver', () => fetch(`${base}/status`).then((r) => r.ok, () => false));
    created = await wd('POST', '/session', {
      capabilities: { alwaysMatch: { 'webkitgtk:browserOptions': { binary: findMiniBrowser(), args: ['--automation'] } } },
    });
    session = created.sessionId;
  } catch (e) {
    await close();
    throw e;
  }
  const s = (path) => `/session/${session}${path}`;
  const api = {
    /** What the session reports, e.g. `browserName`, `browserVersion` (the WebKitGTK version). */
    capabilities: created.capabilities,
    wd,
    /** Opens a URL and waits for its load event. */
    go: (url) => wd('POST', s('/url'), { url }),
    url: () => wd('GET', s('/url')),
    /** Runs a function body in the page; `return` gives its value. */
    exec: (script, args = []) => wd('POST', s('/execute/sync'), { script, args }),
    /** Runs a function body that calls `arguments[arguments.length - 1](value)` when done. */
    execAsync: (script, args = []) => wd('POST', s('/execute/async'), { script, args }),
    find: async (css) => (await wd('POST', s('/element'), { using: 'css selector', value: css }))[ELEMENT],
    /** Types into an element as key events, as a customer would. */
    type: async (css, text) => wd('POST', s(`/element/${await api.find(css)}/value`), { text }),
    click: async (css) => wd('POST', s(`/element/${await api.find(css)}/click`), {}),
    /** Runs `fn` with the session switched into the iframe `css` names, then back to the parent. */
    inFrame: async (css, fn) => {
      await wd('POST', s('/frame'), { id: { [ELEMENT]: await api.find(css) } });
      try {
        return await fn();
      } finally {
        await wd('POST', s('/frame/parent'), {});
      }
    },
    until,
    close,
  };
  return api;
}

export { until };
