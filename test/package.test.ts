// attfc as an npm package: `npm pack` a copy of the sources (its prepare script builds dist/), install the
// tarball into an empty folder, then use it the way a new user would with plain Node: the CLI through
// npx (synthetic data, a short data-parallel training run), a plain .mjs importing the library, and a
// TypeScript check against the shipped declarations. Needs the npm registry for the dependencies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { photosDir } from './helpers/faces.js';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = process.cwd();
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const NPX = process.platform === 'win32' ? 'npx.cmd' : 'npx';

/** Runs a command that must succeed; returns its stdout. */
function run(cmd: string, args: string[], options: SpawnSyncOptions & { cwd: string }): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 240_000, ...options });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} in ${options.cwd} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return String(r.stdout);
}

const LIBRARY_SCRIPT = `// Plain Node, no tsx: the library as users import it.
import { train, loadEmbedder, synthesize, openDataset, shutdownEngine } from 'attfc';

const data = 'data-lib';
await synthesize(data, { identities: 16, imagesPerIdentity: 4, size: 32, verifyIdentities: 10, verifyPairs: 20, seed: 1, workers: 0 }); // SYNTHETIC faces
const result = await train(
  { data, output: 'run-lib', backbone: 'mbf', widthMultiplier: 0.25, inputSize: 32, embeddingSize: 32, batchSize: 8, queueSize: 16,
    steps: 3, parallel: 'threads', workers: 1, verify: [data + '/synth_val.bin'] },
  { log: () => undefined },
).done;
const embedder = await loadEmbedder(result.modelDir);
const ds = openDataset(data);
const [a, b] = await embedder.embed([await ds.readImage(0), await ds.readImage(4)]);
ds.close();
const verdict = await embedder.verify(a, b);
console.log(JSON.stringify({ steps: result.steps, dims: [a.length, b.length], norm: Math.hypot(...a), similarity: verdict.similarity, same: verdict.same, threshold: embedder.verification.threshold }));
shutdownEngine();
`;

const TYPES_CHECK = `import { train, loadEmbedder, type FaceEmbedder, type TrainResult, type Verification } from 'attfc';
export async function check(dir: string): Promise<Verification> {
  const e: FaceEmbedder = await loadEmbedder(dir);
  const r: TrainResult = await train({ data: 'x', steps: 1 }).done;
  const n: number = r.steps;
  return e.verify(Buffer.from([n]), 'face.jpg');
}
`;

