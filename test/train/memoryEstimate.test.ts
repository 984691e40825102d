// The largest batch the heap estimate admits, suggested when a configuration is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { largestFittingRows, type HeapEstimate } from '../../src/train/memoryEstimate.js';

const GiB = 1024 ** 3;
const estimate = (scaling: HeapEstimate['scaling']): HeapEstimate => ({
  parameters: 1 * GiB,
  activations: 0,
  keyForward: 0,
  head: 0,
  total: 0,
  limit: 4 * GiB,
  scaling,
});

test('largest fitting rows: the tighter of the query and key-forward lines, within 95% of the heap', () => {
  // room = 0.95 * 4 - 1 = 2.8 GiB; query (2.8 - 0.1) / 0.2 = 13.5 -> 13
  assert.equal(largestFittingRows(estimate({ queryFixed: 0.1 * GiB, queryPerRow: 0.2 * GiB, keyFixed: 0, keyPerRow: 0 }), 0), 13);
  // keys: (2.8 - 0.3 - 0) / 0.25 = 10 -> the key forward limits
  assert.equal(largestFittingRows(estimate({ queryFixed: 0.1 * GiB, queryPerRow: 0.2 * GiB, keyFixed: 0, keyPerRow: 0.25 * GiB }), 0.3 * GiB), 10);
  // nothing fits
  assert.equal(largestFittingRows(estimate({ queryFixed: 3 * GiB, queryPerRow: 0.2 * GiB, keyFixed: 0, keyPerRow: 0 }), 0), 0);
});
