// Runs a command with a vault, a never-answering server and a flaky proxy on 127.0.0.1, their
// addresses in CARDSEAL_TEST_* variables, then stops them and exits with the command's status.
//   node tests/support/with-servers.mjs -- wasm-pack test --headless --chrome --firefox -- --test web
import { spawn } from 'node:child_process';
import http from 'node:http';
import { startFlakyProxy, startHangServer, startVault } from './servers.mjs';

const sep = process.argv.indexOf('--');
const [cmd, ...args] = process.argv.slice(sep + 1);
const vault = await startVault();
const hang = await startHangServer();
const flaky = await startFlakyProxy(vault.url);
// A port nothing listens on: a refused connection.
const closed = http.createServer();
await new Promise((r) => closed.listen(0, '127.0.0.1', r));
const closedUrl = `http://127.0.0.1:${closed.address().port}`;
await new Promise((r) => closed.close(r));
const env = {
  ...process.env,
  CARDSEAL_TEST_VAULT_URL: vault.url,
  CARDSEAL_TEST_PK: vault.pk,
  CARDSEAL_TEST_HANG_URL: hang.url,
  CARDSEAL_TEST_FLAKY_URL: flaky.url,
  CARDSEAL_TEST_CLOSED_URL: closedUrl,
};
const child = spawn(cmd, args, { stdio: 'inherit', env });
const code = await new Promise((r) => child.on('exit', (c, s) => r(c ?? (s ? 1 : 0))));
await Promise.all([vault.stop(), hang.stop(), flaky.stop()]);
process.exit(code);
