// The OOM guard: exhausting the 4 GiB wasm heap must raise a clear error, never place a tensor at
// address 0 (which silently overwrites other tensors). Runs in a child process so the ~4 GiB heap is
// released when it ends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

test('exhausting the wasm heap throws WasmHeapExhaustedError and leaves earlier tensors intact', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(here, 'fixtures', 'exhaustHeap.ts')], {
    encoding: 'utf8',
    timeout: 240_000,
  });
  assert.equal(r.status, 0, `child failed: ${r.stderr}\n${r.stdout}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.equal(out.errorName, 'WasmHeapExhaustedError');
  assert.match(out.message, /^WASM heap exhausted allocating \[64,1024,1024\] float32 .*reduce --batch-size/);
  assert.ok(out.allocated >= 10, `allocated ${out.allocated} chunks of 256 MiB before failing`);
  assert.equal(out.intact, true, 'earlier chunks were overwritten');
  assert.equal(out.afterwardsOk, true, 'small allocations still work after the error');
  assert.ok(out.heapBytes > 3.5 * 2 ** 30, `heap high-water ${out.heapBytes}`);
});
