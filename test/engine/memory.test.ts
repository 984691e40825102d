// The OOM guard: an allocation the wasm heap cannot hold raises a clear error before anything is
// written, so no tensor is ever placed at address 0 (where the upload's values would overwrite other
// tensors and the runtime's static data). Runs in a child process: its heap reaches the 4 GiB limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

for (const threads of [1, 2]) {
  test(`an upload or kernel output the full wasm heap cannot hold throws WasmHeapExhaustedError and earlier tensors keep their values (${threads} thread${threads > 1 ? 's' : ''})`, () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(here, 'fixtures', 'exhaustHeap.ts'), String(threads)], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(r.status, 0, `child failed: ${r.stderr.slice(-600)}\n${r.stdout.slice(-600)}`);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.ok(out.heapBytes > 4 * 2 ** 30 - 64 * 2 ** 20, `heap reached ${out.heapBytes}`);
    assert.equal(out.errors.length, 2);
    for (const e of out.errors) {
      assert.equal(e.name, 'WasmHeapExhaustedError', e.message);
      assert.match(e.message, /^WASM heap exhausted allocating \[4194304\] float32 \(16\.0 MiB; heap 4\.00 GiB of at most 4 GiB\): reduce --batch-size/);
    }
    assert.equal(out.intact, true, 'a tensor created before the failed allocation was overwritten');
    assert.equal(out.afterwardsOk, true, 'small allocations still work after the error');
  });
}
