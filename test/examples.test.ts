// The README's library example must keep working: run examples/quickstart.ts as a user would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

test('examples/quickstart.ts (shown in the README) trains, verifies, exports and embeds', () => {
  const readme = readFileSync('README.md', 'utf8');
  const example = readFileSync('examples/quickstart.ts', 'utf8').trim();
  assert.ok(readme.includes(example), 'README shows examples/quickstart.ts verbatim');
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'examples/quickstart.ts'], { encoding: 'utf8', timeout: 240_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /held-out synthetic pairs: accuracy 0\.\d{4}/);
  assert.match(r.stdout, /512-d unit embeddings; cosine similarity of two images of one identity: -?\d\.\d{3}/);
});

test('examples/heads.ts (shown in the README) builds every head and runs an AttFC step', () => {
  const readme = readFileSync('README.md', 'utf8');
  assert.ok(readme.includes(readFileSync('examples/heads.ts', 'utf8').trim()), 'README shows examples/heads.ts verbatim');
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'examples/heads.ts'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /AttFC loss \d+\.\d{3}; diagnostics \{"loss"/);
  assert.match(r.stdout, /head state: FC 4096000 B, PFC 4096000 B, AttFC \d+ B/);
});
