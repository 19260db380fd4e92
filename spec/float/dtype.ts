/**
 * The param dtypes, under PyTorch's names, and every fact about them the
 * project needs, in one table: the binary format, the opmath type PyTorch's
 * CPU kernels compute in, the size of an element, the typed array that holds
 * the values in JavaScript, and the names torch gives them in `.pt` files and
 * error messages.
 *
 * A complex param is stepped by PyTorch's NAdam through `view_as_real`: every
 * op runs on its real and imaginary parts as a real tensor of twice the
 * elements (`exp_avg_sq` squares each part, it is not |g|²). So a complex
 * dtype's format, opmath and arithmetic are those of its `real` dtype, and
 * its values are held, and listed, as (real, imaginary) pairs.
 */
import { FORMATS, type FloatFormat } from "./format.ts";

export type RealDType = "float64" | "float32" | "float16" | "bfloat16";
export type ComplexDType = "complex64" | "complex128";
export type DType = RealDType | ComplexDType;
export const REAL_DTYPES: readonly RealDType[] = ["float64", "float32", "float16", "bfloat16"];
export const DTYPES: readonly DType[] = [...REAL_DTYPES, "complex64", "complex128"];

export interface DTypeTraits {
  /** The dtype of its components: itself, or a complex dtype's real and imaginary parts. */
  readonly real: RealDType;
  readonly complex: boolean;
  /** The format of a component. */
  readonly format: FloatFormat;
  /** The type PyTorch's CPU kernels compute a tensor of this dtype in. */
  readonly opmath: "float64" | "float32";
  /** Bytes per element (a golden file's hex has twice as many digits). */
  readonly itemSize: 16 | 8 | 4 | 2;
  /** The typed array of a tensor's storage: float16 and bfloat16 as their bit patterns, complex as (re, im) pairs. */
  readonly storage: Float64ArrayConstructor | Float32ArrayConstructor | Uint16ArrayConstructor;
  /** torch's storage class, as a `.pt` pickle names it. */
  readonly torchStorage: `torch.${string}Storage`;
  /** torch.typename() of a CPU tensor of this dtype. */
  readonly torchTensorType: `torch.${string}Tensor`;
}

export const DTYPE: Readonly<Record<DType, DTypeTraits>> = {
  float64: { real: "float64", complex: false, format: FORMATS.float64, opmath: "float64", itemSize: 8, storage: Float64Array, torchStorage: "torch.DoubleStorage", torchTensorType: "torch.DoubleTensor" },
  float32: { real: "float32", complex: false, format: FORMATS.float32, opmath: "float32", itemSize: 4, storage: Float32Array, torchStorage: "torch.FloatStorage", torchTensorType: "torch.FloatTensor" },
  float16: { real: "float16", complex: false, format: FORMATS.float16, opmath: "float32", itemSize: 2, storage: Uint16Array, torchStorage: "torch.HalfStorage", torchTensorType: "torch.HalfTensor" },
  bfloat16: { real: "bfloat16", complex: false, format: FORMATS.bfloat16, opmath: "float32", itemSize: 2, storage: Uint16Array, torchStorage: "torch.BFloat16Storage", torchTensorType: "torch.BFloat16Tensor" },
  complex64: { real: "float32", complex: true, format: FORMATS.float32, opmath: "float32", itemSize: 8, storage: Float32Array, torchStorage: "torch.ComplexFloatStorage", torchTensorType: "torch.ComplexFloatTensor" },
  complex128: { real: "float64", complex: true, format: FORMATS.float64, opmath: "float64", itemSize: 16, storage: Float64Array, torchStorage: "torch.ComplexDoubleStorage", torchTensorType: "torch.ComplexDoubleTensor" },
};

export function isDType(x: unknown): x is DType {
  return typeof x === "string" && (DTYPES as readonly string[]).includes(x);
}

/** Bytes per number of a tensor's storage: a complex element's real and imaginary parts are each their real dtype's. */
export function componentBytes(dtype: DType): number {
  return DTYPE[DTYPE[dtype].real].itemSize;
}

/** Numbers per element: 2 for a complex dtype (real, imaginary), else 1. */
export function componentsOf(dtype: DType): 1 | 2 {
  return DTYPE[dtype].complex ? 2 : 1;
}
