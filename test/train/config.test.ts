import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseTrainConfig, readConfigFile, marginOptions, resumedTrainConfig, RESUME_MUTABLE_KEYS, TrainConfigSchema } from '../../src/train/config.js';
import { learningRate } from '../../src/train/schedule.js';
import { AttfcError } from '../../src/errors.js';

test('defaults follow the reference recipe', () => {
  const c = parseTrainConfig({ data: 'x' });
  assert.equal(c.head, 'attfc');
  assert.equal(c.lr, 0.1);
  assert.equal(c.momentum, 0.9);
  assert.equal(c.weightDecay, 5e-4);
  assert.equal(c.schedule, 'cosine');
  assert.equal(c.clipNorm, 5);
  assert.equal(c.sampleNum, 3);
  assert.equal(c.queueRatio, 0.3);
  assert.equal(c.emaMomentum, 0.999);
  assert.deepEqual(marginOptions(c), { s: 64, m1: 1, m2: 0.5, m3: 0, gradient: 'straight-through' });
  assert.deepEqual(marginOptions(parseTrainConfig({ data: 'x', margin: 'cosface' })), { s: 64, m1: 1, m2: 0, m3: 0.4, gradient: 'straight-through' });
});

const bad: [Record<string, unknown>, RegExp][] = [
  [{ data: 'x', head: 'arc' }, /^config: head = "arc": expected one of "attfc", "fc", "pfc"$/],
  [{ data: 'x', batchSize: 0 }, /^config: batchSize = 0: expected a number > 0$/],
  [{ data: 'x', batchSize: 'abc' }, /^config: batchSize = "abc": expected a number$/],
  [{ data: 'x', lr: -1 }, /^config: lr = -1: expected /],
  [{ data: 'x', sampleRate: 2 }, /^config: sampleRate = 2: expected a number <= 1$/],
  [{ data: 'x', bogus: 1 }, /^config: bogus: expected no such key \(known keys: data, output/],
  [{ data: 'x', batchSize: 64, queueSize: 100 }, /^config: queueSize = 100: expected a multiple of batchSize \(64\)$/],
  [{}, /^config: data = undefined: expected a string$/],
];
for (const [raw, re] of bad) {
  test(`a bad config is one line naming the key, value and what is allowed: ${JSON.stringify(raw)}`, () => {
    assert.throws(() => parseTrainConfig(raw), (e: unknown) => e instanceof AttfcError && re.test(e.message) && !e.message.includes('\n'));
  });
}

test('config files: YAML and JSON, with errors naming the file', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'attfc-cfg-'));
  writeFileSync(path.join(dir, 'a.yaml'), 'data: /d\nhead: pfc\nsampleRate: 0.3\n');
  writeFileSync(path.join(dir, 'b.json'), '{"data": "/d", "batchSize": 32}');
  writeFileSync(path.join(dir, 'c.yaml'), 'data: [unclosed\n');
  assert.equal(parseTrainConfig(readConfigFile(path.join(dir, 'a.yaml'))).sampleRate, 0.3);
  assert.equal(parseTrainConfig(readConfigFile(path.join(dir, 'b.json'))).batchSize, 32);
  assert.throws(() => readConfigFile(path.join(dir, 'c.yaml')), /config .*c\.yaml: Flow sequence.*line 2, column 1$/);
  assert.throws(() => readConfigFile(path.join(dir, 'missing.yaml')), /config .*missing\.yaml: cannot read \(ENOENT\)/);
});

test('cosine schedule per iteration, linear warm-up, polynomial alternative', () => {
  const o = { lr: 0.1, totalSteps: 100, schedule: 'cosine' as const, warmupSteps: 0, polyPower: 2, minLr: 0 };
  assert.equal(learningRate(0, o), 0.1);
  assert.ok(Math.abs(learningRate(50, o) - 0.05) < 1e-12);
  assert.ok(learningRate(99, o) < 1e-3);
  const w = { ...o, warmupSteps: 10 };
  assert.ok(Math.abs(learningRate(0, w) - 0.01) < 1e-12);
  assert.ok(Math.abs(learningRate(9, w) - 0.1) < 1e-12);
  assert.equal(learningRate(10, w), 0.1);
  const p = { ...o, schedule: 'poly' as const };
  assert.ok(Math.abs(learningRate(50, p) - 0.1 * 0.25) < 1e-12);
});

