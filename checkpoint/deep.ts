/**
 * Value checks of a state dict's moments (validate --deep), streamed: a
 * checkpoint that parses can still hold a diverged run. NAdam keeps
 * exp_avg_sq a running mean of squares (never negative, never NaN unless a
 * grad was) and exp_avg a running mean of grads (finite unless a grad was
 * not). Checked on each element's bit pattern, per component (a complex
 * param's real and imaginary parts each), so every dtype is read alike.
 */
import { componentBytes, DTYPE, type DType } from "../spec/float/dtype.ts";
import type { LazyTensor, Skeleton } from "./lazy.ts";
import { CheckpointError } from "./pt/errors.ts";
import type { Problem } from "./validate.ts";

/** How many components of a tensor are negative (below -0), NaN, or infinite, and where each first is. */
export interface ValueCounts {
  components: number;
  negative: number;
  nan: number;
  infinite: number;
  firstNegative?: number;
  firstNaN?: number;
  firstInfinite?: number;
}

export interface DeepReport {
  /** Tensors and components whose values were checked. */
  readonly tensors: number;
  readonly components: number;
  readonly bytes: number;
  readonly problems: Problem[];
  /** The tensors (JSON pointers) whose bytes could not be read: damaged, said among the problems. */
  readonly unreadable: string[];
}

/** Sign, exponent and mantissa masks of a component's bit pattern (for 8-byte ones: of the high word; the low word is mantissa). */
function masks(dtype: DType): { sign: number; exponent: number; mantissa: number } {
  const format = DTYPE[dtype].real;
  if (format === "float16") return { sign: 0x8000, exponent: 0x7c00, mantissa: 0x03ff };
  if (format === "bfloat16") return { sign: 0x8000, exponent: 0x7f80, mantissa: 0x007f };
  if (format === "float32") return { sign: 0x80000000, exponent: 0x7f800000, mantissa: 0x007fffff };
  return { sign: 0x80000000, exponent: 0x7ff00000, mantissa: 0x000fffff };
}

/**
 * Counts every component of a tensor, read in pieces of `chunkBytes`: NaNs and
 * infinities, and with `signs` the negative ones (exp_avg's signs are its own business).
 */
export function countValues(t: LazyTensor, chunkBytes: number, signs = true): ValueCounts {
  const size = componentBytes(t.dtype);
  const { exponent, mantissa } = masks(t.dtype);
  const sign = signs ? masks(t.dtype).sign : 0;
  const counts: ValueCounts = { components: 0, negative: 0, nan: 0, infinite: 0 };
  /** One component's classification, for the few that are not a finite number >= +0. */
  const classify = (high: number, low: number, at: number): void => {
    if ((high & exponent) === exponent) {
      if ((high & mantissa) !== 0 || low !== 0) {
        if (counts.nan++ === 0) counts.firstNaN = at;
        return; // a NaN's sign says nothing
      }
      if (counts.infinite++ === 0) counts.firstInfinite = at;
    }
    if ((high & sign) !== 0 && ((high & ~sign) !== 0 || low !== 0) && counts.negative++ === 0) counts.firstNegative = at;
  };
  // The common case, a finite number with its sign bit clear, takes one test a component.
  const flagged = (exponent | sign) >>> 0;
  let index = 0;
  t.read((piece) => {
    // A typed array needs an aligned view; a piece read from a file is its own buffer, a view of memory may not be.
    const bytes = piece.byteOffset % 4 === 0 ? piece : Buffer.from(piece);
    const n = bytes.length / size;
    if (size === 2) {
      const words = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
      for (let i = 0; i < n; i++) {
        const w = words[i]!;
        if ((w & exponent) === exponent || (w & sign) !== 0) classify(w, 0, index + i);
      }
    } else if (size === 4) {
      const words = new Int32Array(bytes.buffer, bytes.byteOffset, n);
      for (let i = 0; i < n; i++) {
        const w = words[i]!;
        // Sign bit set (negative as an int32) or an all-ones exponent.
        if ((w < 0 && sign !== 0) || (w & exponent) === exponent) classify(w >>> 0, 0, index + i);
      }
    } else {
      // Little-endian: an 8-byte component's high word is its second.
      const words = new Uint32Array(bytes.buffer, bytes.byteOffset, 2 * n);
      for (let i = 0; i < n; i++) {
        const high = words[2 * i + 1]!;
        if ((high & flagged) !== 0 && ((high & sign) !== 0 || (high & exponent) === exponent)) classify(high, words[2 * i]!, index + i);
      }
    }
    index += n;
  }, chunkBytes);
  counts.components = index;
  return counts;
}

function where(first: number | undefined, t: LazyTensor): string {
  if (first === undefined) return "";
  if (!DTYPE[t.dtype].complex) return ` (first at element ${first})`;
  return ` (first at element ${Math.floor(first / 2)}, its ${first % 2 === 0 ? "real" : "imaginary"} part)`;
}

/** Every param's exp_avg and exp_avg_sq checked, each read once in pieces of `chunkBytes`. */
export function checkValues(skeleton: Skeleton, chunkBytes: number): DeepReport {
  const problems: Problem[] = [];
  const unreadable: string[] = [];
  let tensors = 0;
  let components = 0;
  let bytes = 0;
  for (const [id, entry] of Object.entries(skeleton.state)) {
    for (const key of ["exp_avg", "exp_avg_sq"] as const) {
      const t = entry[key] as LazyTensor | undefined;
      if (t === undefined || typeof t !== "object" || !("read" in t)) continue;
      const path = `/state/${id}/${key}`;
      let c: ValueCounts;
      try {
        c = countValues(t, chunkBytes, key === "exp_avg_sq");
      } catch (error) {
        // Its bytes could not be read whole (a damaged file): said where, and the other tensors still checked.
        if (!(error instanceof CheckpointError)) throw error;
        problems.push({ path, message: `${t.where}: ${error.message}` });
        unreadable.push(path);
        continue;
      }
      tensors++;
      components += c.components;
      bytes += t.byteLength;
      const of = `${c.components} ${DTYPE[t.dtype].complex ? "components" : "elements"}`;
      if (key === "exp_avg_sq") {
        const parts = [c.negative > 0 ? `${c.negative} negative${where(c.firstNegative, t)}` : "", c.nan > 0 ? `${c.nan} NaN${where(c.firstNaN, t)}` : ""].filter(Boolean);
        if (parts.length > 0) problems.push({ path, message: `of its ${of}, ${parts.join(", ")}: a running mean of squares is never negative or NaN (a NaN grad, or a corrupted or diverged state)` });
      } else {
        const parts = [c.nan > 0 ? `${c.nan} NaN${where(c.firstNaN, t)}` : "", c.infinite > 0 ? `${c.infinite} infinite${where(c.firstInfinite, t)}` : ""].filter(Boolean);
        if (parts.length > 0) problems.push({ path, message: `of its ${of}, ${parts.join(", ")}: a running mean of finite grads is finite (a non-finite grad, or a corrupted or diverged state)` });
      }
    }
  }
  return { tensors, components, bytes, problems, unreadable };
}
