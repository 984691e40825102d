// The attfc command line. Each command lives in its own module under src/cli/commands.
import { Command, Option } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { BACKEND_NAMES, DEVICE_NAMES, shutdownEngine } from '../engine/index.js';
import { AttfcError, isUserError } from '../errors.js';
import { commandModules } from './commands/index.js';

const pkg = createRequire(import.meta.url)('../../package.json') as { version: string; description: string };

export function buildProgram(): Command {
  const program = new Command('attfc')
    .description(pkg.description)
    .version(pkg.version)
    .addOption(
      new Option('--backend <name>', 'compute backend; auto tries tensorflow (tfjs-node), torch (libtorch addon, if built), wasm, cpu (env ATTFC_BACKEND)')
        .choices([...BACKEND_NAMES])
        .default('auto'),
    )
    .option('--threads <n>', 'WASM threads or libtorch intra-op threads (env ATTFC_THREADS; default: all cores)')
    .addOption(new Option('--device <name>', 'backend torch: cpu, or cuda when libtorch has CUDA (env ATTFC_DEVICE; default: cuda if a GPU is visible)').choices([...DEVICE_NAMES]))
    .showHelpAfterError('(run with --help for usage)')
    .hook('preAction', (cmd) => {
      // Commands call initEngine(), which reads these; explicit flags win over the environment.
      const o = cmd.optsWithGlobals() as { backend?: string; threads?: string; device?: string };
      if (o.backend && o.backend !== 'auto') process.env.ATTFC_BACKEND = o.backend;
      if (o.threads !== undefined) process.env.ATTFC_THREADS = checkThreads('--threads ', o.threads);
      else if (process.env.ATTFC_THREADS) checkThreads('ATTFC_THREADS=', process.env.ATTFC_THREADS);
      const backend = process.env.ATTFC_BACKEND;
      if (backend && !(BACKEND_NAMES as readonly string[]).includes(backend))
        throw new AttfcError(`ATTFC_BACKEND=${backend}: expected one of ${BACKEND_NAMES.join(', ')}`);
      if (o.device) process.env.ATTFC_DEVICE = o.device;
    });
  for (const register of commandModules) register(program);
  return program;
}

/** A thread count from the flag or the environment (`what` names it in the message). */
function checkThreads(what: string, value: string): string {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 1) throw new AttfcError(`${what}${value}: expected a whole number >= 1`);
  return String(n);
}

export async function main(argv = process.argv): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (isUserError(e)) {
      process.stderr.write(`attfc: ${(e as Error).message}\n`);
      recordForTorchrun(`attfc: ${(e as Error).message}`);
      return (e as { exitCode?: number }).exitCode ?? 1;
    }
    recordForTorchrun(`attfc: internal error: ${(e as Error)?.stack ?? e}`);
    throw e;
  } finally {
    shutdownEngine();
  }
}

/**
 * Under torchrun, the reason this worker stopped, in the error file its agent reads (torch.distributed
 * elastic's format): the agent's failure summary then shows attfc's line instead of "<N/A>".
 */
function recordForTorchrun(message: string): void {
  const file = process.env.TORCHELASTIC_ERROR_FILE;
  if (!file) return;
  try {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify({ message: { message, extraInfo: { py_callstack: message, timestamp: String(Math.floor(Date.now() / 1000)) } } }));
  } catch {
    /* the summary falls back to torchrun's own words */
  }
}

// Exit explicitly: worker pools (wasm threads, decoders) must never keep a finished command alive.
const isEntry = process.argv[1] && /(attfc(\.js)?|main\.[jt]s)$/.test(process.argv[1]);
if (isEntry) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`attfc: internal error: ${(e as Error)?.stack ?? e}\n`);
      process.exit(70);
    },
  );
}
