// `npm install /path/to/checkout` in a fresh project, then `import … from 'cardseal'` in Node.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

test('the package installs from a checkout and imports in Node', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cardseal-import-'));
  try {
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'shop', private: true, type: 'module' }));
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', root], { cwd: dir, stdio: 'pipe' });
    writeFileSync(join(dir, 'main.js'), [
      "import { ready, validateCard } from 'cardseal';",
      'await ready();',
      "const v = validateCard({ number: '4242 4242 4242 4242', exp_month: 12, exp_year: new Date().getFullYear() + 1, cvc: '123' });",
      'console.log(JSON.stringify(v));',
    ].join('\n'));
    const out = execFileSync('node', ['main.js'], { cwd: dir, encoding: 'utf8' });
    assert.deepEqual(JSON.parse(out), { valid: true, brand: 'visa', errors: [] });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
