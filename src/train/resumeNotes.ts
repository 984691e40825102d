// What a resume that is not an exact continuation says about itself: training on other data (allowed
// with --allow-data-change), or batch norm normalising other groups of rows (another --replicas or
// --parallel). One line each, for the log.
import type { RunPlan } from './runPlan.js';

/** "8 rows on 1 replica", "4 + 4 rows on 2 replicas". */
function describeRows(rows: number[]): string {
  return `${rows.join(' + ')} rows on ${rows.length} replica${rows.length === 1 ? '' : 's'}`;
}

/**
 * The notes for a resume of `plan`: `sameImages` whether the sampler kept its position, `savedRows` the
 * batch-norm row groups the checkpoint was trained with (null for checkpoints that do not say).
 */
export function resumeNotes(plan: RunPlan, sameImages: boolean, savedRows: number[] | null, rows: number[]): string[] {
  const notes: string[] = [];
  if (plan.dataChange) {
    const epoch = (plan.resumed?.checkpoint.json.pipeline as { sampler?: { epoch?: number } } | undefined)?.sampler?.epoch ?? 0;
    notes.push(
      `attfc: note: continuing on other data (--allow-data-change): ${plan.config.data} differs from the checkpoint's in ${plan.dataChange}` +
        (sameImages ? '' : `, sampling from the start of epoch ${epoch}`),
    );
  }
  if (savedRows && savedRows.join('+') !== rows.join('+'))
    notes.push(
      `attfc: note: batch norm now normalises batches of ${describeRows(rows)} (the checkpoint: ${describeRows(savedRows)}); ` +
        `the continuation is not bit-identical to an uninterrupted run`,
    );
  return notes;
}
