/**
 * PyTorch's elementwise kernels (CPU and CUDA), one element at a time, rounded
 * as PyTorch rounds them.
 *
 * Each kernel computes in its "opmath" type (float64 for float64 tensors,
 * float32 for float32, float16 and bfloat16 ones), with Python float scalars
 * converted to opmath first, and rounds the result to the tensor's dtype.
 * Under the `default` profile every multiply and add rounds to opmath; under
 * `vectorized` (AVX2/AVX512) add-with-alpha, addcmul and lerp fuse their final
 * multiply-add into one rounding. addcdiv never fuses, and computes
 * self + (value·t1)/t2 (value times t1 first).
 *
 * Under `cuda` (PyTorch's CUDA kernels, measured on torch 2.11 with an H100:
 * golden/cuda) add-with-alpha, addcmul, addcdiv and lerp fuse: a + alpha·b,
 * a + value·(t1·t2) and a + value·(t1/t2) are one fma each after the tensors'
 * product or quotient; Tensor.div by a Python float multiplies by its reciprocal
 * (computed in float64, rounded to opmath), while _foreach_div_ divides; and the
 * Python floats of _foreach_mul_ and add(alpha=) stay in opmath for every dtype.
 * sqrt is correctly rounded, as on the CPU.
 *
 * float16 and bfloat16 add quirks on the CPU, measured on torch 2.6 (identical for float32
 * and float64, where opmath is the dtype):
 * - `add(scalar)` and the `alpha` of `add(other, alpha)` round the scalar to the
 *   tensor dtype first (they become a 0-d tensor of that dtype), while `mul`,
 *   `div`, `lerp`, `addcmul` and `addcdiv` keep it in float32;
 * - `_foreach_mul_(tensors, scalar)` rounds the scalar to the tensor dtype, the
 *   single-tensor `mul_` does not;
 * - the non-vectorized `add(other, alpha)` kernel computes a + alpha·b in the
 *   dtype itself: the product is rounded to float16 / bfloat16 before the sum.
 *   The vectorized kernel runs that same scalar code on the elements that do not
 *   fill a whole block of two vector registers (see `inVectorBody`), and a
 *   float32 fma on the others: the result depends on the element's position.
 */
import { DTYPE, type DType } from "../float/dtype.ts";
import { fma32, fma64 } from "../float/fma.ts";
import { roundToFormat } from "../float/format.ts";
import type { RoundingProfile } from "./types.ts";

export interface ElementOps {
  readonly dtype: DType;
  readonly profile: RoundingProfile;
  /** Round an exact or opmath value to the tensor dtype. */
  round(x: number): number;
  /** A Python float as a kernel of this dtype sees it (converted to opmath). */
  scalar(s: number): number;
  /** a * s, s a Python float */
  mul(a: number, s: number): number;
  /** torch._foreach_mul_ by a Python float: like mul, but on the CPU the scalar is rounded to the dtype first */
  foreachMul(a: number, s: number): number;
  /** Tensor.div by a Python float: a true division on the CPU; on CUDA a · (1/s), the reciprocal rounded from float64 to opmath */
  div(a: number, s: number): number;
  /** torch._foreach_div_ by a Python float (one of a list): a true division everywhere */
  foreachDiv(a: number, s: number): number;
  /** a + s, s a Python float */
  add(a: number, s: number): number;
  /** a / b, both tensors */
  divTensor(a: number, b: number): number;
  sqrt(a: number): number;
  neg(a: number): number;
  /** 1.0 - a (torch.rsub with a Python float) */
  rsub(s: number, a: number): number;
  /** a.reciprocal() */
  reciprocal(a: number): number;
  /**
   * a.add(b, alpha=alpha): a + alpha·b. `inBody`: the element is in the vectorized
   * main loop (see inVectorBody); only float16 / bfloat16 results depend on it.
   */
  addAlpha(a: number, b: number, alpha: number, inBody: boolean): number;
  /** a.addcmul(t1, t2, value=value): a + value·t1·t2 */
  addcmul(a: number, t1: number, t2: number, value: number): number;
  /** a.addcdiv(t1, t2, value=value): a + value·t1/t2 */
  addcdiv(a: number, t1: number, t2: number, value: number): number;
  /** a.lerp(b, weight): a + weight·(b - a) */
  lerp(a: number, b: number, weight: number): number;
}

