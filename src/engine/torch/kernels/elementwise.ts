// Element-wise kernels: unary maths, binary arithmetic with broadcasting, comparisons, logic, casts.
import * as tf from '@tensorflow/tfjs-core';
import type { KernelTable, TorchKernel, TorchKernelArgs } from './types.js';

/** tfjs unary kernel -> ATen operator with the same semantics. */
const UNARY: Record<string, string> = {
  Abs: 'abs',
  Acos: 'acos',
  Acosh: 'acosh',
  Asin: 'asin',
  Asinh: 'asinh',
  Atan: 'atan',
  Atanh: 'atanh',
  Ceil: 'ceil',
  Cos: 'cos',
  Cosh: 'cosh',
  Erf: 'erf',
  Exp: 'exp',
  Expm1: 'expm1',
  Floor: 'floor',
  Log: 'log',
  Log1p: 'log1p',
  Neg: 'neg',
  Reciprocal: 'reciprocal',
  Relu: 'relu',
  Round: 'round', // both round half to even
  Rsqrt: 'rsqrt',
  Selu: 'selu',
  Sigmoid: 'sigmoid',
  Sign: 'sign',
  Sin: 'sin',
  Sinh: 'sinh',
  Softplus: 'softplus',
  Sqrt: 'sqrt',
  Square: 'square',
  Tan: 'tan',
  Tanh: 'tanh',
  Elu: 'elu',
};

/** Unary kernels whose result is bool whatever the input. */
const UNARY_BOOL: Record<string, string> = {
  IsFinite: 'isfinite',
  IsInf: 'isinf',
  IsNan: 'isnan',
  LogicalNot: 'logical_not',
};

/** Binary arithmetic: result dtype is tfjs's upcast of the inputs. */
const BINARY: Record<string, string> = {
  Add: 'add.Tensor',
  Sub: 'sub.Tensor',
  Multiply: 'mul.Tensor',
  RealDiv: 'div.Tensor',
  Maximum: 'maximum',
  Minimum: 'minimum',
  Pow: 'pow.Tensor_Tensor',
  Mod: 'remainder.Tensor', // floor modulo, like tfjs (sign of the divisor)
  Atan2: 'atan2',
};

const COMPARE: Record<string, string> = {
  Equal: 'eq.Tensor',
  NotEqual: 'ne.Tensor',
  Greater: 'gt.Tensor',
  GreaterEqual: 'ge.Tensor',
  Less: 'lt.Tensor',
  LessEqual: 'le.Tensor',
  LogicalAnd: 'logical_and',
  LogicalOr: 'logical_or',
};

/** Unary kernels that keep an int32 input int32 (the rest return float32, as tfjs's do). */
const KEEPS_INT = new Set(['Abs', 'Ceil', 'Floor', 'Neg', 'Relu', 'Round', 'Sign', 'Square']);

function unary(name: string, op: string, dtype?: tf.DataType): TorchKernel {
  return ({ inputs, backend }) => {
    const x = inputs.x;
    const out = dtype ?? (x.dtype === 'float32' || KEEPS_INT.has(name) ? x.dtype : 'float32');
    return backend.output(backend.aten.t(op, backend.handle(x)), out);
  };
}

function binary(op: string, bool: boolean): TorchKernel {
  return ({ inputs, backend }) => {
    const { a, b } = inputs;
    return backend.output(backend.aten.t(op, backend.handle(a), backend.handle(b)), bool ? 'bool' : tf.upcastType(a.dtype, b.dtype));
  };
}

/** tfjs FloorDiv returns int32 whatever the inputs. */
function floorDiv({ inputs, backend }: TorchKernelArgs): tf.TensorInfo {
  const { a, b } = inputs;
  return backend.output(backend.aten.t('div.Tensor_mode', backend.handle(a), backend.handle(b), 'floor'), 'int32');
}

