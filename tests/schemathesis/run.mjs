// The vault's OpenAPI contract against a live vault: schemathesis (from the virtual environment
// that scripts/setup.sh makes in .venv/) fuzzes every operation with the secret key, the
// publishable key and the restricted key, follows the contract's links (stateful testing), and
// fails on any 5xx, any answer outside the contract's schemas and any status or Content-Type the
// contract does not document. Bounded (SCHEMATHESIS_MAX_EXAMPLES per operation, default 40, a
// fixed seed unless SCHEMATHESIS_SEED is set) so it takes a minute or two on two cores.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { sealedToken } from '../support/sealed-token.mjs';
import { root, startVault } from '../support/servers.mjs';

const st = join(root, '.venv/bin/schemathesis');
if (!existsSync(st)) {
  console.error('schemathesis is missing: run `bash scripts/setup.sh`');
  process.exit(1);
}
const maxExamples = process.env.SCHEMATHESIS_MAX_EXAMPLES ?? '40';
const seed = process.env.SCHEMATHESIS_SEED ?? '20250601';
const checks = [
  'not_a_server_error',
  'status_code_conformance',
  'content_type_conformance',
  'response_schema_conformance',
  'response_headers_conformance',
].join(',');

const vault = await startVault({
  args: ['--key-rate', '0', '--ip-rate', '0', '--card-tokens-per-10m', '0', '--declines-per-minute', '0',
    '--allow-raw-card-api'],
});
// A saved card for the hooks to charge: generated sources never name one, so without it no
// charge succeeds and the links on to capture and refund meet only errors.
const saved = await fetch(`${vault.url}/v1/cards`, {
  method: 'POST',
  headers: { authorization: `Bearer ${vault.sk}`, 'content-type': 'application/json' },
  body: JSON.stringify({ token: await sealedToken(vault) }),
}).then((r) => r.json());
if (!saved.id) throw new Error(`saving the hooks' card failed: ${JSON.stringify(saved)}`);
const surfaces = [
  { name: 'sk', key: vault.sk, filter: ['--exclude-operation-id', 'detokenize'] },
  // Everything for pk too: the publishable key's own operations, and a 403 everywhere else.
  { name: 'pk', key: vault.pk, filter: ['--exclude-operation-id', 'detokenize'] },
  // One operation and no links: no stateful phase.
  { name: 'rk', key: vault.rk, filter: ['--include-operation-id', 'detokenize', '--phases', 'examples,coverage,fuzzing'] },
];

let failed = 0;
const counts = [];
try {
  for (const s of surfaces) {
    console.log(`\n== schemathesis, ${s.name} key`);
    const run = spawnSync(st, ['--config-file', join(root, 'tests/schemathesis/schemathesis.toml'),
      'run', `${vault.url}/openapi.json`,
      '-H', `Authorization: Bearer ${s.key}`,
      '--checks', checks,
      '--max-examples', maxExamples,
      '--seed', seed,
      '--workers', '2',
      ...(s.filter.includes('--phases') ? [] : ['--phases', 'examples,coverage,fuzzing,stateful']),
      ...s.filter], {
      encoding: 'utf8',
      env: {
        ...process.env,
        SCHEMATHESIS_HOOKS: 'hooks',
        PYTHONPATH: join(root, 'tests/schemathesis'),
        CARDSEAL_ACCOUNT: vault.account,
        CARDSEAL_CARD: saved.id,
        NO_COLOR: '1',
      },
      maxBuffer: 64 * 1024 * 1024,
    });
    process.stdout.write(run.stdout);
    process.stderr.write(run.stderr);
    const generated = /(\d+) generated/.exec(run.stdout)?.[1] ?? '?';
    counts.push(`${s.name}: ${generated} test cases`);
    if (run.status !== 0) failed++;
  }
} finally {
  await vault.stop();
  // What the vault answered to the contract's methods, by route: how far the requests got.
  const seen = new Map();
  for (const m of vault.logs.join('').matchAll(/method=(GET|POST|DELETE) route="?([^"\s]+)"? status=(\d+)/g)) {
    const statuses = seen.get(`${m[1]} ${m[2]}`) ?? new Map();
    statuses.set(m[3], (statuses.get(m[3]) ?? 0) + 1);
    seen.set(`${m[1]} ${m[2]}`, statuses);
  }
  console.log('\nvault answers, by route (status×count):');
  for (const [route, statuses] of [...seen].sort()) {
    console.log(`  ${route}: ${[...statuses].sort().map(([s, n]) => `${s}×${n}`).join(' ')}`);
  }
  if (failed) console.error(vault.logs.join('').split('\n').filter((l) => / 5\d\d |ERROR/.test(l)).join('\n'));
}
console.log(`\nschemathesis: ${counts.join(', ')}`);
console.log(`${surfaces.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
