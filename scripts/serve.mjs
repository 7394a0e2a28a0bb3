// A small static file server for the demo shop, the benchmark and the browser tests.
// No dependencies: node:http only. It binds to 127.0.0.1 by default and serves nothing outside
// the directories it is given.
//
//   const { url, close } = await serve({ root: 'www', port: 0 });
//
// `/pkg/` always maps to the repo's pkg/ (the built npm package) and `/` to `root`. `routes`
// adds more mounts, each keyed by a URL prefix ending in `/` (a directory) or an exact path:
//   routes: { '/bench/': benchDir, '/healthz': (req, res) => res.end('ok') }
// The longest matching prefix wins. `headers` (an object, or a function of the request) adds
// response headers, e.g. a Content-Security-Policy.
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

// Browsers only stream-compile wasm served as application/wasm, and strict MIME checking
// refuses module scripts served as anything but a JavaScript type.
export const MIME_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
};

/**
 * Starts serving. Resolves once listening, with the base URL (ending in `/`) and `close()`.
 * Rejects if the port cannot be bound (e.g. `EADDRINUSE`), so callers can pick another.
 */
export async function serve({ root, port = 0, host = '127.0.0.1', routes = {}, headers = {} } = {}) {
  if (!root) throw new TypeError('serve: `root` (the directory served at /) is required');
  const mounts = await compileMounts({ '/': root, '/pkg/': join(repoRoot, 'pkg'), ...routes });
  const extraHeaders = typeof headers === 'function' ? headers : () => headers;

  const server = createServer((req, res) => {
    handle(req, res, mounts, extraHeaders).catch((err) => {
      if (!res.headersSent) send(res, 500, 'internal error\n');
      else res.destroy(err);
    });
  });

  await new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      ok();
    });
  });

  const addr = server.address();
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${shownHost}:${addr.port}/`;
  let closing = null;
  const close = () => {
    // closeAllConnections: keep-alive sockets from a browser would otherwise hold close() open.
    closing ??= new Promise((ok) => {
      server.close(() => ok());
      server.closeAllConnections();
    });
    return closing;
  };
  return { url, port: addr.port, close, server };
}

async function compileMounts(table) {
  const mounts = [];
  for (const [prefix, target] of Object.entries(table)) {
    if (!prefix.startsWith('/')) throw new TypeError(`serve: route ${JSON.stringify(prefix)} must start with /`);
    if (typeof target === 'function') {
      mounts.push({ prefix, handler: target });
    } else {
      // Resolved through symlinks once, so the containment check below compares real paths.
      const dir = await realpath(resolve(String(target))).catch(() => resolve(String(target)));
      mounts.push({ prefix, dir });
    }
  }
  // Longest prefix first, so `/pkg/` wins over `/`.
  return mounts.sort((a, b) => b.prefix.length - a.prefix.length);
}

function matches(prefix, path) {
  return prefix.endsWith('/') ? path.startsWith(prefix) || path === prefix.slice(0, -1) : path === prefix;
}

async function handle(req, res, mounts, extraHeaders) {
  let pathname;
  try {
    // Only the path: never resolved against a base, so `//host` or `..` cannot change its meaning.
    pathname = decodeURIComponent(req.url.split(/[?#]/, 1)[0]);
  } catch {
    return send(res, 400, 'bad request\n');
  }
  if (!pathname.startsWith('/') || pathname.includes('\0') || pathname.includes('\\')) return send(res, 400, 'bad request\n');

  const mount = mounts.find((m) => matches(m.prefix, pathname));
  if (!mount) return send(res, 404, 'not found\n');
  if (mount.handler) return mount.handler(req, res);

  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return send(res, 405, 'method not allowed\n');
  }
  // `/pkg` without its slash: redirect, so relative URLs in an index page resolve.
  if (pathname === mount.prefix.slice(0, -1)) {
    res.writeHead(301, { Location: mount.prefix });
    return res.end();
  }

  const rel = pathname.slice(mount.prefix.length);
  const segments = rel.split('/');
  // No `..` escapes, and no dotfiles (.git, .build-stamp …) are ever served.
  if (segments.some((s) => s === '..' || s.startsWith('.'))) return send(res, 404, 'not found\n');

  let file = resolve(mount.dir, ...segments.filter(Boolean));
  let info = await stat(file).catch(() => null);
  if (info?.isDirectory()) {
    if (!pathname.endsWith('/')) {
      res.writeHead(301, { Location: pathname + '/' });
      return res.end();
    }
    file = join(file, 'index.html');
    info = await stat(file).catch(() => null);
  }
  if (!info?.isFile()) return send(res, 404, 'not found\n');

  // A symlink inside the mount must not lead outside it.
  const real = await realpath(file);
  if (real !== mount.dir && !real.startsWith(mount.dir + sep)) return send(res, 404, 'not found\n');

  res.writeHead(200, {
    'Content-Type': MIME_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
    'Content-Length': info.size,
    // A development server: always fresh files after a rebuild.
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...extraHeaders(req, pathname),
  });
  if (req.method === 'HEAD') return res.end();
  // pipeline() closes the file if the browser hangs up half-way.
  await pipeline(createReadStream(real), res).catch((err) => {
    if (err.code !== 'ERR_STREAM_PREMATURE_CLOSE') throw err;
  });
}

function send(res, status, body) {
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(body);
}
