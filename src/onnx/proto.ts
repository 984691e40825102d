// ONNX protobuf access through the onnx-proto package (protobufjs code generated from onnx.proto):
// decoding a model file, reading tensors as float32, attribute look-up, and the few enums we need.
import onnxProto from 'onnx-proto';
import { AttfcError } from '../errors.js';

export const onnx = onnxProto.onnx;
export type ModelProto = onnxProto.onnx.ModelProto;
export type GraphProto = onnxProto.onnx.IGraphProto;
export type NodeProto = onnxProto.onnx.INodeProto;
export type TensorProto = onnxProto.onnx.ITensorProto;
export type AttributeProto = onnxProto.onnx.IAttributeProto;

export const DataType = onnx.TensorProto.DataType;
export const AttributeType = onnx.AttributeProto.AttributeType;

/** protobufjs gives int64 fields as number or Long; every value we read fits a double exactly. */
export function toNumber(v: number | { toNumber(): number } | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

/** Decodes an ONNX model; `what` names the file in errors. */
export function decodeModel(bytes: Uint8Array, what: string): ModelProto {
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new AttfcError(`${what}: not an ONNX model (protobuf decoding failed: ${(e as Error).message.split('\n')[0]})`);
  }
  if (!model.graph || (model.graph.node ?? []).length === 0) throw new AttfcError(`${what}: not an ONNX model (no graph nodes)`);
  return model;
}

export function tensorDims(t: TensorProto): number[] {
  return (t.dims ?? []).map((d) => toNumber(d));
}

/**
 * The values of a float32 tensor (raw_data little-endian or float_data). External data (models over
 * 2 GiB) and other element types are refused with a line naming the tensor.
 */
export function floatValues(t: TensorProto, what: string): Float32Array {
  const name = t.name || '(unnamed)';
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL || (t.externalData ?? []).length > 0)
    throw new AttfcError(`${what}: tensor "${name}" keeps its data in an external file, which attfc does not read`);
  if (t.dataType !== DataType.FLOAT) throw new AttfcError(`${what}: tensor "${name}" has element type ${DataType[t.dataType ?? 0] ?? t.dataType}; expected FLOAT (float32)`);
  const size = tensorDims(t).reduce((a, b) => a * b, 1);
  const raw = t.rawData;
  let out: Float32Array;
  if (raw && raw.length > 0) {
    if (raw.length !== size * 4) throw new AttfcError(`${what}: tensor "${name}" holds ${raw.length} bytes, expected ${size * 4} for shape [${tensorDims(t)}]`);
    out = new Float32Array(size);
    new Uint8Array(out.buffer).set(raw);
  } else {
    out = Float32Array.from(t.floatData ?? []);
  }
  if (out.length !== size) throw new AttfcError(`${what}: tensor "${name}" holds ${out.length} values, expected ${size} for shape [${tensorDims(t)}]`);
  return out;
}

/** The values of an integer tensor (INT64 or INT32; e.g. a Reshape target shape). */
export function intValues(t: TensorProto, what: string): number[] {
  const name = t.name || '(unnamed)';
  const raw = t.rawData;
  if (t.dataType === DataType.INT64) {
    if (raw && raw.length > 0) {
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      return Array.from({ length: raw.length / 8 }, (_, i) => Number(view.getBigInt64(8 * i, true)));
    }
    return (t.int64Data ?? []).map((v) => toNumber(v));
  }
  if (t.dataType === DataType.INT32) {
    if (raw && raw.length > 0) {
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      return Array.from({ length: raw.length / 4 }, (_, i) => view.getInt32(4 * i, true));
    }
    return [...(t.int32Data ?? [])];
  }
  throw new AttfcError(`${what}: tensor "${name}" has element type ${DataType[t.dataType ?? 0] ?? t.dataType}; expected INT64 or INT32`);
}

/** Attribute value by name, or undefined when absent. */
export function attr(node: NodeProto, name: string): AttributeProto | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}

export function attrInt(node: NodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a ? toNumber(a.i) : fallback;
}

export function attrFloat(node: NodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a ? (a.f ?? fallback) : fallback;
}

export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = attr(node, name);
  return a ? (a.ints ?? []).map((v) => toNumber(v)) : undefined;
}

export function attrString(node: NodeProto, name: string): string | undefined {
  const a = attr(node, name);
  return a?.s ? new TextDecoder().decode(a.s) : undefined;
}
