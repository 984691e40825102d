// attfc's own version (from its package.json), for run records and model metadata.
import { readFileSync } from 'node:fs';

let cached: string | null = null;

export function packageVersion(): string {
  if (cached) return cached;
  try {
    // src/util/ and dist/util/ both sit two levels below the package root
    cached = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    cached = 'unknown';
  }
  return cached;
}
