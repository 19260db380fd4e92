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
 * float32 numbers (as bits) where a float16 rounding can go wrong, from `decoded`, the float32 bits of each finite
 * non-negative float16 number (patterns 0 to 0x7bff): each number, the tie with the next one (65520 for the largest:
 * overflow), and the float32 numbers beside both; float32's subnormals and extremes, infinities; both signs. (Between
 * two float32 numbers of the same binade, or of two binades whose upper one starts at the second, their bits' mean is
 * their mean: the tie.)
 */
export function fp16ProbeInputs(decoded: Int32Array): Int32Array {
  const top = 0x7bff;
  const inputs = new Int32Array((top + 1) * 12 + 14);
  let k = 0;
  const push = (bits: number): void => {
    inputs[k++] = bits;
    inputs[k++] = bits | 0x80000000;
  };
  for (let b = 0; b <= top; b++) {
    const x = decoded[b]!;
    const tie = b === 0 ? 102 << 23 /* 2^-25 */ : b === top ? 0x477ff000 /* 65520 */ : (x + decoded[b + 1]!) / 2;
    push(x);
    push(x + 1);
    if (x > 0) push(x - 1);
    else push(1); // float32's smallest subnormal
    push(tie - 1);
    push(tie);
    push(tie + 1);
  }
  for (const bits of [0x7f800000, 0x7f7fffff, 0x00800000, 0x007fffff, 0x0d000000, 0x47800000, 0x49800000]) push(bits);
  return inputs.subarray(0, k);
}

/**
 * Whether the FP16 proposal's conversions are here and exact: the same bits as the kernels' software conversions
 * (which the tests hold to tensor/half.ts on every input class) for every float16 bit pattern decoded (a NaN: a NaN of
 * its sign) and encoded back (a NaN as 0x7e00 of its sign), and for fp16ProbeInputs rounded. Where V8 has the
 * proposal behind a flag (Node 24 and later), it says so.
 */
export function probeFp16(heap: WasmHeap = wasmHeap()): FeatureProbe {
  let hardware: Conversions;
  try {
    hardware = instantiate(conversionModuleBytes("float16", limitsOf(heap), true), heap) as Conversions;
  } catch (error) {
    const first = (error as Error).message.split("\n")[0];
    return { use: false, reason: `the WebAssembly FP16 proposal's instructions are not available (${first}; Node 24 and later have them behind --experimental-wasm-fp16): float16 is rounded in software` };
  }
  const software = instantiate(conversionModuleBytes("float16", limitsOf(heap), false), heap) as Conversions;
  const patterns = 65536;
  const bits16 = heap.view(Uint16Array, patterns);
  const [decodedHard, decodedSoft] = [0, 1].map(() => heap.view(Int32Array, patterns)) as [Int32Array, Int32Array];
  const isNaN16 = (b: number): boolean => (b & 0x7fff) > 0x7c00;
  const isNaN32 = (b: number): boolean => (b & 0x7fffffff) > 0x7f800000;
  for (let b = 0; b < patterns; b++) bits16[b] = b;
  hardware.decode16(bits16.byteOffset, decodedHard.byteOffset, patterns);
  software.decode16(bits16.byteOffset, decodedSoft.byteOffset, patterns);
  for (let b = 0; b < patterns; b++) {
    const [hard, soft] = [decodedHard[b]!, decodedSoft[b]!];
    if (isNaN16(b) ? !(isNaN32(hard) && hard >>> 31 === b >>> 15) : hard !== soft) return inexact(`decodes float16 0x${b.toString(16)} as float32 0x${(hard >>> 0).toString(16)}`);
  }
  hardware.encode16(decodedHard.byteOffset, bits16.byteOffset, patterns);
  for (let b = 0; b < patterns; b++) {
    const want = isNaN16(b) ? (b & 0x8000) | 0x7e00 : b;
    if (bits16[b] !== want) return inexact(`encodes float16 0x${b.toString(16)} as 0x${bits16[b]!.toString(16)}`);
  }
  const inputs = fp16ProbeInputs(decodedSoft);
  const n = inputs.length - (inputs.length % 4); // round16 takes whole vectors
  const [hard, soft] = [0, 1].map(() => heap.view(Int32Array, n)) as [Int32Array, Int32Array];
  hard.set(inputs.subarray(0, n));
  soft.set(inputs.subarray(0, n));
  hardware.round16(hard.byteOffset, hard.byteOffset, n);
  software.round16(soft.byteOffset, soft.byteOffset, n);
  for (let k = 0; k < n; k++) if (hard[k] !== soft[k]) return inexact(`rounds float32 0x${(inputs[k]! >>> 0).toString(16)} to 0x${(hard[k]! >>> 0).toString(16)}`);
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
