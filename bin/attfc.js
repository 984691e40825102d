#!/usr/bin/env node
// attfc command-line entry: loads the TypeScript sources through tsx (no build step needed).
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
