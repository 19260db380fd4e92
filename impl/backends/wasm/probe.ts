/**
 * What this JavaScript engine offers the wasm-simd backend, found once by
 * compiling and running small modules: WebAssembly SIMD and shared memory (or
 * the reason the backend is unavailable), and, per lane type, whether
 * relaxed_madd is a fused multiply-add here. Relaxed SIMD lets an engine pick
 * fused or unfused per machine, so it is used only when it gave the correctly
 * rounded result on inputs where the unfused one differs.
 */
import { fmaExact } from "../../../spec/float/fma.ts";
import { FORMATS } from "../../../spec/float/format.ts";
import { fmaModuleBytes, type FmaStrategy, type Lane, type MemoryLimits } from "./kernels.ts";
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

export interface RelaxedMaddProbe {
  readonly use: boolean;
  /** Why it is or is not used. */
  readonly reason: string;
}

/** Whether relaxed_madd on `lane` lanes is fused here (compiles, and gives the fused result). */
export function probeRelaxedMadd(lane: Lane, heap: WasmHeap = wasmHeap()): RelaxedMaddProbe {
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
