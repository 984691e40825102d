// Every CLI command module registers itself on the program here.
import type { Command } from 'commander';
import { registerDataCommands } from './data.js';
import { registerTrainCommand } from './train.js';
import { registerDemoCommand } from './demo.js';
import { registerEvalCommands } from './eval.js';
import { registerSynthCommand } from './synth.js';
import { registerServeCommand } from './serve.js';
import { registerOnnxCommands } from './onnx.js';
import { registerFaceCommands } from './face.js';

export const commandModules: ((program: Command) => void)[] = [
  registerTrainCommand,
  registerDemoCommand,
  (p) => registerDataCommands(p),
  (p) => registerEvalCommands(p),
  (p) => registerSynthCommand(p),
  (p) => registerServeCommand(p),
  (p) => registerOnnxCommands(p),
  (p) => registerFaceCommands(p),
];
