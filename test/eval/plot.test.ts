// The ROC figure's FAR axis: it starts at the smallest FAR the negative pairs can resolve.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderRocSvg, smallestResolvableFar } from '../../src/eval/plot.js';

/** Exponents of the decade labels on the FAR axis, e.g. [-3, -2, -1, 0]. */
function decadeLabels(svg: string): number[] {
  const out: number[] = [];
  for (const m of svg.matchAll(/>10<tspan dy="-6" font-size="9">\u2212(\d+)<\/tspan><\/text>/g)) out.push(-Number(m[1]));
  if (/text-anchor="middle" font-size="12" fill="#333">1<\/text>/.test(svg)) out.push(0);
  return out.sort((a, b) => a - b);
}

test('smallest resolvable FAR: 1/#negatives of the set with the most, at most 0.1; 1e-6 without counts', () => {
  assert.equal(smallestResolvableFar([{ name: 'a', fpr: [], tpr: [], negatives: 1500 }]), 1 / 1500);
  assert.equal(smallestResolvableFar([{ name: 'a', fpr: [], tpr: [], negatives: 1500 }, { name: 'b', fpr: [], tpr: [], negatives: 3000 }]), 1 / 3000);
  assert.equal(smallestResolvableFar([{ name: 'a', fpr: [], tpr: [], negatives: 4 }]), 0.1);
  assert.equal(smallestResolvableFar([{ name: 'a', fpr: [], tpr: [] }]), 1e-6);
});

test('1,500 negative pairs: the axis starts at 6.7e-4 with decades 1e-3..1, not at 1e-6', () => {
  const fpr = [0, 1 / 1500, 0.01, 0.1, 1];
  const tpr = [0, 0.5, 0.8, 0.95, 1];
  const svg = renderRocSvg([{ name: 'synth', fpr, tpr, negatives: 1500 }]);
  assert.deepEqual(decadeLabels(svg), [-3, -2, -1, 0]);
  assert.match(svg, /starts at 1\/1500 negative pairs/);
  // the curve's first point with a false accept sits on the left edge of the plot (x = 78)
  const points = /<polyline [^>]*points="([^"]+)"/.exec(svg)![1].split(' ');
  assert.equal(points[1].split(',')[0], '78');
  const explicit = renderRocSvg([{ name: 'synth', fpr, tpr, negatives: 1500 }], { xMin: 1e-6 });
  assert.deepEqual(decadeLabels(explicit), [-6, -5, -4, -3, -2, -1, 0]);
});
