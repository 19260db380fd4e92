/**
 * What this JavaScript engine offers the wasm-simd backend, found once by
 * compiling and running small modules: WebAssembly SIMD and shared memory (or
 * the reason the backend is unavailable); per lane type, whether
 * relaxed_madd is a fused multiply-add here (relaxed SIMD lets an engine pick
 * fused or unfused per machine, so it is used only when it gave the correctly
 * rounded result on inputs where the unfused one differs); and whether the
 * WebAssembly FP16 proposal's float16 conversions are here and exact.
 */
import { fmaExact } from "../../../spec/float/fma.ts";
import { FORMATS } from "../../../spec/float/format.ts";
import { halfToFloat, floatToHalf } from "../../../tensor/half.ts";
import { conversionModuleBytes, fmaModuleBytes, type FmaStrategy, type Lane, type MemoryLimits } from "./kernels.ts";
import { wasmHeap, type WasmHeap } from "./heap.ts";

/** An fma over arrays in the heap: out[i] = x[i]·y[i] + z[i], n a multiple of the lanes. */
export type ArrayFma = (x: number, y: number, z: number, out: number, n: number) => void;

export function exactFma64(x: number, y: number, z: number): number {
  return fmaExact(x, y, z, FORMATS.float64);
}

/** An instance of a module compiled against the heap's memory. */
export function instantiate(bytes: Uint8Array<ArrayBuffer> | WebAssembly.Module, heap: WasmHeap): WebAssembly.Exports {
  const module = bytes instanceof WebAssembly.Module ? bytes : new WebAssembly.Module(bytes);
  return new WebAssembly.Instance(module, { env: { memory: heap.memory, fmaExact64: exactFma64 } }).exports;
}

export function limitsOf(heap: WasmHeap): MemoryLimits {
  return { maximum: heap.maximumPages };
}

export function arrayFma(lane: Lane, strategy: FmaStrategy, heap: WasmHeap = wasmHeap()): ArrayFma {
  return instantiate(fmaModuleBytes(lane, strategy, limitsOf(heap)), heap).fma as ArrayFma;
}

/**
 * Inputs whose unfused result differs from the fused one, a lane's worth
 * repeated: (1 + u)(1 - u) - 1 = -u² exactly, 0 when the product is rounded
 * first; and the same with the other sign.
 */
export function probeTriples(lane: Lane): [number, number, number][] {
  const u = lane === "float32" ? 2 ** -23 : 2 ** -52;
  const lanes = lane === "float32" ? 4 : 2;
  const base: [number, number, number][] = [[1 + u, 1 - u, -1], [-(1 + u), 1 - u, 1]];
  return Array.from({ length: 2 * lanes }, (_, i) => base[i % 2]!);
}

/**
 * The decision from a probe's results: `fused` when every result is the
 * correctly rounded fma, `unfused` when none is, `inconsistent` otherwise
 * (then it is not used either).
 */
export function relaxedMaddVerdict(lane: Lane, triples: readonly (readonly [number, number, number])[], results: readonly number[]): "fused" | "unfused" | "inconsistent" {
  const exact = triples.map(([x, y, z]) => fmaExact(x, y, z, lane === "float32" ? FORMATS.float32 : FORMATS.float64));
  const matches = results.filter((r, i) => Object.is(r, exact[i])).length;
  return matches === results.length ? "fused" : matches === 0 ? "unfused" : "inconsistent";
}

/** Whether the backend uses an instruction set this engine may offer. */
export interface FeatureProbe {
  readonly use: boolean;
  /** Why it is or is not used. */
  readonly reason: string;
}

/** Whether relaxed_madd on `lane` lanes is fused here (compiles, and gives the fused result). */
export function probeRelaxedMadd(lane: Lane, heap: WasmHeap = wasmHeap()): FeatureProbe {
  let fma: ArrayFma;
  try {
    fma = arrayFma(lane, "relaxed", heap);
  } catch (error) {
    return { use: false, reason: `relaxed SIMD is not available (${(error as Error).message.split("\n")[0]}); exact fma is emulated` };
  }
  const triples = probeTriples(lane);
  const Values = lane === "float32" ? Float32Array : Float64Array;
  const n = triples.length;
  const arrays = [0, 1, 2, 3].map(() => heap.view(Values, n));
  triples.forEach(([x, y, z], i) => {
    arrays[0]![i] = x;
    arrays[1]![i] = y;
    arrays[2]![i] = z;
  });
  fma(arrays[0]!.byteOffset, arrays[1]!.byteOffset, arrays[2]!.byteOffset, arrays[3]!.byteOffset, n);
  const verdict = relaxedMaddVerdict(lane, triples, [...arrays[3]!]);
  return verdict === "fused" ? { use: true, reason: `${lane} relaxed_madd is fused here: used` } : { use: false, reason: `${lane} relaxed_madd is ${verdict} here; exact fma is emulated` };
}

