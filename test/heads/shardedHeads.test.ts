// Heads split across ranks (--shard-head) against the same head whole, without processes: three ranks
// in worker threads joined by shared-memory collectives (test/helpers/threadCollectives.ts), on the cpu
// backend. Uneven shards (7 classes over 3 ranks; 12 DCC slots over 3 ranks with batches of 6, so an
// enqueue straddles the ranks' ranges and the ring wraps), a Partial FC step in which one rank holds
// none of the sampled classes. Per step: the ranks' loss shares add up to the whole head's loss, each
// rank's rows of the embeddings' gradient and its shard's gradient equal the whole head's, and the
// diagnostics agree; after the steps, the whole state gathered on rank 0 equals the whole head's, and a
// whole state restored into the shards gathers back unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnWorker } from '../../src/util/worker.js';
import { createSharedGroup } from '../helpers/threadCollectives.js';
import type { RankInput, RankReports } from './fixtures/shardRank.js';

const WORLD = 3;
const BATCH = 6;
// step 0 has no label of rank 2's classes (5, 6): with sample rate 0.15 a Partial FC sample is the batch's classes only
const LABELS = [
  [0, 1, 3, 0, 4, 2],
  [6, 5, 6, 1, 2, 3],
  [4, 4, 0, 6, 5, 1],
  [2, 3, 5, 0, 6, 6],
  [1, 0, 2, 3, 4, 5],
];

/** The three ranks' reports, each head kind in turn (started once, shared by the tests). */
async function runRanks(): Promise<RankReports[]> {
  const group = createSharedGroup(WORLD, BATCH);
  const workers = Array.from({ length: WORLD }, (_, rank) =>
    spawnWorker(new URL('./fixtures/shardRank', import.meta.url), true, { group, rank, labels: LABELS } satisfies RankInput),
  );
  const reports = workers.map(
    (worker, rank) =>
      new Promise<RankReports>((resolve, reject) => {
        worker.once('message', (r: RankReports) => resolve(r));
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`rank ${rank} exited (${code}) without a report`)));
      }),
  );
  // one failed rank leaves the others waiting at a barrier: end them all
  return Promise.all(reports).finally(() => Promise.all(workers.map((w) => w.terminate())));
}

let started: Promise<RankReports[]> | null = null;

for (const kind of ['fc', 'pfc', 'attfc'] as const) {
  test(`sharded ${kind} over 3 ranks equals the whole head: loss, gradients, diagnostics, gathered and restored state`, { timeout: 300_000 }, async () => {
    const reports = (await (started ??= runRanks())).map((r) => r[kind]);
    for (const r of reports) {
      const at = (what: string, step: number) => `${kind} rank ${r.rank} step ${step + 1}: ${what}`;
      r.loss.forEach((d, i) => assert.ok(d < 1e-5, at(`loss differs by ${d} (relative)`, i)));
      r.embeddingGrad.forEach((d, i) => assert.ok(d < 1e-4, at(`embedding gradient differs by ${d} of its largest value`, i)));
      if (kind !== 'attfc') r.shardGrad.forEach((d, i) => assert.ok(d < 1e-4, at(`shard gradient differs by ${d} of its largest value`, i)));
      r.diagnostics.forEach((d, i) => assert.ok(d < 1e-5, at(`diagnostics differ by ${d}`, i)));
      assert.ok(r.shardBytes < r.wholeBytes / 2, `${kind} rank ${r.rank}: shard ${r.shardBytes} bytes of the whole head's ${r.wholeBytes}`);
    }
    const root = reports.find((r) => r.rank === 0)!;
    assert.ok(root.state! < 1e-5, `${kind}: the state gathered on rank 0 differs from the whole head's by ${root.state} (relative)`);
    assert.equal(root.restored, 0, `${kind}: a whole state restored into the shards gathers back unchanged`);
  });
}