test('npm pack -> npm install <tarball> in an empty folder -> CLI, library and types work with plain Node', { timeout: 600_000 }, async (t) => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'attfc-package-'));
  try {
    // 1. A copy of what a clone holds (no dist/), so the tarball's dist/ comes from the prepare script.
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { files: string[] };
    const source = path.join(work, 'source');
    mkdirSync(source);
    // package.json's `files` may hold globs of one folder's files (native/*.cc)
    const expand = (f: string): string[] => {
      if (!f.includes('*')) return [f];
      const dir = path.dirname(f);
      const re = new RegExp(`^${path.basename(f).replace(/[.]/g, '\\.').replace(/\*/g, '.*')}$`);
      return readdirSync(path.join(root, dir)).filter((n) => re.test(n)).map((n) => path.join(dir, n));
    };
    const copied = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', ...pkg.files.filter((f) => !f.startsWith('dist')).flatMap(expand)];
    for (const entry of copied) cpSync(path.join(root, entry), path.join(source, entry), { recursive: true });
    symlinkSync(path.join(root, 'node_modules'), path.join(source, 'node_modules'), 'dir');
    const packed = JSON.parse(run(NPM, ['pack', '--json', '--pack-destination', work], { cwd: source }).replace(/^[^[]*/, '')) as {
      filename: string;
      size: number;
      unpackedSize: number;
      files: { path: string }[];
    }[];
    const { filename, size, unpackedSize, files } = packed[0];
    const paths = files.map((f) => f.path);
    t.diagnostic(`tarball ${filename}: ${(size / 1024).toFixed(0)} KiB packed, ${(unpackedSize / 1024).toFixed(0)} KiB unpacked, ${paths.length} files`);
    for (const p of ['package.json', 'README.md', 'bin/attfc.js', 'dist/index.js', 'dist/index.d.ts', 'dist/index.js.map', 'dist/cli/main.js',
      'dist/train/dataParallel/replicaWorker.js', 'dist/data/pipelineWorker.js', 'dist/data/synthetic/renderWorker.js', 'dist/eval/faceCrop.js',
      'src/index.ts', 'examples/browser/index.html', 'examples/browser/verifier.js', 'native/attfc_torch.cc', 'native/binding.h', 'native/build.mjs'])
      assert.ok(paths.includes(p), `the package holds ${p}`);
    const unwanted = paths.filter((p) => /^(test|bench|runs|scripts|node_modules|\.ci)\//.test(p) || /\.test\.ts$/.test(p) || p.startsWith('examples/') && !p.startsWith('examples/browser/'));
    assert.deepEqual(unwanted, [], 'no tests, benchmarks, bench results, runs or scripts in the package');

    // 2. Install the tarball into an empty folder.
    const user = path.join(work, 'user');
    mkdirSync(user);
    // its own package.json, so npm installs here even if a folder above holds node_modules
    writeFileSync(path.join(user, 'package.json'), JSON.stringify({ name: 'attfc-user', private: true }));
    run(NPM, ['install', '--no-audit', '--no-fund', '--prefer-offline', path.join(work, filename)], { cwd: user });
    for (const devOnly of ['tsx', 'typescript', 'playwright-core']) assert.equal(existsSync(path.join(user, 'node_modules', devOnly)), false, `${devOnly} is not installed with attfc`);

    // 3. The CLI through npx: help, a tiny synthetic set (render workers), 10 data-parallel training steps.
    const help = run(NPX, ['--no', '--', 'attfc', '--help'], { cwd: user });
    assert.match(help, /^Usage: attfc \[options\] \[command\]/);
    for (const command of ['train', 'eval', 'embed', 'synth', 'serve']) assert.match(help, new RegExp(`\\n  ${command}\\b`));
    run(NPX, ['--no', '--', 'attfc', 'synth', '--identities', '24', '--images-per-identity', '4', '--size', '32', '--verify-identities', '10', '--verify-pairs', '40', '--workers', '2', '--out', 'data'], { cwd: user });
    run(NPX, ['--no', '--', 'attfc', 'train', '--data', 'data', '--output', 'run', '--backbone', 'mbf', '--width', '0.25', '--input-size', '32',
      '--embedding-size', '32', '--batch-size', '8', '--queue-size', '16', '--steps', '10', '--parallel', 'data', '--replicas', '2', '--workers', '1',
      '--verify', 'data/synth_val.bin'], { cwd: user });
    const metadata = JSON.parse(readFileSync(path.join(user, 'run', 'model', 'model.json'), 'utf8')).userDefinedMetadata;
    assert.equal(metadata.steps, 10);
    assert.equal(metadata.verification.set, 'synth_val');
    const environment = JSON.parse(readFileSync(path.join(user, 'run', 'environment.json'), 'utf8'));
    assert.deepEqual(environment.parallel, { mode: 'data', replicas: 2 });
    // the face models come with a dependency (@vladmandic/human): detection runs from the installed package
    const photos = photosDir();
    if (photos) {
      const detected = JSON.parse(run(NPX, ['--no', '--', 'attfc', 'detect', path.join(photos, 'astronaut.png'), '--json'], { cwd: user }).trim().split('\n').pop()!);
      assert.equal(detected.faces.length, 1, 'one face in astronaut.png');
    }

    // 4. The library from a plain .mjs (threaded WASM), then TypeScript against the shipped .d.ts.
    writeFileSync(path.join(user, 'embed.mjs'), LIBRARY_SCRIPT);
    const out = JSON.parse(run(process.execPath, ['embed.mjs'], { cwd: user }).trim().split('\n').pop()!) as Record<string, unknown>;
    assert.equal(out.steps, 3);
    assert.deepEqual(out.dims, [32, 32]);
    assert.ok(Math.abs((out.norm as number) - 1) < 1e-5);
    assert.equal(out.same, (out.similarity as number) >= (out.threshold as number));
    writeFileSync(path.join(user, 'check.ts'), TYPES_CHECK);
    writeFileSync(
      path.join(user, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [path.join(root, 'node_modules', '@types')] }, files: ['check.ts'] }),
    );
    run(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: user });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
