// The shared progress display: decile lines off a terminal, the cli-progress bar on one (ended at the total).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createProgress } from '../../src/util/progress.js';
import { createProgressView } from '../../src/train/progress.js';

function capture(isTTY: boolean) {
  const chunks: string[] = [];
  return { stream: { write: (s: string) => chunks.push(s), isTTY, columns: 120 }, text: () => chunks.join('') };
}

test('count progress off a terminal: a first line, then one per 10%, the last with the duration', () => {
  const c = capture(false);
  const p = createProgress('lfw', { stream: c.stream, unit: 'pairs' });
  for (let i = 1; i <= 40; i++) p(i, 40);
  const lines = c.text().trimEnd().split('\n');
  assert.equal(lines.length, 11);
  assert.match(lines[0], /^lfw: 1\/40 pairs \(2%\), [\d.]+ pairs\/s$/);
  assert.match(lines[1], /^lfw: 4\/40 pairs \(10%\), [\d.]+ pairs\/s$/);
  assert.match(lines[10], /^lfw: 40\/40 pairs \(100%\), [\d.]+ pairs\/s, done in \d+s$/);
});

test('count progress on a terminal draws the cli-progress bar and stops it at the total', () => {
  const c = capture(true);
  const p = createProgress('embed', { stream: c.stream });
  p(5, 10);
  p(10, 10); // stops the bar: its redraw timer must not keep the test process alive
  const out = c.text();
  assert.match(out, /embed \u2588+\u2591* 50% \| 5\/10 images/);
  assert.match(out, /embed \u2588{24} 100% \| 10\/10 images/);
  assert.ok(out.endsWith('\n'));
});

test('training view on a terminal: the same bar, with log lines printed above it', () => {
  const c = capture(true);
  const view = createProgressView(c.stream, 10);
  const info = { step: 1, totalSteps: 4, epoch: 0, loss: 1.5, lr: 0.1, samplesPerSec: 3, etaSec: 9, heapBytes: 1 << 20, dataWaitShare: 0 };
  view.update(info);
  view.log('[lfw][1]Accuracy-Flip: 0.50000+-0.00000');
  view.update({ ...info, step: 4 });
  view.stop();
  const out = c.text();
  assert.match(out, /\u2588+\u2591* 1\/4 \| 3\.0 samples\/s \| loss 1\.5000/);
  assert.match(out, /\r\x1b\[2K\[lfw\]\[1\]Accuracy-Flip/);
  assert.match(out, /4\/4 \|/);
});
