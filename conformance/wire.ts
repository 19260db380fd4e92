/**
 * Tensors on the wire ({dtype, shape, data}: little-endian bytes, base64) to
 * and from numbers; a complex tensor's numbers are its (real, imaginary) pairs.
 */
import type { JsonTensor } from "../checkpoint/json.ts";
import { elementBits, elementFromBits } from "../spec/float/codec.ts";
import { componentBytes, DTYPE, type DType } from "../spec/float/dtype.ts";
import { roundToFormat } from "../spec/float/format.ts";

export function decodeTensor(t: JsonTensor): number[] {
  const bytes = Buffer.from(t.data, "base64");
  const size = componentBytes(t.dtype);
  if (bytes.length % DTYPE[t.dtype].itemSize !== 0) throw new Error(`a ${t.dtype} tensor of ${bytes.length} bytes`);
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i += size) {
    const bits = size === 8 ? bytes.readBigUInt64LE(i) : BigInt(size === 4 ? bytes.readUInt32LE(i) : bytes.readUInt16LE(i));
    out.push(elementFromBits(t.dtype, bits));
  }
  return out;
}

/** Values of the dtype (or any numbers, rounded to it) as a wire tensor. */
export function encodeTensor(dtype: DType, shape: readonly number[], values: readonly number[]): JsonTensor {
  const size = componentBytes(dtype);
  const bytes = Buffer.alloc(values.length * size);
  values.forEach((x, i) => {
    const bits = elementBits(dtype, roundToFormat(x, DTYPE[dtype].format));
    if (size === 8) bytes.writeBigUInt64LE(bits, i * size);
    else if (size === 4) bytes.writeUInt32LE(Number(bits), i * size);
    else bytes.writeUInt16LE(Number(bits), i * size);
  });
  return { dtype, shape: [...shape], data: bytes.toString("base64") };
}
