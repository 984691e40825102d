// Face detection and landmarks on the native backend: the torch kernels cover both graph models, and
// the points equal the WASM backend's (the CLI on --backend wasm) to a hundredth of a pixel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { setupEngine, torchSkipReason } from '../helpers/engine.js';
import { photosDir, photosMissing } from '../helpers/faces.js';
import { detectFaces } from '../../src/face/detect.js';

const skip = torchSkipReason() || photosMissing();

test('detectFaces on backend torch finds the points WASM finds', { skip }, async () => {
  const engine = await setupEngine({ backend: 'torch' });
  assert.equal(engine.backend, 'torch');
  const file = path.join(photosDir() as string, 'astronaut.png');
  const [face] = await detectFaces(file);
  const r = spawnSync(process.execPath, ['bin/attfc.js', '--backend', 'wasm', 'detect', file, '--json'], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, r.stderr);
  const wasm = JSON.parse(r.stdout).faces[0] as { box: number[]; landmarks: number[][] };
  face.landmarks5.forEach((p, i) => assert.ok(Math.hypot(p[0] - wasm.landmarks[i][0], p[1] - wasm.landmarks[i][1]) < 0.02, `point ${i}: torch ${p}, wasm ${wasm.landmarks[i]}`));
  face.box.forEach((v, i) => assert.ok(Math.abs(v - wasm.box[i]) < 0.02, `box: torch ${face.box}, wasm ${wasm.box}`));
});
