// A small, safe Python-pickle reader for the objects verification sets contain: lists/tuples of byte
// strings, booleans, small ints, and numpy arrays/scalars. It is a stack machine like pickle.py, but
// only a fixed list of globals can be called; anything else is rejected with the opcode and offset.
import { AttfcError } from '../errors.js';

/** A Python tuple (kept apart from lists only for error messages). */
export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}

/** A Python list. */
export class PyList {
  constructor(readonly items: PyValue[] = []) {}
}

/** A module-level name loaded by GLOBAL / STACK_GLOBAL (only the allowed ones ever exist). */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/** numpy dtype, e.g. 'u1' with byte order '|'. */
export class NumpyDtype {
  byteorder = '|';
  constructor(readonly code: string) {}
  /** Canonical form such as 'u1', 'b1', 'i4' (byte order dropped). */
  get kind(): string {
    return this.code.replace(/^[<>=|]/, '');
  }
}

/** A numpy ndarray as pickled: dtype, shape and the raw little-endian C-order bytes. */
export class NumpyArray {
  constructor(
    public shape: number[],
    public dtype: NumpyDtype | null,
    public data: Buffer | null,
    public fortranOrder = false,
  ) {}
}

/** Any value the reader can produce. Python `str`/`bytes` of Python 2 and `bytes` of Python 3 are Buffers. */
export type PyValue =
  | null
  | boolean
  | number
  | string
  | Buffer
  | PyTuple
  | PyList
  | PyGlobal
  | NumpyDtype
  | NumpyArray;

const OPCODE_NAMES: Record<number, string> = {
  0x28: 'MARK', 0x2e: 'STOP', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP', 0x46: 'FLOAT', 0x49: 'INT',
  0x4a: 'BININT', 0x4b: 'BININT1', 0x4c: 'LONG', 0x4d: 'BININT2', 0x4e: 'NONE', 0x50: 'PERSID',
  0x51: 'BINPERSID', 0x52: 'REDUCE', 0x53: 'STRING', 0x54: 'BINSTRING', 0x55: 'SHORT_BINSTRING',
  0x56: 'UNICODE', 0x58: 'BINUNICODE', 0x61: 'APPEND', 0x62: 'BUILD', 0x63: 'GLOBAL', 0x64: 'DICT',
  0x7d: 'EMPTY_DICT', 0x65: 'APPENDS', 0x67: 'GET', 0x68: 'BINGET', 0x69: 'INST', 0x6a: 'LONG_BINGET',
  0x6c: 'LIST', 0x5d: 'EMPTY_LIST', 0x6f: 'OBJ', 0x70: 'PUT', 0x71: 'BINPUT', 0x72: 'LONG_BINPUT',
  0x73: 'SETITEM', 0x74: 'TUPLE', 0x29: 'EMPTY_TUPLE', 0x75: 'SETITEMS', 0x47: 'BINFLOAT', 0x80: 'PROTO',
  0x81: 'NEWOBJ', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x85: 'TUPLE1', 0x86: 'TUPLE2', 0x87: 'TUPLE3',
  0x88: 'NEWTRUE', 0x89: 'NEWFALSE', 0x8a: 'LONG1', 0x8b: 'LONG4', 0x42: 'BINBYTES', 0x43: 'SHORT_BINBYTES',
  0x8c: 'SHORT_BINUNICODE', 0x8d: 'BINUNICODE8', 0x8e: 'BINBYTES8', 0x8f: 'EMPTY_SET', 0x90: 'ADDITEMS',
  0x91: 'FROZENSET', 0x92: 'NEWOBJ_EX', 0x93: 'STACK_GLOBAL', 0x94: 'MEMOIZE', 0x95: 'FRAME',
  0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
};

/** `0x63 (GLOBAL)` style label for error messages. */
export function opcodeLabel(op: number): string {
  return `0x${op.toString(16).padStart(2, '0')} (${OPCODE_NAMES[op] ?? 'unknown opcode'})`;
}

// The only callables a verification set needs. Both numpy spellings: numpy 2 renamed numpy.core -> numpy._core.
const ALLOWED_GLOBALS = new Set([
  '_codecs.encode',
  '__builtin__.bytes', 'builtins.bytes', '__builtin__.bytearray', 'builtins.bytearray',
  'numpy.core.multiarray._reconstruct', 'numpy._core.multiarray._reconstruct',
  'numpy.core.multiarray.scalar', 'numpy._core.multiarray.scalar',
  'numpy.core.numeric._frombuffer', 'numpy._core.numeric._frombuffer',
  'numpy.ndarray', 'numpy.dtype',
]);

