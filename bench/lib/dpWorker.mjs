// Worker-thread bootstrap: load TypeScript through tsx, then run the data-parallel worker.
import { register } from 'tsx/esm/api';

register();
await import('./dpWorkerMain.ts');