function squaredDifference({ inputs, backend }: TorchKernelArgs): tf.TensorInfo {
  const { a, b } = inputs;
  return backend.scoped((s) => {
    const d = s.op('sub.Tensor', backend.handle(a), backend.handle(b));
    return backend.output(backend.aten.t('square', d), tf.upcastType(a.dtype, b.dtype));
  });
}

function addN({ inputs, backend }: TorchKernelArgs): tf.TensorInfo {
  const list = Object.values(inputs) as tf.TensorInfo[];
  return backend.scoped((s) => {
    let acc = s.op('clone', backend.handle(list[0]));
    for (let i = 1; i < list.length; i++) acc = s.op('add.Tensor', acc, backend.handle(list[i]));
    return backend.output(s.keep(acc), list[0].dtype);
  });
}

function cast({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo {
  const dtype = attrs.dtype as tf.DataType;
  const x = inputs.x;
  // a copy even when the dtype is unchanged: tfjs treats Cast as a new tensor
  return backend.output(backend.aten.t('to.dtype', backend.handle(x), dtype, false, true), dtype);
}

function clipByValue({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo {
  const x = inputs.x;
  return backend.output(backend.aten.t('clamp', backend.handle(x), attrs.clipValueMin, attrs.clipValueMax), x.dtype);
}

/** tfjs Step: 1 where x > 0, alpha elsewhere, NaN stays NaN. */
function step({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo {
  const x = inputs.x;
  const alpha = (attrs.alpha as number | undefined) ?? 0;
  return backend.scoped((s) => {
    const hx = backend.handle(x);
    const positive = s.op('gt.Scalar', hx, 0);
    const stepped = s.op('where.ScalarSelf', positive, 1.0, s.op('full_like', hx, alpha));
    return backend.output(backend.aten.t('where.self', s.op('isnan', hx), hx, stepped), x.dtype);
  });
}

function leakyRelu({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo {
  return backend.output(backend.aten.t('leaky_relu', backend.handle(inputs.x), attrs.alpha), inputs.x.dtype);
}

function relu6({ inputs, backend }: TorchKernelArgs): tf.TensorInfo {
  return backend.output(backend.aten.t('hardtanh', backend.handle(inputs.x), 0, 6), inputs.x.dtype);
}

/** Select(condition, t, e): tf.where has already broadcast the three to one shape. */
function select({ inputs, backend }: TorchKernelArgs): tf.TensorInfo {
  const { condition, t, e } = inputs;
  return backend.output(backend.aten.t('where.self', backend.handle(condition), backend.handle(t), backend.handle(e)), tf.upcastType(t.dtype, e.dtype));
}

function zerosLike({ inputs, backend }: TorchKernelArgs): tf.TensorInfo {
  return backend.output(backend.aten.t('zeros_like', backend.handle(inputs.x)), inputs.x.dtype);
}

function onesLike({ inputs, backend }: TorchKernelArgs): tf.TensorInfo {
  return backend.output(backend.aten.t('ones_like', backend.handle(inputs.x)), inputs.x.dtype);
}

export const ELEMENTWISE_KERNELS: KernelTable = {
  ...Object.fromEntries(Object.entries(UNARY).map(([k, op]) => [k, unary(k, op)])),
  ...Object.fromEntries(Object.entries(UNARY_BOOL).map(([k, op]) => [k, unary(k, op, 'bool')])),
  ...Object.fromEntries(Object.entries(BINARY).map(([k, op]) => [k, binary(op, false)])),
  ...Object.fromEntries(Object.entries(COMPARE).map(([k, op]) => [k, binary(op, true)])),
  FloorDiv: floorDiv,
  SquaredDifference: squaredDifference,
  AddN: addN,
  Cast: cast,
  ClipByValue: clipByValue,
  Step: step,
  LeakyRelu: leakyRelu,
  Relu6: relu6,
  Select: select,
  ZerosLike: zerosLike,
  OnesLike: onesLike,
};
