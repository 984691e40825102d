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
import { torchSkipReason } from '../helpers/engine.js';
import { checkHostMemory, hostParts } from '../../src/train/hostMemory.js';
import { parseTrainConfig } from '../../src/train/config.js';

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

test('on backend torch the baselines count their step and checkpoint copies: full FC and Partial FC r=0.1 at 2,059,906 identities do not fit 21 GiB', () => {
  const GiB = 2 ** 30;
  const at = (head: 'fc' | 'pfc', backend: string) =>
    hostParts(parseTrainConfig({ data: 'synth:2059906x3@32', head, batchSize: 128, sampleRate: 0.1 }), 2_059_906, 6_179_718, 0, backend, true);
  const total = (parts: ReturnType<typeof at>) => parts.reduce((a, p) => a + p.bytes, 0);
  // full FC: the step's tables and logits (as the WASM heap estimate, without XNNPACK's packed copy) and the checkpoint copies
  assert.ok(total(at('fc', 'torch')) > 60 * GiB, `${total(at('fc', 'torch')) / GiB} GiB`);
  // Partial FC: W and momentum, their checkpoint copies (16 x N x D bytes) and the 205,991 sampled centres' step
  assert.ok(total(at('pfc', 'torch')) > 22 * GiB && total(at('pfc', 'torch')) < 24 * GiB, `${total(at('pfc', 'torch')) / GiB} GiB`);
  // on WASM the step lives on the heap (planned there): only the JS tables count here
  assert.ok(total(at('pfc', 'wasm')) < 8.5 * GiB);
  assert.throws(
    () => checkHostMemory(at('pfc', 'torch'), 21 * GiB),
    /^AttfcError: this configuration needs about 2\d\.\d\d GiB of memory outside the WASM heap \(Partial FC W and momentum: 2059906 classes x 512 floats x 2 in torch memory and their checkpoint copies 15\.72 GiB; the Partial FC step's 205991 sampled centres.*\) but 21\.00 GiB is available: reduce --embedding-size \(now 512\), or --sample-rate \(now 0\.1\)$/,
  );
});

test('with --shard-head a rank counts its shard of the head; rank 0 also the whole head it assembles for each checkpoint', () => {
  const c = parseTrainConfig({ data: 'synth:2059906x3@32', head: 'pfc', batchSize: 128, sampleRate: 0.1, shardHead: true });
  const total = (split: { rank: number; worldSize: number } | null) => hostParts(c, 2_059_906, 6_179_718, 0, 'torch', true, split).reduce((a, p) => a + p.bytes, 0);
  const whole = total(null);
  const rank1 = total({ rank: 1, worldSize: 4 });
  // a quarter of the tables and of the sampled step (the data's sampler order stays whole)
  assert.ok(rank1 > 0.24 * whole && rank1 < 0.26 * whole, `rank 1: ${rank1} of ${whole}`);
  assert.equal(total({ rank: 0, worldSize: 4 }) - total({ rank: 3, worldSize: 4 }), 8 * 2_059_906 * 512 + 16 * 512, 'rank 0: W and momentum whole, plus one more class in its tables (2,059,906 = 4 x 514,976 + 2)');
});

test('full FC on backend torch at 50,000,000 identities is refused before anything is allocated', { skip: torchSkipReason() }, async () => {
  const r = await guardedAttfc(['--backend', 'torch', 'train', '--data', 'synth:50000000x1@32', '--output', tmp(), '--backbone', 'mbf', '--head', 'fc', '--steps', '1', '--no-export']);
  assert.equal(r.killedByGuard, false, `memory grew past 1.5 GiB: ${r.stderr.slice(-400)}`);
  assert.equal(r.code, 1, r.stderr.slice(-600));
  assert.match(r.stderr.trim().split('\n').pop()!, /^attfc: this configuration needs about [\d.]+ GiB of memory outside the WASM heap \(full FC W and momentum .*; the full FC step in torch memory: .*\) but [\d.]+ GiB is available: reduce --embedding-size \(now 512\), or --head pfc\/attfc$/);
});
