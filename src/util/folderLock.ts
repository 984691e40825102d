// An exclusive lock on a folder for one process: a `.lock` file created with O_EXCL holding the owner's
// pid, host and process start time. A lock whose owner is gone (no such pid, or the pid now belongs to a
// process started at another time) is stale and reclaimed. Liveness is read from the process table, not
// from a heartbeat: a trainer's main thread may block for minutes inside one step, which would make a
// timestamp-refreshing lock look abandoned while its owner is still writing.
import { closeSync, existsSync, openSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AttfcError } from '../errors.js';

export const LOCK_FILE = '.lock';

interface LockOwner {
  pid: number;
  host: string;
  /** Start time of the process (Linux: clock ticks after boot, from /proc); null where unknown. */
  startTime: number | null;
  startedAt: string;
  command: string;
}

export interface FolderLock {
  readonly path: string;
  release(): void;
}

/** Start time of process `pid` from /proc/<pid>/stat (field 22), or null where there is no /proc. */
function processStartTime(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) is in parentheses and may contain spaces: count fields after the last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const v = Number(fields[19]);
    return Number.isFinite(v) ? v : null;
  } catch {
    return null;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by another user
  }
}

/** 'alive', 'dead', or 'unknown' (another host: its process table cannot be read from here). */
function ownerState(o: LockOwner): 'alive' | 'dead' | 'unknown' {
  if (o.host !== os.hostname()) return 'unknown';
  if (!isAlive(o.pid)) return 'dead';
  if (o.startTime !== null) {
    const now = processStartTime(o.pid);
    if (now !== null && now !== o.startTime) return 'dead'; // the pid was reused by a later process
  }
  return 'alive';
}

function readOwner(file: string): LockOwner | null {
  try {
    const o = JSON.parse(readFileSync(file, 'utf8')) as LockOwner;
    return typeof o?.pid === 'number' && typeof o.host === 'string' ? o : null;
  } catch {
    return null;
  }
}

const sameOwner = (a: LockOwner | null, b: LockOwner | null) => !!a && !!b && a.pid === b.pid && a.host === b.host && a.startedAt === b.startedAt;

/** A lock file another process is still writing (created, content not yet there) is given this long. */
const UNREADABLE_GRACE_MS = 5000;

/**
 * Takes the lock on `dir` (which must exist) for this process, or throws an AttfcError naming the
 * owner. `what` says what the folder is, for the message ("run folder"). Released by release() or
 * when the process exits.
 */
export function lockFolder(dir: string, what: string): FolderLock {
  const file = path.join(dir, LOCK_FILE);
  const me: LockOwner = {
    pid: process.pid,
    host: os.hostname(),
    startTime: processStartTime(process.pid),
    startedAt: new Date().toISOString(),
    command: process.argv.slice(1).join(' '),
  };
  for (let attempt = 0; attempt < 5; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, 'wx');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = readOwner(file);
      if (!owner) {
        let age = Infinity;
        try {
          age = Date.now() - statSync(file).mtimeMs;
        } catch {
          continue; // removed meanwhile: try again
        }
        if (age < UNREADABLE_GRACE_MS) throw new AttfcError(`${dir}: another process is taking this ${what}'s lock (${file}); try again in a moment`);
      } else {
        const state = owner.pid === process.pid && owner.host === me.host ? 'alive' : ownerState(owner);
        if (state !== 'dead') {
          const who = `pid ${owner.pid}${owner.host !== me.host ? ` on ${owner.host}` : ''}, since ${owner.startedAt}`;
          throw new AttfcError(
            `${dir}: this ${what} is in use by another attfc process (${who})${owner.pid === process.pid ? ', this one' : ''}; ` +
              `wait for it to finish or choose another folder${state === 'unknown' ? `; if that process is gone, delete ${file}` : ''}`,
          );
        }
      }
      // stale: move it aside (only one reclaimer can move this file), check it is the one judged stale
      const aside = `${file}.stale-${process.pid}`;
      try {
        renameSync(file, aside);
      } catch {
        continue;
      }
      const moved = readOwner(aside);
      if (owner && !sameOwner(moved, owner)) {
        // a live process took the lock between our read and the rename: give it back
        try {
          if (!existsSync(file)) renameSync(aside, file);
        } catch {
          /* it took the lock again meanwhile */
        }
        continue;
      }
      rmSync(aside, { force: true });
      continue;
    }
    try {
      writeSync(fd, JSON.stringify(me) + '\n');
    } finally {
      closeSync(fd);
    }
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      process.off('exit', release);
      if (sameOwner(readOwner(file), me)) {
        try {
          unlinkSync(file);
        } catch {
          /* already gone */
        }
      }
    };
    process.on('exit', release);
    return { path: file, release };
  }
  throw new AttfcError(`${dir}: could not take this ${what}'s lock (${file}): other processes keep taking it`);
}
