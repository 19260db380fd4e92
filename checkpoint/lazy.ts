/**
 * Tensors of a checkpoint read when asked, piece by piece: what lets a state
 * dict of any size be validated and converted in memory bounded by the piece
 * size, never by the file. A state dict whose tensors are LazyTensors is a
 * "skeleton": its structure and scalars in memory, its tensor data where it lies.
 */
import { endianness } from "node:os";
import { elementFromBits } from "../spec/float/codec.ts";
import { componentBytes, DTYPE, type DType } from "../spec/float/dtype.ts";
import { Tensor } from "../tensor/tensor.ts";
import type { StateDict } from "../tensor/state-dict.ts";
import { pointer } from "./validate.ts";

export abstract class LazyTensor {
  readonly numel: number;
  constructor(
    readonly dtype: DType,
    readonly shape: readonly number[],
  ) {
    this.numel = shape.reduce((a, b) => a * b, 1);
  }

  get byteLength(): number {
    return this.numel * DTYPE[this.dtype].itemSize;
  }

  /** Where its data lies, in messages: a file, an entry, a byte range. */
  abstract readonly where: string;

  /**
   * Its elements' little-endian bytes in row-major order, handed to `visit` in
   * pieces of whole elements, at most `chunkBytes` each (or one element, when
   * an element is larger); the pieces are only valid during the call. Checks
   * what it is stored in (CRC-32s) on the way.
   */
  abstract read(visit: (bytes: Uint8Array) => void, chunkBytes: number): void;

  /** Checks what it is stored in (CRC-32s), reading it in pieces (a stored tensor: each storage entry once, however many tensors view it). */
  verify(chunkBytes: number): void {
    this.read(() => undefined, chunkBytes);
  }

  /** Its whole data as a Tensor (memory: the tensor's bytes). */
  materialize(): Tensor {
    const out = Buffer.alloc(this.byteLength);
    let at = 0;
    this.read((bytes) => {
      out.set(bytes, at);
      at += bytes.length;
    }, 2 ** 24);
    return tensorFromLittleEndian(this.dtype, this.shape, out);
  }

  /** A one-element real tensor's value (a 0-d step, mu_product, lr); undefined for any other. */
  scalar(): number | undefined {
    const info = DTYPE[this.dtype];
    if (this.numel !== 1 || info.complex) return undefined;
    let bits = 0n;
    this.read((bytes) => {
      const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const size = componentBytes(this.dtype);
      bits = size === 8 ? view.readBigUInt64LE(0) : BigInt(size === 4 ? view.readUInt32LE(0) : view.readUInt16LE(0));
    }, info.itemSize);
    return elementFromBits(this.dtype, bits);
  }
}

/** Whole elements per piece: `chunkBytes` rounded down to the element size, and at least one element. */
export function pieceBytes(dtype: DType, chunkBytes: number): number {
  const item = DTYPE[dtype].itemSize;
  return Math.max(item, chunkBytes - (chunkBytes % item));
}

export const LITTLE_ENDIAN_HOST = endianness() === "LE";

/** Reverse, in place, the byte order of each number of a `dtype` tensor's bytes (a complex element's parts each on its own). */
export function swapBytes(bytes: Buffer, dtype: DType): void {
  const size = componentBytes(dtype);
  if (size === 8) bytes.swap64();
  else if (size === 4) bytes.swap32();
  else bytes.swap16();
}

/** A tensor over little-endian bytes it may keep (swapped in place on a big-endian host). */
export function tensorFromLittleEndian(dtype: DType, shape: readonly number[], bytes: Buffer): Tensor {
  if (!LITTLE_ENDIAN_HOST) swapBytes(bytes, dtype);
  const aligned = bytes.byteOffset % 8 === 0 ? bytes : Buffer.from(bytes);
  const data = new DTYPE[dtype].storage(aligned.buffer as ArrayBuffer, aligned.byteOffset, aligned.length / componentBytes(dtype));
  return new Tensor(dtype, shape, data);
}

/** A tensor already in memory (one read from JSON), seen as a lazy one. */
export class MemoryTensor extends LazyTensor {
  readonly where = "memory";
  constructor(readonly tensor: Tensor) {
    super(tensor.dtype, tensor.shape);
  }
  read(visit: (bytes: Uint8Array) => void, chunkBytes: number): void {
    const d = this.tensor.data;
    const bytes = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
    const piece = pieceBytes(this.dtype, chunkBytes);
    const little = LITTLE_ENDIAN_HOST ? bytes : Buffer.from(bytes);
    if (!LITTLE_ENDIAN_HOST) swapBytes(little, this.dtype);
    for (let at = 0; at < little.length; at += piece) visit(little.subarray(at, Math.min(little.length, at + piece)));
  }
  override materialize(): Tensor {
    return this.tensor;
  }
  override verify(): void {
    // In memory: nothing to check.
  }
}

/** A state dict whose tensors are lazy. */
export type Skeleton = { state: Record<string, Record<string, unknown>>; param_groups: Record<string, unknown>[] };

/** Every lazy tensor of a value, with its JSON pointer. */
export function eachLazyTensor(value: unknown, path: string, visit: (t: LazyTensor, path: string) => void): void {
  if (value instanceof LazyTensor) visit(value, path);
  else if (Array.isArray(value)) value.forEach((v, i) => eachLazyTensor(v, `${path}/${i}`, visit));
  else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) eachLazyTensor(v, path + pointer(k), visit);
  }
}

/** A value with every lazy tensor replaced by `f`'s answer. */
export function mapTensors(value: unknown, f: (t: LazyTensor) => unknown): unknown {
  if (value instanceof LazyTensor) return f(value);
  if (Array.isArray(value)) return value.map((v) => mapTensors(v, f));
  if (value !== null && typeof value === "object" && !(value instanceof Tensor)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapTensors(v, f)]));
  return value;
}

/** The state dict in memory: every tensor read whole. */
export function materialize(skeleton: Skeleton): StateDict {
  return mapTensors(skeleton, (t) => t.materialize()) as StateDict;
}

/** A state dict in memory, seen as a skeleton (its tensors wrapped, not copied). */
export function skeletonOf(stateDict: StateDict): Skeleton {
  const wrap = (value: unknown): unknown => {
    if (value instanceof Tensor) return new MemoryTensor(value);
    if (Array.isArray(value)) return value.map(wrap);
    if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, wrap(v)]));
    return value;
  };
  return wrap(stateDict) as Skeleton;
}