/** The kernels of a dtype; a complex dtype's are its real dtype's (PyTorch steps its view_as_real). */
export function elementOps(dtype: DType, profile: RoundingProfile): ElementOps {
  if (DTYPE[dtype].complex) return elementOps(DTYPE[dtype].real, profile);
  const { format, opmath } = DTYPE[dtype];
  const wide = opmath === "float64";
  // r: round to opmath; fma: fused multiply-add in opmath; out: round opmath to the dtype.
  const r = wide ? (x: number) => x : Math.fround;
  const fma = wide ? fma64 : fma32;
  const out = dtype === "float64" || dtype === "float32" ? (x: number) => x : (x: number) => roundToFormat(x, format);
  const fused = profile !== "default";
  const cuda = profile === "cuda";
  // A Python float turned into a 0-d tensor of the dtype (double → opmath → dtype).
  const asDtype = (s: number): number => out(r(s));
  const mul = (a: number, s: number): number => out(r(a * r(s)));
  const trueDiv = (a: number, s: number): number => out(r(a / r(s)));

  return {
    dtype,
    profile,
    round: (x) => roundToFormat(x, format),
    scalar: r,
    mul,
    // (CUDA's foreach kernels keep the Python float in opmath)
    foreachMul: cuda ? mul : (a, s) => out(r(a * asDtype(s))),
    div: cuda ? (a, s) => out(r(a * r(1 / s))) : trueDiv,
    foreachDiv: trueDiv,
    // (CUDA's add is the CPU's here: in the recorded runs a + s and a + out(s) gave the same bits, eps being small)
    add: (a, s) => out(r(a + asDtype(s))),
    divTensor: (a, b) => out(r(a / b)),
    sqrt: (a) => out(r(Math.sqrt(a))),
    neg: (a) => -a,
    rsub: (s, a) => out(r(r(s) - a)),
    reciprocal: (a) => out(r(1 / a)),
    addAlpha(a, b, alpha, inBody) {
      if (cuda) return out(fma(b, r(alpha), a));
      const w = asDtype(alpha);
      if (wide || dtype === "float32") return fused ? fma(b, w, a) : r(a + r(w * b));
      return fused && inBody ? out(fma(b, w, a)) : out(r(a + out(r(w * b))));
    },
    addcmul(a, t1, t2, value) {
      if (cuda) return out(fma(r(value), r(t1 * t2), a)); // the tensors' product first, then value times it
      const scaled = r(r(value) * t1);
      return out(fused ? fma(scaled, t2, a) : r(a + r(scaled * t2)));
    },
    addcdiv(a, t1, t2, value) {
      if (cuda) return out(fma(r(value), r(t1 / t2), a)); // the quotient first, then value times it, fused with the sum
      return out(r(a + r(r(r(value) * t1) / t2)));
    },
    lerp(a, b, weight) {
      // PyTorch's lerp has two forms, chosen by |weight| < 0.5, so that the
      // result is exact at weight 0 (a) and at weight 1 (b).
      const w = r(weight);
      if (Math.abs(w) < 0.5) {
        const d = r(b - a);
        return out(fused ? fma(w, d, a) : r(a + r(w * d)));
      }
      const d = r(b - a);
      return out(fused ? fma(r(w - 1), d, b) : r(b - r(d * r(1 - w))));
    },
  };
}

/**
 * How many leading elements of an `numel`-element contiguous tensor the
 * vectorized main loop of PyTorch's CPU kernels computes (ATen/native/cpu/Loops.h,
 * `vectorized_loop`): it takes blocks of two 256-bit vector registers (32
 * float16 / bfloat16 elements); the remaining numel mod block elements run the
 * scalar code. The same under AVX512: measured with torch 2.6 on an AVX512 CPU,
 * ATEN_CPU_CAPABILITY=avx512 and =avx2 give identical bits (PyTorch dispatches
 * this kernel's AVX512 build to the AVX2 one), and the golden corpus holds
 * AVX512 recordings of the cases that would tell (`structure/vector-blocks`).
 */
export function vectorBodyLength(numel: number, dtype: DType): number {
  // (a complex tensor's count is of its real view's elements: only 16-bit dtypes depend on it)
  const block = (2 * 256) / 8 / DTYPE[dtype].itemSize;
  return numel - (numel % block);
}

/** Whether element `index` is computed by the vectorized main loop (see vectorBodyLength). */
export function inVectorBody(index: number, numel: number, dtype: DType): boolean {
  return index < vectorBodyLength(numel, dtype);
}
