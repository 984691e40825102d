// Configurations the machine cannot hold are refused before anything large is allocated, with the
// number: the memory outside the WASM heap (AttFC's DCC, Partial FC's W) against what is available,
// and a backbone too large for any heap. Each runs `attfc train` in a child process watched by a
// guard that kills it if its memory grows past 1.5 GiB (what happened before these checks).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tinySynth } from '../helpers/tinySynth.js';

const data = await tinySynth();
const RSS_LIMIT_KB = 1.5 * 1024 * 1024;

/** Runs attfc with a memory guard; resolves with the exit code, stderr and whether the guard fired. */
function guardedAttfc(args: string[]): Promise<{ code: number | null; stderr: string; killedByGuard: boolean }> {
  const child = spawn(process.execPath, ['bin/attfc.js', ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ATTFC_THREADS: '1' } });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => (stderr += s));
  let killedByGuard = false;
  const guard = setInterval(() => {
    try {
      const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0);
      if (rss > RSS_LIMIT_KB) {
        killedByGuard = true;
        child.kill('SIGKILL');
      }
    } catch {
      /* exited */
    }
  }, 100);
  const timeout = setTimeout(() => {
    killedByGuard = true;
    child.kill('SIGKILL');
  }, 90_000);
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      clearInterval(guard);
      clearTimeout(timeout);
      resolve({ code, stderr, killedByGuard });
    }),
  );
}

const tiny = (out: string) => ['train', '--data', data, '--output', out, '--backbone', 'mbf', '--width', '0.25', '--input-size', '32', '--batch-size', '8', '--steps', '1', '--workers', '1', '--no-export'];
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'attfc-resources-'));

test('a DCC larger than the free memory (--queue-size 800000000) is refused with the numbers, before it is allocated', async () => {
  const r = await guardedAttfc([...tiny(tmp()), '--queue-size', '800000000', '--embedding-size', '32']);
  assert.equal(r.killedByGuard, false, `memory grew past 1.5 GiB: ${r.stderr.slice(-400)}`);
  assert.equal(r.code, 1, r.stderr);
  const last = r.stderr.trim().split('\n').pop()!;
  assert.match(
    last,
    /^attfc: this configuration needs about [\d.]+ GiB of memory outside the WASM heap \(AttFC DCC: 800000000 slots x 32 floats, two layouts [\d.]+ GiB.*\) but [\d.]+ (GiB|MiB) is available: reduce --queue-size \(now 800000000\)/,
  );
});

test('--embedding-size 100000000 is one line naming the flag, not a RangeError', async () => {
  const r = await guardedAttfc([...tiny(tmp()), '--embedding-size', '100000000', '--head', 'pfc']);
  assert.equal(r.killedByGuard, false, r.stderr.slice(-400));
  assert.equal(r.code, 1, r.stderr.slice(-600));
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.match(r.stderr.trim().split('\n').pop()!, /^attfc: --embedding-size 100000000: the mbf backbone would have [\d.]+ G parameters \([\d.]+ GiB of weights\), more than the 4\.00 GiB WASM heap holds$/);
});
