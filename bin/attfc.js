#!/usr/bin/env node
// attfc command-line entry: runs the compiled CLI in dist/ (`npm run build`; `npm ci` and `npm pack` build it).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write(`attfc: ${fileURLToPath(main)} is missing: run \`npm run build\` in the attfc folder first\n`);
  process.exit(1);
}
await import(main.href);