/** float16 conversions over arrays in the heap (kernels.ts's conversionModuleBytes). */
type Conversions = Record<"round16" | "decode16" | "encode16", (from: number, to: number, n: number) => void>;

/**
 * float32 numbers (as bits) where a float16 rounding can go wrong: zeros, each float16 number of a sample of every
 * binade (the subnormals, the smallest normals and the top binade whole), the float32 numbers beside it, the tie with
 * the next number and the float32 numbers beside that; the overflow boundary, float32's subnormals and extremes,
 * infinities; both signs.
 */
export function fp16ProbeInputs(): Uint32Array {
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  const bitsOf = (x: number): number => ((f32[0] = x), u32[0]!);
  const inputs: number[] = [];
  const push = (bits: number): void => void inputs.push(bits, (bits | 0x80000000) >>> 0);
  for (let b = 0; b < 0x7c00; b++) {
    if (!(b < 0x420 || b >= 0x7800 || b % 23 === 0)) continue;
    const x = halfToFloat(b);
    const tie = b === 0x7bff ? 65520 : (x + halfToFloat(b + 1)) / 2;
    for (const bits of [bitsOf(x), bitsOf(tie)]) for (const near of [bits - 1, bits, bits + 1]) if (near >= 0) push(near);
  }
  for (const x of [Infinity, 3.4028234663852886e38, 2 ** -149, 2 ** -126, 1e-30, 65536, 2 ** 20]) push(bitsOf(x));
  return Uint32Array.from(inputs);
}

/**
 * Whether the FP16 proposal's conversions are here and exact: every float16 bit pattern decoded to its value (a NaN
 * to a NaN of its sign) and encoded back (a NaN to 0x7e00 of its sign), and fp16ProbeInputs rounded as tensor/half.ts
 * rounds them. Where V8 has the proposal behind a flag (Node 24 and later), it says so.
 */
export function probeFp16(heap: WasmHeap = wasmHeap()): FeatureProbe {
  let conversions: Conversions;
  try {
    conversions = instantiate(conversionModuleBytes("float16", limitsOf(heap), true), heap) as Conversions;
  } catch (error) {
    const first = (error as Error).message.split("\n")[0];
    return { use: false, reason: `the WebAssembly FP16 proposal's instructions are not available (${first}; Node 24 and later have them behind --experimental-wasm-fp16): float16 is rounded in software` };
  }
  const patterns = 65536;
  const inputs = fp16ProbeInputs();
  const n = inputs.length - (inputs.length % 4); // round16 takes whole vectors
  const [bits16, decoded, x, rounded] = [heap.view(Uint16Array, patterns), heap.view(Float32Array, patterns), heap.view(Float32Array, n), heap.view(Float32Array, n)];
  const bitsOf = (view: Float32Array): Uint32Array => new Uint32Array(view.buffer, view.byteOffset, view.length);
  bits16.forEach((_, b) => (bits16[b] = b));
  conversions.decode16(bits16.byteOffset, decoded.byteOffset, patterns);
  const decodedBits = bitsOf(decoded);
  for (let b = 0; b < patterns; b++) {
    const want = halfToFloat(b);
    const ok = Number.isNaN(want) ? Number.isNaN(decoded[b]) && decodedBits[b]! >>> 31 === b >>> 15 : Object.is(decoded[b], want);
    if (!ok) return inexact(`decodes float16 0x${b.toString(16)} as ${decoded[b]}`);
  }
  conversions.encode16(decoded.byteOffset, bits16.byteOffset, patterns);
  for (let b = 0; b < patterns; b++) {
    const want = Number.isNaN(halfToFloat(b)) ? (b & 0x8000) | 0x7e00 : b;
    if (bits16[b] !== want) return inexact(`encodes float16 0x${b.toString(16)} as 0x${bits16[b]!.toString(16)}`);
  }
  bitsOf(x).set(inputs.subarray(0, n));
  conversions.round16(x.byteOffset, rounded.byteOffset, n);
  for (let k = 0; k < n; k++) if (!Object.is(rounded[k], halfToFloat(floatToHalf(x[k]!)))) return inexact(`rounds ${x[k]} to ${rounded[k]}`);
  return { use: true, reason: "the WebAssembly FP16 proposal's float16 conversions are here and exact: used" };
}

function inexact(what: string): FeatureProbe {
  return { use: false, reason: `the WebAssembly FP16 proposal's conversion ${what} here, not as IEEE 754 does; float16 is rounded in software` };
}

/** Why this engine cannot run the backend, or undefined when it can. */
export function unavailableReason(): string | undefined {
  if (typeof WebAssembly !== "object") return "no WebAssembly in this JavaScript engine";
  if (typeof SharedArrayBuffer !== "function") return "no SharedArrayBuffer (a browser page needs cross-origin isolation for shared WebAssembly memory)";
  try {
    const heap = wasmHeap();
    arrayFma("float64", "emulated", heap);
  } catch (error) {
    return `WebAssembly SIMD with a shared memory does not work here: ${(error as Error).message}`;
  }
  return undefined;
}
