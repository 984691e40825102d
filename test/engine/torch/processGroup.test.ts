// The c10d process group of the libtorch addon, with two real processes on loopback: every collective's
// result on both ranks, the persistent gradient bucket (and its refusal to overwrite live results), the
// store, a peer that dies (the survivor's next collective fails with a ProcessGroupError, not a hang),
// and a store nobody runs (the error names its address and port).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { torchSkipReason } from '../../helpers/engine.js';

const skip = torchSkipReason();
const fixture = new URL('./fixtures/pgRank.ts', import.meta.url).pathname;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

type RankOut = Record<string, unknown> & { rank: number };

async function ranks(scenario: string, worldSize = 2, env: Record<string, string> = {}): Promise<RankOut[]> {
  const port = String(env.MASTER_PORT ?? (await freePort()));
  const runs = Array.from({ length: worldSize === 2 && scenario === 'no-store' ? 1 : worldSize }, (_, r) => {
    const rank = scenario === 'no-store' ? 1 : r;
    const child = spawn(process.execPath, ['--import', 'tsx', fixture], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RANK: String(rank), WORLD_SIZE: String(worldSize), MASTER_PORT: port, PG_SCENARIO: scenario, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    return new Promise<RankOut>((resolve, reject) =>
      child.on('exit', (code) => {
        const line = stdout.trim().split('\n').pop() ?? '';
        try {
          resolve(JSON.parse(line) as RankOut);
        } catch {
          reject(new Error(`rank ${rank} exited ${code} without a result; stderr: ${stderr}`));
        }
      }),
    );
  });
  return (await Promise.allSettled(runs)).flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
}

test('two ranks: allreduce, allgather, broadcast, float64 and int32 values, a reused gradient bucket, the store', { skip, timeout: 120_000 }, async () => {
  const out = await ranks('collectives');
  assert.equal(out.length, 2);
  for (const o of out) {
    assert.equal(o.error, undefined, `rank ${o.rank}: ${String(o.error)}`);
    assert.deepEqual(o.sum, [3, 30, 6, -1]);
    assert.deepEqual(o.max, [2, 20, 3, 0]);
    assert.deepEqual(o.gatherShape, [4, 2]);
    assert.deepEqual(o.gather, [1, 10, 3, 0, 2, 20, 3, -1], 'rank 0 rows first');
    assert.deepEqual(o.broadcast, [2, 20, 3, -1], "rank 1's values");
    const v = o.values as number[];
    assert.ok(Math.abs(v[0] - 0.3) < 1e-15, 'float64 stays float64');
    assert.equal(v[1], 2 ** 41 + 1);
    assert.deepEqual(o.gatherValues, [0, 7, 1, 7]);
    for (const round of [0, 1]) assert.deepEqual(o[`bucket${round}`], [[1, 2], [2, 2], [2, 4, 6, 1]], `bucket round ${round}`);
    assert.match(String(o.reuse), /bucket 0 is still in use/);
    assert.equal(o.store, 'hello from rank 0');
    assert.equal(o.missingKey, null);
  }
});

test('a rank that dies: the survivor\'s next collective fails at once with a ProcessGroupError naming the peer', { skip, timeout: 120_000 }, async () => {
  const t0 = Date.now();
  const out = await ranks('peer-dies');
  const survivor = out.find((o) => o.rank === 0);
  assert.ok(survivor, 'rank 0 reported');
  assert.deepEqual(survivor.sum, [3, 30, 6, -1]);
  assert.match(String(survivor.error), /^peer: rank 0: allreduce \(sum\) failed: .*(closed by peer|reset by peer|Read error)/);
  assert.ok(Date.now() - t0 < 60_000, 'within a minute');
});

test('a store nobody runs: joining fails within the timeout, naming the address and port', { skip, timeout: 120_000 }, async () => {
  const port = String(await freePort());
  const [o] = await ranks('no-store', 2, { MASTER_PORT: port, PG_TIMEOUT_MS: '3000' });
  assert.match(String(o.error), new RegExp(`^store: rank 1 of 2 could not join the process group through the rendezvous store at 127\\.0\\.0\\.1:${port} within 3 s`));
});
