// The benchmark scripts' flags: defaults, values, and refusal of unknown, misspelled or bad flags.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { CommanderError } from 'commander';
import { accuracyFlags, dataFlags, embedChildFlags, embedFlags, engineChildFlags, engineFlags, headsChildFlags, headsFlags, jobFlags, stepsChildFlags, stepsFlags, trainFlags } from '../../bench/lib/flags.js';

function refused(parse: () => unknown, code: string, message: RegExp): void {
  assert.throws(parse, (e: unknown) => e instanceof CommanderError && e.code === code && message.test(e.message));
}

test('every benchmark refuses a misspelled flag, naming the one it meant', () => {
  const parsers = { accuracyFlags, dataFlags, embedFlags, engineFlags, engineChildFlags, headsFlags, stepsFlags, trainFlags };
  for (const [name, parse] of Object.entries(parsers)) {
    refused(() => parse(['--qiuck']), 'commander.unknownOption', /unknown option '--qiuck'/);
    if (name !== 'engineChildFlags') refused(() => parse(['--jsno']), 'commander.unknownOption', /Did you mean --json\?/);
  }
  refused(() => headsChildFlags(['--head', 'fc', '--n', '100', '--stesp', '2']), 'commander.unknownOption', /--stesp/);
  refused(() => jobFlags(['--job', '{}', '--jbo']), 'commander.unknownOption', /--jbo/);
});

test('benchmark flags: defaults, parsed values, and bad values refused by name', () => {
  assert.deepEqual(accuracyFlags([]), { quick: false, json: false, verbose: false, parallel: 2, equalTime: true });
  assert.equal(accuracyFlags(['--no-equal-time']).equalTime, false);
  assert.deepEqual(accuracyFlags(['--quick', '--seeds', '0,3', '--steps', '40']), { quick: true, json: false, verbose: false, parallel: 2, seeds: [0, 3], steps: 40, equalTime: true });
  refused(() => accuracyFlags(['--seeds', '0,x']), 'commander.invalidArgument', /--seeds <list>.*whole number >= 0/);
  refused(() => accuracyFlags(['--steps']), 'commander.optionMissingArgument', /--steps/);

  const d = dataFlags(['some/rec', '--sizes', '112,32', '--consume', '2.5']);
  assert.equal(d.dataset, 'some/rec');
  assert.deepEqual(d.sizes, [112, 32]);
  assert.equal(d.consume, 2.5);
  assert.equal(d.batch, 64);
  assert.equal(dataFlags([]).dataset, undefined);
  refused(() => dataFlags(['a', 'b']), 'commander.excessArguments', /too many arguments/);
  refused(() => dataFlags(['--batch', '0']), 'commander.invalidArgument', /--batch/);

  assert.deepEqual(engineChildFlags(['--threads', '1', '--pack', 'off', '--data-parallel']), { backend: 'wasm', threads: 1, pack: 'off', quick: false, dataParallel: true });
  refused(() => engineChildFlags(['--pack', 'of']), 'commander.invalidArgument', /on or off/);
  assert.equal(engineFlags([]).backend, 'all');
  assert.equal(engineFlags(['--backend', 'torch']).backend, 'torch');
  refused(() => engineFlags(['--backend', 'gpu']), 'commander.invalidArgument', /all, wasm or torch/);
  assert.equal(engineChildFlags(['--backend', 'torch']).backend, 'torch');

  const h = headsFlags(['--n', '10k,1M', '--heads', 'fc,attfc0.3']);
  assert.deepEqual(h.n, [10_000, 1_000_000]);
  assert.deepEqual(h.heads?.map((s) => s.id), ['fc', 'attfc0.3']);
  assert.equal(h.deviceBudget, '3.25');
  assert.equal(h.backend, 'wasm');
  assert.equal(h.pytorch, true);
  assert.equal(headsFlags(['--no-pytorch', '--backend', 'torch']).pytorch, false);
  refused(() => headsFlags(['--backend', 'cuda']), 'commander.invalidArgument', /wasm or torch/);
  refused(() => headsFlags(['--heads', 'fcc']), 'commander.invalidArgument', /unknown head "fcc"/);
  refused(() => headsFlags(['--device-budget', '4']), 'commander.invalidArgument', /\[0, 4\)/);
  assert.deepEqual(headsChildFlags(['--head', 'pfc0.1', '--n', '1000']).head, { id: 'pfc0.1', kind: 'pfc', sampleRate: 0.1 });
  refused(() => headsChildFlags(['--n', '1000']), 'commander.missingMandatoryOptionValue', /--head/);

  assert.deepEqual(trainFlags(['--warmup', '2']), { quick: false, json: false, verbose: false, warmup: 2, backend: 'all' });
  assert.deepEqual(jobFlags(['--job', '{"a":1}']), { job: { a: 1 } });
  refused(() => jobFlags(['--job', '{a']), 'commander.invalidArgument', /expected JSON/);

  assert.deepEqual(stepsFlags([]), { json: false, models: ['mbf112', 'mbf-demo', 'r18', 'r50'], rounds: 3, profile: true, opByOp: false, pytorchTuned: false });
  assert.deepEqual(stepsFlags(['--models', 'r50,mbf-demo', '--rounds', '1', '--no-profile', '--op-by-op']).models, ['r50', 'mbf-demo']);
  refused(() => stepsFlags(['--models', 'r34']), 'commander.invalidArgument', /"r34" is not one of mbf112, mbf-demo, r18, r50/);
  assert.deepEqual(stepsChildFlags(['--model', 'r18', '--steps', '2']), { model: 'r18', steps: 2, profile: false });
  refused(() => stepsChildFlags(['--steps', '2']), 'commander.missingMandatoryOptionValue', /--model/);
  assert.deepEqual(embedFlags([]), { json: false, models: ['r50', 'mbf'], batch: 32, rounds: 3, seconds: 8, wasm: true });
  assert.equal(embedFlags(['--no-wasm']).wasm, false);
  refused(() => embedFlags(['--models', 'r18']), 'commander.invalidArgument', /"r18" is not one of r50, mbf/);
  assert.deepEqual(embedChildFlags(['--engine', 'onnxruntime', '--dir', 'x']), { engine: 'onnxruntime', dir: 'x', batch: 32, seconds: 8 });
  refused(() => embedChildFlags(['--engine', 'ort', '--dir', 'x']), 'commander.invalidArgument', /torch, wasm, onnxruntime/);
});

test('a benchmark script given an unknown flag exits 2 with one line, before any work', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/engine.ts', '--quik'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, "bench:engine: unknown option '--quik' (Did you mean --quick?)\n");
});
