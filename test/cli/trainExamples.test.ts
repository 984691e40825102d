// Every `attfc train` example in README.md and in `attfc train --help` runs as printed: each is run with
// --dry-run (the same checks a run makes before its first step: config, data, engine, head size, memory
// and the WASM heap refusal), its paths pointing at small stand-ins of the same kind (a synthetic set in
// insightface's layout for /data/..., a .bin for every .bin, an exported model for --init-from, a
// finished tiny run for --resume). Examples that name --backend torch are skipped where the addon is
// not built.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tinySynth, tinyTrainConfig } from '../helpers/tinySynth.js';
import { setupEngine, torchSkipReason } from '../helpers/engine.js';
import { train } from '../../src/train/trainer.js';
import { createBackbone } from '../../src/backbones/index.js';
import { backboneToOnnx } from '../../src/onnx/writer.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');

/** `attfc train ...` command lines of the README's bash blocks (continuations joined). */
function readmeExamples(): string[] {
  const md = readFileSync(path.join(root, 'README.md'), 'utf8');
  const out: string[] = [];
  for (const block of md.matchAll(/```bash\n([\s\S]*?)```/g)) {
    const joined = block[1].replace(/\\\n\s*/g, ' ');
    for (const line of joined.split('\n')) if (/^attfc train /.test(line.trim())) out.push(line.trim());
  }
  return out;
}

/** `attfc train ...` lines of the command's own help text. */
function helpExamples(): string[] {
  const r = spawnSync(process.execPath, [path.join(root, 'bin', 'attfc.js'), 'train', '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('attfc train '));
}

/** Splits a shell-like line into words, dropping a trailing # comment. */
function words(line: string): string[] {
  return line.replace(/\s+#.*$/, '').trim().split(/\s+/);
}

const examples = [...new Set([...readmeExamples(), ...helpExamples()])];
const work = mkdtempSync(path.join(os.tmpdir(), 'attfc-examples-'));
// enough identities for the examples' batches (up to 128) with AttFC's default DCC of 30% of them
const data = await tinySynth('examples', 500, 2, 16);
const bin = path.join(data, 'synth_val.bin');
const small = await tinySynth();
// a finished tiny run for --resume, a config file, and an insightface-style ONNX file / model folder
const run = path.join(work, 'run');
await setupEngine(); // and shut it down when the file ends, or its threads keep the file's process alive
await train({ ...tinyTrainConfig(small, run), steps: 2, export: true }, { log: () => undefined }).done;
writeFileSync(path.join(work, 'my.yaml'), `data: ${data}\nbackbone: mbf\ninputSize: 32\n`);
const onnx = path.join(work, 'model.onnx');
const net = createBackbone('mbf', { inputSize: 32, widthMultiplier: 0.25, embeddingSize: 32, seed: 1 });
writeFileSync(onnx, backboneToOnnx(net));
net.dispose();

/** The example's words with every path replaced by its stand-in. */
function standIns(argv: string[], out: string): string[] {
  return argv.map((w, i) => {
    const flag = argv[i - 1];
    if (flag === '--resume') return run;
    if (flag === '--data') return w.startsWith('synth:') ? w : data; // an on-demand synthetic set is real as printed
    if (flag === '--output') return out;
    if (flag === '--config') return path.join(work, 'my.yaml');
    if (flag === '--init-from') return w.endsWith('.onnx') ? onnx : path.join(run, 'model');
    if (w.endsWith('.bin')) return bin;
    return w;
  });
}

test('the README and `attfc train --help` hold train examples to check', () => {
  assert.ok(readmeExamples().length >= 4, readmeExamples().join('\n'));
  assert.ok(helpExamples().length >= 5, helpExamples().join('\n'));
});

for (const example of examples) {
  const argv = words(example).slice(1); // after "attfc"
  // distributed examples (--nproc) run on backend torch too
  const skip = argv.includes('torch') || argv.includes('--nproc') ? torchSkipReason() : false;
  test(`runs as printed (--dry-run): ${example}`, { skip, timeout: 300_000 }, () => {
    const out = path.join(work, `out-${examples.indexOf(example)}`);
    const args = standIns(argv, out);
    if (!args.includes('--print-config') && !args.includes('--dry-run')) args.push('--dry-run');
    // the test runner's ATTFC_BACKEND=wasm would refuse a distributed run (it runs on torch): as a user runs it
    const env = argv.includes('--nproc') ? Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'ATTFC_BACKEND')) : process.env;
    const r = spawnSync(process.execPath, [path.join(root, 'bin', 'attfc.js'), ...args], { encoding: 'utf8', timeout: 280_000, env });
    assert.equal(r.status, 0, `attfc ${args.join(' ')}\n${r.stderr}`);
    if (args.includes('--dry-run')) assert.match(r.stderr, /attfc: dry run: the run fits; nothing trained, nothing written/);
  });
}
