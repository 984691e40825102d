// Learning-rate schedules, evaluated per iteration (the reference anneals per step, not per epoch).

export interface ScheduleOptions {
  lr: number;
  totalSteps: number;
  schedule: 'cosine' | 'poly';
  warmupSteps: number;
  /** Exponent of the polynomial schedule (insightface uses 2). */
  polyPower: number;
  /** Floor of the cosine schedule. */
  minLr: number;
}

/** Learning rate for the step about to run (0-based). */
export function learningRate(step: number, o: ScheduleOptions): number {
  if (o.warmupSteps > 0 && step < o.warmupSteps) return (o.lr * (step + 1)) / o.warmupSteps;
  const span = Math.max(1, o.totalSteps - o.warmupSteps);
  const t = Math.min(1, (step - o.warmupSteps) / span);
  if (o.schedule === 'poly') return o.lr * Math.pow(1 - t, o.polyPower);
  return o.minLr + 0.5 * (o.lr - o.minLr) * (1 + Math.cos(Math.PI * t));
}
