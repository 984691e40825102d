// `attfc train --nproc N`: starts N ranks of a distributed run on this machine, with the environment
// torchrun would give them (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT),
// so one command does on one machine what `torchrun --no_python --nproc_per_node N node bin/attfc.js
// train ...` does. Rank 0's output is the run's; other ranks' lines are shown prefixed with their rank.
//
// When a rank fails, the others are stopped (they notice at their next collective; any still running
// after a grace period is killed) and the launcher says in one line which rank failed and at which step.
// Signals: Ctrl-C and SIGTERM reach each rank once (the ranks run in their own process group), and the
// ranks stop together with a checkpoint; a rank whose launcher vanished stops the same way.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import { AttfcError } from '../errors.js';
import { PEER_FAILED_EXIT } from '../train/distributed/launchEnv.js';
/** Seconds the other ranks get to stop by themselves after one failed, before they are killed. */
const GRACE_SECONDS = 20;

/** A free TCP port on the loopback interface for rank 0's rendezvous store. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** The command line without `--nproc N` / `--nproc=N`. */
export function withoutNproc(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--nproc') {
      i++;
      continue;
    }
    if (argv[i].startsWith('--nproc=')) continue;
    out.push(argv[i]);
  }
  return out;
}

interface RankState {
  child: ChildProcess;
  step: number;
  exit: { code: number | null; signal: NodeJS.Signals | null } | null;
  /** A rank other than 0: its lines that are not its own prefixed warnings, held until it is known whether it caused a failure. */
  held: string[];
}

/** Calls `line` with each complete line of a stream. */
function eachLine(from: NodeJS.ReadableStream, line: (text: string) => void): void {
  let rest = '';
  from.setEncoding('utf8');
  from.on('data', (chunk: string) => {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop() ?? '';
    for (const l of lines) line(l);
  });
  from.on('end', () => {
    if (rest) line(rest);
  });
}

/**
 * Runs `args` (an `attfc train` command line without --nproc) as `nproc` local ranks; resolves with the
 * exit code of the run.
 */
export async function launchLocalRanks(nproc: number, args: readonly string[]): Promise<number> {
  if (process.env.WORLD_SIZE && Number(process.env.WORLD_SIZE) > 1)
    throw new AttfcError(`--nproc ${nproc}: this process is already rank ${process.env.RANK ?? '?'} of a distributed run (WORLD_SIZE=${process.env.WORLD_SIZE}); drop --nproc when a launcher such as torchrun starts the ranks`);
  const port = await freePort();
  const cores = os.availableParallelism();
  // each rank gets its share of the cores unless the user chose (--threads, ATTFC_THREADS, OMP_NUM_THREADS)
  const threadsChosen = process.env.ATTFC_THREADS !== undefined || process.env.OMP_NUM_THREADS !== undefined || args.some((a) => a === '--threads' || a.startsWith('--threads='));
  const script = process.argv[1];
  const tty = process.stderr.isTTY === true;
  // the rank whose death stopped the run, once known (its words, or the launcher's line, explain it)
  let failure: { rank: number; line: string } | null = null;
  const ranks: RankState[] = [];
  for (let rank = 0; rank < nproc; rank++) {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      RANK: String(rank),
      LOCAL_RANK: String(rank),
      WORLD_SIZE: String(nproc),
      LOCAL_WORLD_SIZE: String(nproc),
      GROUP_RANK: '0',
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: String(port),
      ATTFC_LAUNCHER: '1',
      ...(threadsChosen ? {} : { OMP_NUM_THREADS: String(Math.max(1, Math.floor(cores / nproc))) }),
      // rank 0 draws the progress bar through the launcher's terminal
      ...(rank === 0 && tty ? { ATTFC_STDERR_TTY: '1', COLUMNS: String(process.stderr.columns ?? 80) } : {}),
    };
    const child = spawn(process.execPath, [...process.execArgv, script, ...args], { env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], detached: true });
    const state: RankState = { child, step: 0, exit: null, held: [] };
    ranks.push(state);
    child.on('message', (m: unknown) => {
      const msg = m as { type?: string; step?: number };
      if (msg?.type === 'step' && typeof msg.step === 'number') state.step = msg.step;
    });
    // rank 0 speaks for the run (until another rank's failure stopped it: then it only lost that rank)
    if (rank === 0) {
      child.stderr!.on('data', (chunk: Buffer) => failure === null && process.stderr.write(chunk));
      eachLine(child.stdout!, (l) => failure === null && process.stdout.write(l + '\n'));
    } else {
      // other ranks print only their warnings (already marked with their rank); the rest waits
      eachLine(child.stderr!, (l) => (l.startsWith('[rank ') ? process.stderr.write(l + '\n') : state.held.push(l)));
      eachLine(child.stdout!, (l) => process.stdout.write(`[rank ${rank}] ${l}\n`));
    }
  }

  const signalAll = (signal: NodeJS.Signals) => {
    for (const r of ranks) if (!r.exit) r.child.kill(signal);
  };
  const onSignal = (signal: NodeJS.Signals) => signalAll(signal);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let killTimer: NodeJS.Timeout | null = null;

  const exits = ranks.map(
    (r, rank) =>
      new Promise<void>((resolve) => {
        r.child.on('exit', (code, signal) => {
          r.exit = { code, signal };
          const failed = signal !== null || (code !== 0 && code !== 130 && code !== 143);
          // a rank that failed because rank 0 gave up (an error every rank met) leaves the word to rank 0
          const own = failed && code !== PEER_FAILED_EXIT && !(rank > 0 && ranks[0].exit === null && signal === null && startupFailure(r));
          if (own && failure === null) {
            const how = signal ? `was killed by ${signal}` : `exited with status ${code}`;
            failure = { rank, line: `attfc: rank ${rank} ${how} at step ${Math.max(r.step, ...ranks.map((o) => o.step)) + 1}; the other ranks were stopped (no checkpoint written)` };
            // the others find out at their next collective; any still running after the grace period is killed
            killTimer = setTimeout(() => signalAll('SIGKILL'), GRACE_SECONDS * 1000);
            killTimer.unref();
          }
          resolve();
        });
      }),
  );
  await Promise.all(exits);
  if (killTimer) clearTimeout(killTimer);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  const f = failure as { rank: number; line: string } | null;
  if (f) {
    const r = ranks[f.rank];
    // a rank that said why it stopped has said it; a killed one is named here
    if (f.rank > 0) for (const l of r.held) process.stderr.write(`[rank ${f.rank}] ${l}\n`);
    if (r.exit!.signal !== null || r.exit!.code === null || r.exit!.code > 1) process.stderr.write(f.line + '\n');
    return r.exit!.code !== null && r.exit!.code !== 0 ? r.exit!.code : 1;
  }
  const failed = ranks.findIndex((r) => r.exit!.code !== 0);
  if (failed < 0) return 0;
  if (failed > 0) for (const l of ranks[failed].held) process.stderr.write(`[rank ${failed}] ${l}\n`);
  return ranks[failed].exit!.code ?? 1;
}

/** A rank that stopped with an error before its first step (every rank usually meets the same one). */
function startupFailure(r: RankState): boolean {
  return r.step === 0 && r.exit?.code === 1;
}
