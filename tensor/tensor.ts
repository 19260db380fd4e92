/**
 * The host tensor every layer shares: params and grads as users hold them,
 * state tensors in state dicts and checkpoint files. A dtype, a shape,
 * contiguous storage and an optional grad; float64 and float32 live in
 * Float64Array / Float32Array, float16 and bfloat16 as their bit patterns in a
 * Uint16Array, complex64 and complex128 as (real, imaginary) pairs in a
 * Float32Array / Float64Array (spec/float/dtype.ts). Element-wise access
 * (`get`, `set`, `from`, `toArray`) is to the storage's numbers: for a complex
 * tensor, its real view, as PyTorch's NAdam steps it. A backend may keep its
 * own state tensors elsewhere (on a device) and hands back host tensors only
 * for a state dict.
 */
import { componentsOf, DTYPE, isDType, type DType } from "../spec/float/dtype.ts";
import { bfloat16ToFloat, floatToBfloat16, floatToHalf, halfToFloat } from "./half.ts";

export type Storage = Float64Array | Float32Array | Uint16Array;

function allocate(dtype: DType, numel: number): Storage {
  return new DTYPE[dtype].storage(numel * componentsOf(dtype));
}

function numelOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export class Tensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: Storage;
  /** As in PyTorch: set by the user (or a loss function); read by step(). */
  grad: Tensor | null = null;

  constructor(dtype: DType, shape: readonly number[], data?: Storage) {
    if (!isDType(dtype)) throw new RangeError(`unknown dtype ${JSON.stringify(dtype)}: one of float64, float32, float16, bfloat16`);
    if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new RangeError(`invalid shape ${JSON.stringify(shape)}`);
    const n = numelOf(shape);
    const storage = data ?? allocate(dtype, n);
    const expected = DTYPE[dtype].storage;
    const length = n * componentsOf(dtype);
    if (storage.constructor !== expected || storage.length !== length) {
      throw new RangeError(`a ${dtype} tensor of shape ${JSON.stringify(shape)} needs a ${expected.name} of length ${length}, got a ${storage.constructor.name} of length ${storage.length}`);
    }
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
    this.data = storage;
  }

  /**
   * A tensor from JavaScript numbers, each rounded to the dtype (via float32 for
   * 16-bit dtypes); a complex tensor from (real, imaginary) pairs, whose default
   * shape is half their count.
   */
  static from(values: ArrayLike<number>, dtype: DType = "float32", shape: readonly number[] = [values.length / componentsOf(dtype)]): Tensor {
    const t = new Tensor(dtype, shape);
    if (values.length !== t.data.length) throw new RangeError(`${values.length} values do not fill a ${dtype} tensor of shape ${JSON.stringify(shape)} (${t.data.length} numbers)`);
    for (let i = 0; i < values.length; i++) t.set(i, values[i]!);
    return t;
  }

  static zeros(shape: readonly number[], dtype: DType = "float32"): Tensor {
    return new Tensor(dtype, shape);
  }

  /** A 0-d tensor, as torch.tensor(value, dtype=dtype). */
  static scalar(value: number, dtype: DType = "float32"): Tensor {
    return Tensor.from([value], dtype, []);
  }

  /** The number of elements (a complex element is one, holding two numbers). */
  get numel(): number {
    return this.data.length / componentsOf(this.dtype);
  }

  /** Number i of the storage (row-major; a complex tensor's real view) as a number. */
  get(i: number): number {
    const d = this.data;
    if (this.dtype === "float16") return halfToFloat(d[i]!);
    if (this.dtype === "bfloat16") return bfloat16ToFloat(d[i]!);
    return d[i]!;
  }

  /** Store a number at index i of the storage, rounded to the dtype. */
  set(i: number, value: number): void {
    const d = this.data;
    if (this.dtype === "float16") d[i] = floatToHalf(Math.fround(value));
    else if (this.dtype === "bfloat16") d[i] = floatToBfloat16(Math.fround(value));
    else d[i] = value;
  }

  /** The single value of a one-element tensor (torch's .item()). */
  item(): number {
    if (this.numel !== 1) throw new RangeError(`a Tensor with ${this.numel} elements cannot be converted to Scalar`);
    if (DTYPE[this.dtype].complex) throw new RangeError(`a ${this.dtype} tensor's item is complex: read its toArray() (real, imaginary)`);
    return this.get(0);
  }

  /** The storage's numbers: the values, or a complex tensor's (real, imaginary) pairs. */
  toArray(): number[] {
    return Array.from({ length: this.data.length }, (_, i) => this.get(i));
  }

  clone(): Tensor {
    return new Tensor(this.dtype, this.shape, this.data.slice());
  }

  /** torch's .to(dtype): this same tensor when the dtype already matches, else a converted copy (real to real, complex to complex). */
  to(dtype: DType): Tensor {
    if (dtype === this.dtype) return this;
    if (DTYPE[dtype].complex !== DTYPE[this.dtype].complex) throw new RangeError(`a ${this.dtype} tensor is not converted to ${dtype} here (PyTorch would drop or invent an imaginary part)`);
    const out = new Tensor(dtype, this.shape);
    for (let i = 0; i < this.data.length; i++) out.set(i, this.get(i));
    return out;
  }

  zero_(): this {
    this.data.fill(0);
    return this;
  }

  /** Overwrite this tensor's values with another's of the same dtype and shape. */
  copy_(other: Tensor): this {
    if (other.dtype !== this.dtype || other.numel !== this.numel) throw new RangeError("copy_ needs the same dtype and number of elements");
    this.data.set(other.data as never);
    return this;
  }

  toString(): string {
    return `Tensor(${this.dtype}, [${this.shape.join(", ")}])`;
  }
}
