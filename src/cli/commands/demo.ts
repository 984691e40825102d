// `attfc demo` (what `npm start` runs): synthetic faces -> AttFC training -> verification -> export, in
// a few minutes on a 2-core CPU, with a short report at the end.
import { Command, InvalidArgumentError, Option } from 'commander';
import path from 'node:path';
import { formatDuration } from '../../train/progress.js';
import { DEMO, DEMO_TINY } from '../demoSetup.js';

function positiveSteps(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number >= 1');
  return n;
}

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('the built-in demo: make a synthetic face set (cached), train AttFC on it, evaluate on held-out identities, export the model')
    .option('--out <dir>', 'where the data, logs and model go (a previous demo run in <out>/run is replaced)', 'runs/demo')
    .option('--steps <n>', `training steps (default ${DEMO.steps})`, positiveSteps)
    .addOption(new Option('--tiny', 'test-only: a tiny data set and model, a few steps').hideHelp())
    .action(async (o: { out: string; steps?: number; tiny?: boolean }) => {
      const { runDemo } = await import('../demo.js');
      const setup = o.tiny ? DEMO_TINY : DEMO;
      await runDemo(path.resolve(o.out), o.steps ?? setup.steps, setup);
    });
}

export { formatDuration };
