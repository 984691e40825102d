// The run-folder lock on its own: exclusive while its owner lives, reclaimed from a dead owner or from a
// pid that now belongs to another process (pid reuse), released on demand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { lockFolder, LOCK_FILE } from '../../src/util/folderLock.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'attfc-lock-'));
const owner = (pid: number, startTime: number | null) => JSON.stringify({ pid, host: os.hostname(), startTime, startedAt: 'earlier', command: 'attfc train' });

test('a held lock refuses a second taker, naming the owner; release frees it', () => {
  const dir = tmp();
  const lock = lockFolder(dir, 'run folder');
  assert.equal(JSON.parse(readFileSync(path.join(dir, LOCK_FILE), 'utf8')).pid, process.pid);
  assert.throws(() => lockFolder(dir, 'run folder'), new RegExp(`this run folder is in use by another attfc process \\(pid ${process.pid}, since .*\\), this one`));
  lock.release();
  assert.ok(!existsSync(path.join(dir, LOCK_FILE)));
  lockFolder(dir, 'run folder').release();
});

test('a lock whose owner died, or whose pid now belongs to a later process, is reclaimed; a live owner keeps it', async () => {
  const dir = tmp();
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  writeFileSync(path.join(dir, LOCK_FILE), owner(dead, null));
  lockFolder(dir, 'run folder').release();

  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  try {
    await new Promise((r) => child.once('spawn', r));
    const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
    const startTime = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    writeFileSync(path.join(dir, LOCK_FILE), owner(child.pid!, startTime));
    assert.throws(() => lockFolder(dir, 'run folder'), new RegExp(`in use by another attfc process \\(pid ${child.pid}, since earlier\\)`));
    writeFileSync(path.join(dir, LOCK_FILE), owner(child.pid!, startTime - 1)); // the pid's earlier life
    const lock = lockFolder(dir, 'run folder');
    assert.equal(JSON.parse(readFileSync(path.join(dir, LOCK_FILE), 'utf8')).pid, process.pid);
    lock.release();
  } finally {
    child.kill();
  }
});