const MARK = Symbol('mark');
type StackItem = PyValue | typeof MARK;

/** Text of a Python 2 `str` (Buffer) or Python 3 `str` (string). */
export function pyText(v: PyValue): string | null {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('latin1');
  return null;
}

/** Bytes of one numpy scalar/array element as a JS value (bool or number). */
function numpyElement(dtype: NumpyDtype, bytes: Buffer, at: number): boolean | number {
  const big = dtype.code.startsWith('>');
  switch (dtype.kind) {
    case 'b1': return bytes[at] !== 0;
    case 'u1': return bytes[at];
    case 'i1': return bytes.readInt8(at);
    case 'u2': return big ? bytes.readUInt16BE(at) : bytes.readUInt16LE(at);
    case 'i2': return big ? bytes.readInt16BE(at) : bytes.readInt16LE(at);
    case 'u4': return big ? bytes.readUInt32BE(at) : bytes.readUInt32LE(at);
    case 'i4': return big ? bytes.readInt32BE(at) : bytes.readInt32LE(at);
    case 'i8': return Number(big ? bytes.readBigInt64BE(at) : bytes.readBigInt64LE(at));
    case 'u8': return Number(big ? bytes.readBigUInt64BE(at) : bytes.readBigUInt64LE(at));
    default: throw new Error(`numpy dtype ${dtype.code} is not supported`);
  }
}

/** Item size in bytes of the numpy dtypes numpyElement understands. */
export function numpyItemSize(dtype: NumpyDtype): number | null {
  const m = /^[biu]([1248])$/.exec(dtype.kind);
  return m ? Number(m[1]) : null;
}

/** Elements of a 1-D numpy array of bools or integers. */
export function numpyValues(a: NumpyArray): (boolean | number)[] {
  if (!a.dtype || !a.data) throw new Error('numpy array has no data');
  const size = numpyItemSize(a.dtype);
  if (size === null) throw new Error(`numpy dtype ${a.dtype.code} is not supported`);
  const out: (boolean | number)[] = [];
  for (let i = 0; i + size <= a.data.length; i += size) out.push(numpyElement(a.dtype, a.data, i));
  return out;
}

/**
 * Runs the pickle in `buf` and returns the object it builds. `file` names the source in errors.
 * Byte strings are returned as views into `buf` (no copy) where the pickle stores them raw.
 */