test('resume: the saved config, with only operational keys changeable and the rest refused by name', () => {
  const saved = parseTrainConfig({ data: 'a', lr: 0.05, batchSize: 64, steps: 100 });
  assert.deepEqual(resumedTrainConfig(saved, null, 'ckpt'), saved);
  const r = resumedTrainConfig(saved, { data: 'moved/a', parallel: 'threads', logEvery: 1, verify: ['lfw.bin'], lr: 0.05, batchSize: 64 }, 'ckpt');
  assert.equal(r.data, 'moved/a');
  assert.equal(r.parallel, 'threads');
  assert.equal(r.logEvery, 1);
  assert.deepEqual(r.verify, ['lfw.bin']);
  assert.equal(r.lr, 0.05);
  assert.throws(
    () => resumedTrainConfig(saved, { lr: 0.5 }, 'runs/x/checkpoints/ckpt-000000010'),
    (e: unknown) =>
      e instanceof AttfcError &&
      e.message.startsWith('--resume continues runs/x/checkpoints/ckpt-000000010 with its own configuration: lr cannot change (saved 0.05, given 0.5)') &&
      !e.message.includes('\n'),
  );
  assert.throws(() => resumedTrainConfig(saved, { steps: 200 }, 'c'), /steps cannot change \(saved 100, given 200\)/);
  assert.throws(() => resumedTrainConfig(saved, { logEvery: 0 }, 'c'), /logEvery = 0: expected/);
  for (const k of RESUME_MUTABLE_KEYS) assert.ok(k in TrainConfigSchema.shape, `${k} is a config key`);
});

test('an explicit margin value of 0 is kept: cosface with marginM3 0 has no cosine margin (0.4 only when unset)', () => {
  assert.equal(marginOptions(parseTrainConfig({ data: 'x', margin: 'cosface', marginM3: 0 })).m3, 0);
  assert.equal(marginOptions(parseTrainConfig({ data: 'x', margin: 'cosface' })).m3, 0.4);
  assert.equal(marginOptions(parseTrainConfig({ data: 'x', margin: 'cosface', marginM3: 0.35 })).m3, 0.35);
  assert.equal(marginOptions(parseTrainConfig({ data: 'x', margin: 'combined' })).m3, 0);
  assert.equal(marginOptions(parseTrainConfig({ data: 'x', margin: 'combined', marginM3: 0.2 })).m3, 0.2);
  // the configuration printed and saved with a run says what was given, not a value that means something else
  assert.equal(parseTrainConfig({ data: 'x', margin: 'cosface' }).marginM3, undefined);
});

test('a value that must be positive says "> 0"; a fraction where a whole number belongs says so', () => {
  const message = (raw: Record<string, unknown>) => {
    try {
      parseTrainConfig({ data: 'x', ...raw }, 'train');
    } catch (e) {
      return (e as Error).message;
    }
    return 'accepted';
  };
  assert.equal(message({ batchSize: 0 }), 'train: batchSize = 0: expected a number > 0');
  assert.equal(message({ lr: 0 }), 'train: lr = 0: expected a number > 0');
  assert.equal(message({ sampleRate: 0 }), 'train: sampleRate = 0: expected a number > 0');
  assert.equal(message({ batchSize: 7.5 }), 'train: batchSize = 7.5: expected a whole number');
  assert.equal(message({ warmupSteps: -1 }), 'train: warmupSteps = -1: expected a number >= 0');
  assert.equal(message({ momentum: 2 }), 'train: momentum = 2: expected a number <= 1');
});
