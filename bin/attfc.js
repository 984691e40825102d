#!/usr/bin/env node
// attfc command-line entry: loads the TypeScript sources through tsx (no build step needed), with both
// of tsx's hooks as `node --import tsx` installs them: ES modules, and CommonJS (src/engine/gradients.ts
// needs the latter).
await import('tsx');
await import('../src/cli/main.ts');