export function unpickle(buf: Buffer, file: string): PyValue {
  let pos = 0;
  let stack: StackItem[] = [];
  const marks: StackItem[][] = [];
  const memo = new Map<number, PyValue>();
  let opPos = 0;
  let op = 0;

  const fail = (what: string): never => {
    throw new AttfcError(`${file}: ${what} (opcode ${opcodeLabel(op)} at byte ${opPos})`);
  };
  const need = (n: number): void => {
    if (n > buf.length - pos)
      throw new AttfcError(
        `${file}: truncated: opcode ${opcodeLabel(op)} at byte ${opPos} needs ${n} more bytes at byte ${pos} but the file has ${buf.length} bytes`,
      );
  };
  const u8 = (): number => { need(1); return buf[pos++]; };
  const u16 = (): number => { need(2); const v = buf.readUInt16LE(pos); pos += 2; return v; };
  const u32 = (): number => { need(4); const v = buf.readUInt32LE(pos); pos += 4; return v; };
  const i32 = (): number => { need(4); const v = buf.readInt32LE(pos); pos += 4; return v; };
  const u64 = (): number => {
    need(8);
    const v = buf.readBigUInt64LE(pos);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`length ${v} is too large`);
    return Number(v);
  };
  const bytes = (n: number): Buffer => { need(n); const b = buf.subarray(pos, pos + n); pos += n; return b; };
  const line = (): string => {
    const end = buf.indexOf(0x0a, pos);
    if (end < 0) { need(buf.length - pos + 1); }
    const s = buf.toString('latin1', pos, end);
    pos = end + 1;
    return s;
  };
  const pop = (): PyValue => {
    const v = stack.pop();
    if (v === undefined) return fail('stack underflow');
    if (v === MARK) return fail('unexpected MARK on the stack');
    return v;
  };
  const top = (): PyValue => {
    const v = stack[stack.length - 1];
    if (v === undefined) return fail('stack underflow');
    if (v === MARK) return fail('unexpected MARK on the stack');
    return v;
  };
  const popMark = (): PyValue[] => {
    const items = stack;
    const prev = marks.pop();
    if (!prev) return fail('no MARK to pop to');
    stack = prev;
    if (items.includes(MARK)) fail('unexpected MARK on the stack');
    return items as PyValue[];
  };
  const memoGet = (i: number): PyValue => {
    if (!memo.has(i)) fail(`memo key ${i} was never stored`);
    return memo.get(i) as PyValue;
  };
  const appendTo = (list: PyValue, items: PyValue[]): void => {
    if (!(list instanceof PyList)) fail('APPEND target is not a list');
    for (const it of items) (list as PyList).items.push(it);
  };
  const text = (v: PyValue, what: string): string => {
    const t = pyText(v);
    if (t === null) fail(`${what} must be a string`);
    return t as string;
  };
  const tupleArgs = (v: PyValue, what: string): PyValue[] => {
    if (!(v instanceof PyTuple)) fail(`arguments of ${what} must be a tuple`);
    return (v as PyTuple).items;
  };
  const intShape = (v: PyValue): number[] => {
    const items = v instanceof PyTuple || v instanceof PyList ? v.items : [v];
    return items.map((d) => {
      if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) fail('numpy shape must hold non-negative ints');
      return d as number;
    });
  };

  const reduce = (fn: PyValue, argsValue: PyValue): PyValue => {
    if (!(fn instanceof PyGlobal)) return fail('REDUCE callable is not an allowed global');
    const g = fn as PyGlobal;
    const args = tupleArgs(argsValue, g.qualified);
    switch (g.name) {
      case 'encode': {
        // Python 3 protocol <3 writes bytes as _codecs.encode(<latin-1 text>, 'latin1')
        if (args.length !== 2) fail('_codecs.encode expects 2 arguments');
        const s = text(args[0], '_codecs.encode argument');
        const enc = text(args[1], '_codecs.encode encoding').toLowerCase().replace('-', '');
        if (enc !== 'latin1') fail(`_codecs.encode with encoding '${enc}', expected 'latin1'`);
        for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) fail('_codecs.encode text is not latin-1');
        return Buffer.from(s, 'latin1');
      }
      case 'bytes':
      case 'bytearray': {
        if (args.length === 0) return Buffer.alloc(0);
        if (Buffer.isBuffer(args[0])) return args[0];
        const s = text(args[0], `${g.name} argument`);
        return Buffer.from(s, 'latin1');
      }
      case '_reconstruct': {
        // (numpy.ndarray, shape, typecode): an empty array that BUILD fills in
        if (args.length !== 3 || !(args[0] instanceof PyGlobal) || args[0].name !== 'ndarray')
          fail('_reconstruct expects (numpy.ndarray, shape, typecode)');
        return new NumpyArray(intShape(args[1]), null, null);
      }
      case '_frombuffer': {
        // protocol 5 form: _frombuffer(buffer, dtype, shape, order)
        if (args.length !== 4 || !Buffer.isBuffer(args[0]) || !(args[1] instanceof NumpyDtype))
          fail('_frombuffer expects (buffer, dtype, shape, order)');
        return new NumpyArray(intShape(args[2]), args[1] as NumpyDtype, args[0] as Buffer, text(args[3], 'order') === 'F');
      }
      case 'dtype': {
        if (args.length < 1) fail('numpy.dtype expects a type code');
        return new NumpyDtype(text(args[0], 'numpy.dtype code'));
      }
      case 'scalar': {
        if (args.length !== 2 || !(args[0] instanceof NumpyDtype) || pyText(args[1]) === null)
          fail('numpy scalar expects (dtype, bytes)');
        const dt = args[0] as NumpyDtype;
        const raw = Buffer.isBuffer(args[1]) ? args[1] : Buffer.from(args[1] as string, 'latin1');
        if (numpyItemSize(dt) === null || raw.length < (numpyItemSize(dt) as number))
          fail(`numpy scalar of dtype ${dt.code} is not supported (bool or integer expected)`);
        return numpyElement(dt, raw, 0);
      }
      default:
        return fail(`calling ${g.qualified} is not supported`);
    }
  };

  const build = (target: PyValue, state: PyValue): void => {
    if (target instanceof NumpyDtype) {
      // (version, byteorder, subarray, names, fields, elsize, alignment, flags)
      if (state instanceof PyTuple && state.items.length >= 2) {
        const bo = pyText(state.items[1]);
        if (bo) target.byteorder = bo;
      }
      return;
    }
    if (target instanceof NumpyArray) {
      // (version, shape, dtype, is_fortran, rawdata)
      if (!(state instanceof PyTuple) || state.items.length < 4) return fail('numpy array state must be a tuple');
      const s = (state as PyTuple).items;
      const [shape, dtype, fortran, raw] = s.slice(-4);
      if (!(dtype instanceof NumpyDtype)) return fail('numpy array state has no dtype');
      const data = Buffer.isBuffer(raw) ? raw : typeof raw === 'string' ? Buffer.from(raw, 'latin1') : null;
      if (!data) return fail(`numpy array of dtype ${dtype.code} does not hold raw bytes`);
      target.shape = intShape(shape);
      target.dtype = dtype;
      target.data = data;
      target.fortranOrder = fortran === true || fortran === 1;
      return;
    }
    fail('BUILD on an object that is not a numpy array or dtype');
  };

  for (;;) {
    opPos = pos;
    if (pos >= buf.length)
      throw new AttfcError(`${file}: truncated: the pickle ends at byte ${buf.length} without a STOP opcode`);
    op = buf[pos++];
    switch (op) {
      case 0x80: { // PROTO
        const p = u8();
        if (p < 2 || p > 5) fail(`pickle protocol ${p} is not supported (2-5 expected)`);
        break;
      }
      case 0x95: { // FRAME: a length prefix for the opcodes that follow; the data is contiguous anyway
        const n = u64();
        if (n > buf.length - pos) need(n);
        break;
      }
      case 0x2e: { // STOP
        const v = pop();
        if (stack.length !== 0 || marks.length !== 0) fail('stack not empty at STOP');
        return v;
      }
      case 0x28: marks.push(stack); stack = []; break; // MARK
      case 0x5d: stack.push(new PyList()); break; // EMPTY_LIST
      case 0x29: stack.push(new PyTuple([])); break; // EMPTY_TUPLE
      case 0x85: stack.push(new PyTuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push(new PyTuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push(new PyTuple([a, b, c])); break; }
      // popMark() replaces `stack`, so it must run before `stack.push` is evaluated
      case 0x74: { const items = popMark(); stack.push(new PyTuple(items)); break; } // TUPLE
      case 0x6c: { const items = popMark(); stack.push(new PyList(items)); break; } // LIST
      case 0x61: { const v = pop(); appendTo(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); appendTo(top(), items); break; } // APPENDS
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: { // LONG1: little-endian two's complement of n bytes
        const n = u8();
        if (n > 6) fail(`integer of ${n} bytes is too large`);
        const b = bytes(n);
        stack.push(n === 0 ? 0 : b.readIntLE(0, n));
        break;
      }
      case 0x55: stack.push(bytes(u8())); break; // SHORT_BINSTRING
      case 0x54: { // BINSTRING (signed 32-bit length)
        const n = i32();
        if (n < 0) fail(`negative string length ${n}`);
        stack.push(bytes(n));
        break;
      }
      case 0x43: stack.push(bytes(u8())); break; // SHORT_BINBYTES
      case 0x42: stack.push(bytes(u32())); break; // BINBYTES
      case 0x8e: stack.push(bytes(u64())); break; // BINBYTES8
      case 0x96: stack.push(bytes(u64())); break; // BYTEARRAY8
      case 0x8c: stack.push(bytes(u8()).toString('utf8')); break; // SHORT_BINUNICODE
      case 0x58: stack.push(bytes(u32()).toString('utf8')); break; // BINUNICODE
      case 0x8d: stack.push(bytes(u64()).toString('utf8')); break; // BINUNICODE8
      case 0x63: { // GLOBAL: "module\nname\n"
        const module = line();
        const name = line();
        if (!ALLOWED_GLOBALS.has(`${module}.${name}`)) fail(`unsupported global ${module}.${name}`);
        stack.push(new PyGlobal(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = text(pop(), 'STACK_GLOBAL name');
        const module = text(pop(), 'STACK_GLOBAL module');
        if (!ALLOWED_GLOBALS.has(`${module}.${name}`)) fail(`unsupported global ${module}.${name}`);
        stack.push(new PyGlobal(module, name));
        break;
      }
      case 0x52: { const args = pop(); const fn = pop(); stack.push(reduce(fn, args)); break; } // REDUCE
      case 0x62: { const state = pop(); build(top(), state); break; } // BUILD
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: stack.push(memoGet(u8())); break; // BINGET
      case 0x6a: stack.push(memoGet(u32())); break; // LONG_BINGET
      default:
        fail('unsupported pickle opcode');
    }
  }
}
