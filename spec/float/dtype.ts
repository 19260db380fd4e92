/**
 * The four param dtypes, under PyTorch's names, and every fact about them the
 * project needs, in one table: the binary format, the opmath type PyTorch's
 * CPU kernels compute in, the size of an element, the typed array that holds
 * the values in JavaScript, and the names torch gives them in `.pt` files and
 * error messages.
 */
import { FORMATS, type FloatFormat } from "./format.ts";

export type DType = "float64" | "float32" | "float16" | "bfloat16";
export const DTYPES: readonly DType[] = ["float64", "float32", "float16", "bfloat16"];

export interface DTypeTraits {
  readonly format: FloatFormat;
  /** The type PyTorch's CPU kernels compute a tensor of this dtype in. */
  readonly opmath: "float64" | "float32";
  /** Bytes per element (a golden file's hex has twice as many digits). */
  readonly itemSize: 8 | 4 | 2;
  /** The typed array of a tensor's storage: float16 and bfloat16 as their bit patterns. */
  readonly storage: Float64ArrayConstructor | Float32ArrayConstructor | Uint16ArrayConstructor;
  /** torch's storage class, as a `.pt` pickle names it. */
  readonly torchStorage: "torch.DoubleStorage" | "torch.FloatStorage" | "torch.HalfStorage" | "torch.BFloat16Storage";
  /** torch.typename() of a CPU tensor of this dtype. */
  readonly torchTensorType: "torch.DoubleTensor" | "torch.FloatTensor" | "torch.HalfTensor" | "torch.BFloat16Tensor";
}

export const DTYPE: Readonly<Record<DType, DTypeTraits>> = {
  float64: { format: FORMATS.float64, opmath: "float64", itemSize: 8, storage: Float64Array, torchStorage: "torch.DoubleStorage", torchTensorType: "torch.DoubleTensor" },
  float32: { format: FORMATS.float32, opmath: "float32", itemSize: 4, storage: Float32Array, torchStorage: "torch.FloatStorage", torchTensorType: "torch.FloatTensor" },
  float16: { format: FORMATS.float16, opmath: "float32", itemSize: 2, storage: Uint16Array, torchStorage: "torch.HalfStorage", torchTensorType: "torch.HalfTensor" },
  bfloat16: { format: FORMATS.bfloat16, opmath: "float32", itemSize: 2, storage: Uint16Array, torchStorage: "torch.BFloat16Storage", torchTensorType: "torch.BFloat16Tensor" },
};

export function isDType(x: unknown): x is DType {
  return typeof x === "string" && (DTYPES as readonly string[]).includes(x);
}
