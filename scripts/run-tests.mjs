#!/usr/bin/env node
// Runs every test/**/*.test.ts with Node's own test runner through tsx.
// Node 20's runner does not expand globs itself, so the files are listed here.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...find(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}
const filters = process.argv.slice(2);
const files = find('test').filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
if (files.length === 0) { console.error('no test files matched'); process.exit(1); }
// Tests that do not name a backend run on WASM, the engine every user has (when the libtorch addon is
// built, `auto` would pick torch); the torch tests name theirs. ATTFC_BACKEND=torch npm test runs the
// backend-agnostic tests on torch instead.
// Three files at a time on CI's 2 cores: most test files spend much of their time waiting on child
// processes (ranks, the CLI, Chromium, npm), and two at a time left the cores about 40% idle.
const env = { ...process.env, ATTFC_BACKEND: process.env.ATTFC_BACKEND || 'wasm' };
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=3', ...files], { stdio: 'inherit', env });
process.exit(r.status ?? 1);
