// `attfc demo` (what `npm start` runs): synthetic faces -> AttFC training -> verification -> export, in
// a few minutes on a 2-core CPU, with a short report at the end.
import { Command } from 'commander';
import path from 'node:path';
import { formatDuration } from '../../train/progress.js';

export const DEMO = {
  identities: 600,
  imagesPerIdentity: 10,
  size: 48,
  backbone: 'mbf' as const,
  widthMultiplier: 0.5,
  batchSize: 64,
  steps: 600,
  seed: 0,
};

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('the built-in demo: make a synthetic face set (cached), train AttFC on it, evaluate on held-out identities, export the model')
    .option('--out <dir>', 'where the data, logs and model go', 'runs/demo')
    .option('--steps <n>', 'training steps', String(DEMO.steps))
    .action(async (o: { out: string; steps: string }) => {
      const { runDemo } = await import('../demo.js');
      await runDemo(path.resolve(o.out), Number(o.steps));
    });
}

export { formatDuration };
