/**
 * The wasm-simd backend: NAdam's per-element update as generated WebAssembly
 * SIMD (kernels.ts), one fused pass per param, over tensors that live in a
 * shared WebAssembly memory (heap.ts), bit-exact to PyTorch's CPU kernels
 * under either rounding profile for every dtype: float32 and float64 (and the
 * complex dtypes' real views) in their own lanes, float16 and bfloat16 in
 * float32 lanes, converted on load and store.
 *
 * exp_avg and exp_avg_sq live in the memory (created there, and copied there
 * when loaded, as a device would). Params and grads are the user's host
 * Tensors: those made with `tensor()` / `zeros()` are views into the memory
 * and are used in place; any other is staged, copied in before its kernel and
 * (a param) copied back after: a tensor of more than PIECE numbers a piece at
 * a time through a window (whole where worker threads step it), and a smaller
 * one through its group's window or a staging block kept per storage. The blocks and the views copied through are
 * made when a param or grad is first seen, so a step whose tensors were all
 * seen before allocates no typed array (a new grad tensor costs a view or a
 * few).
 */
import { sameValue } from "../../../spec/float/bits.ts";
import { DTYPE, DTYPES, REAL_DTYPES, type DType, type RealDType } from "../../../spec/float/dtype.ts";
import { vectorBodyLength } from "../../../spec/nadam/element-ops.ts";
import { newStepScalars, stepScalarsInto, type StepScalars } from "../../../spec/nadam/scalars.ts";
import type { NadamHyperParameters } from "../../../spec/nadam/step.ts";
import { CODE_PATHS, CPU_ROUNDING_PROFILES, type CodePath, type RoundingProfile } from "../../../spec/nadam/types.ts";
import { bfloat16ToFloat, floatToBfloat16, floatToHalf, halfToFloat } from "../../../tensor/half.ts";
import { Tensor, type Storage } from "../../../tensor/tensor.ts";
import { chosenProfile, type BackendSupport, type GroupStep, type SyncBackend } from "../../backend.ts";
import { wasmHeap, type WasmHeap } from "./heap.ts";
import { KERNEL_SCALARS, STEPS_ENTRY_BYTES, stepModuleBytes, stepsOnce, type KernelVariant, type Lane, type StepsKernel } from "./kernels.ts";
import { instantiate, limitsOf, probeFp16, probeRelaxedMadd, type FeatureProbe } from "./probe.ts";
import { WorkerPool } from "./threads.ts";

export interface WasmBackendOptions {
  /** PyTorch's CPU rounding profile to reproduce. Default "vectorized" (AVX2/AVX512 machines). */
  readonly profile?: RoundingProfile;
  /** Worker threads that step parts of a large tensor beside this one (Node only). Default 0: this thread alone. */
  readonly threads?: number;
  /** The number of elements from which a tensor is split over the threads. Default 2^20. */
  readonly parallelAbove?: number;
  /**
   * float16's conversions and roundings by the WebAssembly FP16 proposal's instructions, where this engine has them
   * and a start-up probe finds them exact (Node 24 and later, started with --experimental-wasm-fp16): the same bits,
   * about 2.4 times as fast as in software in a Node 24 bench run here. Default true; false rounds in software everywhere.
   */
  readonly fp16?: boolean;
}

/** Every dtype: float32 / float64 (and complex ones' real views) in their own lanes, float16 / bfloat16 in float32 lanes. */
export const WASM_DTYPES: readonly DType[] = DTYPES;

export const WASM_SUPPORT: BackendSupport = {
  dtypes: WASM_DTYPES,
  paths: CODE_PATHS,
  profiles: CPU_ROUNDING_PROFILES,
  features: ["tensor-lr", "differentiable"],
};

type StorageConstructor = Float64ArrayConstructor | Float32ArrayConstructor | Uint16ArrayConstructor;

/** The lanes a real dtype computes in, and its storage format when that differs (16-bit). */
const LANE: Readonly<Record<RealDType, Lane>> = { float64: "float64", float32: "float32", float16: "float32", bfloat16: "float32" };
function storageOf(real: RealDType): "float16" | "bfloat16" | undefined {
  return real === "float16" || real === "bfloat16" ? real : undefined;
}

/** Each kernel scalar's index in the arguments. */
const K = Object.fromEntries(KERNEL_SCALARS.map((name, k) => [name, k])) as Readonly<Record<(typeof KERNEL_SCALARS)[number], number>>;

/** A Python float as a 0-d tensor of a 16-bit dtype sees it (through float32), or rounded to the lane type. */
function toDtype(x: number, real: RealDType): number {
  if (real === "float16") return halfToFloat(floatToHalf(Math.fround(x)));
  if (real === "bfloat16") return bfloat16ToFloat(floatToBfloat16(Math.fround(x)));
  return real === "float64" ? x : Math.fround(x);
}

/**
 * The step kernel's scalar arguments (KERNEL_SCALARS' order), as the typed-array
 * kernel receives them: Python floats converted to the opmath (= lane) type.
 */
function kernelArguments(h: NadamHyperParameters, s: StepScalars, real: RealDType, path: CodePath, into: Float64Array): void {
  hyperArguments(h, s, real, path, into);
  stepArguments(s, real, into);
}

/**
 * The arguments that change from step to step (the bias correction and the step
 * sizes), the others left as they are: what a group whose hyper-parameters did
 * not change writes each step. No closure and no call that takes or returns a
 * number: a number passed to, or returned from, a call the engine does not
 * inline is boxed, an allocation per step.
 */
function stepArguments(s: StepScalars, real: RealDType, into: Float64Array): void {
  if (real === "float64") {
    into[K.bc2] = s.biasCorrection2;
    into[K.bcSqrt] = s.biasCorrection2Sqrt;
    into[K.step1] = s.gradStepSize;
    into[K.step2] = s.expAvgStepSize;
  } else {
    into[K.bc2] = Math.fround(s.biasCorrection2);
    into[K.bcSqrt] = Math.fround(s.biasCorrection2Sqrt);
    into[K.step1] = Math.fround(s.gradStepSize);
    into[K.step2] = Math.fround(s.expAvgStepSize);
  }
}

/** The arguments that depend on the hyper-parameters, path and dtype alone (the decay factor is a function of the hyper-parameters). */
function hyperArguments(h: NadamHyperParameters, s: StepScalars, real: RealDType, path: CodePath, into: Float64Array): void {
  const lane64 = real === "float64";
  // (a branch, not a function chosen per call: a call through a variable returns each number boxed)
  const r = (x: number): number => (lane64 ? x : Math.fround(x));
  // 16-bit quirks (spec/nadam/element-ops.ts): add's alpha and scalar, and _foreach_mul_'s scalar, become 0-d tensors of the dtype
  const foreach = path === "foreach";
  const beta2 = h.betas[1];
  const w = r(1 - h.betas[0]); // lerp's weight
  into[K.decay] = foreach && !h.lr_is_tensor ? toDtype(s.decayFactor, real) : r(s.decayFactor);
  into[K.alpha] = toDtype(h.weight_decay, real);
  into[K.w] = w;
  into[K.wMinusOne] = r(w - 1);
  into[K.oneMinusW] = r(1 - w);
  into[K.beta2] = foreach ? toDtype(beta2, real) : r(beta2);
  into[K.oneMinusBeta2] = r(1 - beta2);
  into[K.eps] = toDtype(h.eps, real);
}

/** Per lane type: whether relaxed_madd is fused here (probed once per process). */
const relaxedMadd = new Map<Lane, FeatureProbe>();
function relaxedMaddOf(lane: Lane, heap: WasmHeap): FeatureProbe {
  let probe = relaxedMadd.get(lane);
  if (probe === undefined) relaxedMadd.set(lane, (probe = probeRelaxedMadd(lane, heap)));
  return probe;
}

/** Whether the FP16 proposal's conversions are here and exact (probed once per process). */
let fp16Probe: FeatureProbe | undefined;
function fp16Of(heap: WasmHeap): FeatureProbe {
  return (fp16Probe ??= probeFp16(heap));
}

/** A dtype's kernel arguments in the memory, and what they were made from. */
interface KernelArguments {
  readonly values: Float64Array;
  /** Their float64 index in the memory (byte offset / 8: see StepsKernel). */
  readonly index: number;
  /** The scalarsWritten count of the step scalars they were made from, -1 for none. */
  of: number;
  hyper: NadamHyperParameters | undefined;
  path: CodePath | undefined;
  /**
   * The kernel variant's smallWeight and boundedScalars (before the FP16 conversions are asked about), found from the
   * arguments when they are written: the per-param path reading the arguments for them each step would box each float
   * it reads until the engine optimises the step, which a large tensor's few hundred steps do not make it do.
   */
  smallWeight: boolean;
  bounded: boolean;
}

/** A compiled step kernel: its module (what a worker thread instantiates) and whether it calls the host's exact fma. */
interface CompiledKernel {
  readonly key: number;
  readonly module: WebAssembly.Module;
  readonly steps: StepsKernel;
  /** float64 lanes with emulated fma fall back to the host for extreme exponents: such a kernel runs on this thread only. */
  readonly callsHost: boolean;
}

/** KernelVariant.boundedScalars (float16 only), from the kernel's arguments. */
// (no closure: the per-param path calls it for every param of every step)
function boundedScalars(storage: KernelVariant["storage"], a: Float64Array): boolean {
  return storage === "float16" && a[K.w]! >= 0 && a[K.w]! <= 1 && a[K.beta2]! >= 0 && a[K.beta2]! <= 1 && a[K.alpha]! >= -1 && a[K.alpha]! <= 1 && a[K.eps]! >= -8 && a[K.eps]! <= 8;
}

/** Compiled kernels by variant (kernelKey), once per process. */
const kernels = new Map<number, CompiledKernel>();

function kernelKey(v: Omit<KernelVariant, "fma">): number {
  return variantKey(v.lane, v.fused, v.foreach, v.maximize, v.weightDecay, v.smallWeight, v.storage, v.scalarLoop === true, v.differentiable === true, v.boundedScalars === true, v.fp16 === true);
}

/** kernelKey from the variant's fields, for a lookup that makes no variant object. */
function variantKey(lane: Lane, fused: boolean, foreach: boolean, maximize: boolean, weightDecay: KernelVariant["weightDecay"], smallWeight: boolean,
  storage: KernelVariant["storage"], scalarLoop: boolean, differentiable: boolean, bounded: boolean, fp16: boolean): number {
  const decay = weightDecay === "none" ? 0 : weightDecay === "decoupled" ? 1 : 2;
  const stored = storage === undefined ? 0 : storage === "float16" ? 1 : 2;
  return (lane === "float64" ? 1 : 0) | (fused ? 2 : 0) | (foreach ? 4 : 0) | (maximize ? 8 : 0) | (decay << 4) | (smallWeight ? 64 : 0) |
    (stored << 7) | (scalarLoop ? 512 : 0) | (differentiable ? 1024 : 0) | (bounded ? 2048 : 0) | (fp16 ? 4096 : 0);
}

/**
 * kernelFor without a variant object where the kernel is compiled already: the
 * per-param path looks a kernel up for every param of every step.
 */
function kernelOf(lane: Lane, fused: boolean, foreach: boolean, maximize: boolean, weightDecay: KernelVariant["weightDecay"], smallWeight: boolean,
  storage: KernelVariant["storage"], scalarLoop: boolean, differentiable: boolean, bounded: boolean, fp16: boolean, heap: WasmHeap): CompiledKernel {
  return kernels.get(variantKey(lane, fused, foreach, maximize, weightDecay, smallWeight, storage, scalarLoop, differentiable, bounded, fp16)) ??
    kernelFor({ lane, fused, foreach, maximize, weightDecay, smallWeight, storage, scalarLoop, differentiable, boundedScalars: bounded, fp16 }, heap);
}

function kernelFor(variant: Omit<KernelVariant, "fma">, heap: WasmHeap): CompiledKernel {
  const key = kernelKey(variant);
  let kernel = kernels.get(key);
  if (kernel === undefined) {
    const fma = variant.fused && relaxedMaddOf(variant.lane, heap).use ? "relaxed" : "emulated";
    const module = new WebAssembly.Module(stepModuleBytes({ ...variant, fma }, limitsOf(heap)));
    const { steps } = instantiate(module, heap) as { steps: StepsKernel };
    kernel = { key, module, steps, callsHost: variant.lane === "float64" && variant.fused && fma === "emulated" };
    kernels.set(key, kernel);
  }
  return kernel;
}

/**
 * A group's params laid out for `steps` calls (kernels.ts): each one's pieces
 * (of PIECE numbers at most), their offsets in the memory, and the host
 * storages staged before and after. Made when a group's params or state tensors
 * change, not every step; the grads, often new tensors every step, are placed
 * at each step. Pieces run in chunks of PIECE numbers at most, whose host
 * storages are staged through one window: a large host tensor is staged a
 * piece at a time, not whole beside itself.
 */
interface Batch {
  /** The params and their step, mu_product, exp_avg and exp_avg_sq tensors (four per param) it was made for. */
  readonly params: readonly Tensor[];
  readonly stateTensors: readonly Tensor[];
  /** Whether they can be stepped in one call (else one by one). */
  readonly usable: boolean;
  readonly real: RealDType;
  /** (p, g, m, v, n) per piece (STEPS_ENTRY_BYTES), in the memory; g is written when a param's grad changes. */
  readonly list: Int32Array;
  /** Its int32 index in the memory (see StepsKernel). */
  readonly listIndex: number;
  /** Param i's pieces are firstPiece[i] to firstPiece[i + 1] - 1; a piece starts at pieceStart (a number's index in its param). */
  readonly firstPiece: readonly number[];
  readonly pieceStart: readonly number[];
  /** Per piece, the slot a host grad's piece is copied into: its byte offset in the memory, and its bits. */
  readonly gradSlotAt: readonly number[];
  readonly gradSlotBits: readonly Bits[];
  /** Per piece, its numbers. */
  readonly pieceLength: readonly number[];
  /** Where each chunk of pieces starts, and then the pieces' count; and where each chunk's staged copies start, then their count. */
  readonly chunks: readonly number[];
  readonly chunkCopies: readonly number[];
  /** Per param, the grad its pieces' list entries hold (the last step's), checked and placed. */
  readonly placedGrads: (Tensor | undefined)[];
  /** Per piece, its placed grad's bits when they are a host storage's (copied into its slot at each step), else undefined. */
  readonly hostGrads: (Bits | undefined)[];
  /** Per param, its step and mu_product tensors' storages (each kind of one dtype in a usable batch). */
  readonly stepData: readonly Storage[];
  readonly muProductData: readonly Storage[];
  /** The work it was last used for (the optimizer hands the same one while its params are the same). */
  work?: GroupStep<Tensor>;
  /** The buffers of every param and state storage: a host grad in one of them could alias them. */
  readonly buffers: ReadonlySet<ArrayBufferLike>;
  /** Host storages' pieces' bits, copied into their window slots' (the same index) before their chunk's kernels and back after (params and moments). */
  readonly stagedHosts: readonly Bits[];
  readonly stagedBlocks: readonly Bits[];
  /** The kernel, and the hyper-parameters and path it was found for. */
  kernel?: CompiledKernel;
  kernelFor?: readonly [NadamHyperParameters, CodePath];
}

/** A storage that holds nothing, in place of one let go. */
const NO_STORAGE: Storage = new Float32Array(0);

/** The numbers of a piece and of a chunk of pieces (a multiple of 32: PyTorch's vector blocks stay whole). */
const PIECE = 1 << 16;


/**
 * A storage's bytes as integers: what staging copies, so that a copy by a loop
 * keeps every bit (a float element read and written back could have its NaN
 * quieted). Float32 and float64 storages as 32-bit words; 16-bit ones as they are.
 */
type Bits = Int32Array | Uint16Array;
function bitsOf(data: Storage): Bits {
  return data instanceof Uint16Array ? data : new Int32Array(data.buffer, data.byteOffset, data.byteLength >> 2);
}

/** The bits of `length` numbers of a storage from number `start`: the whole storage's view when that is all of it. */
function bitsOfPiece(data: Storage, start: number, length: number): Bits {
  const bits = bitsOf(data);
  if (start === 0 && length === data.length) return bits;
  const scale = bits.length / data.length;
  return bits.subarray(start * scale, (start + length) * scale);
}

/** Up to this many words, a loop copies faster than TypedArray.prototype.set, whose call costs more than a short copy. */
const SHORT_COPY = 64;

/** into.set(from), for the bits of two storages of one kind and length. */
function copyBits(into: Bits, from: Bits): void {
  const n = from.length;
  if (n > SHORT_COPY) into.set(from as never);
  else for (let i = 0; i < n; i++) into[i] = from[i]!;
}

/** Whether no two storages share a byte (in the same buffer). */
function apart(storages: readonly Storage[]): boolean {
  const byBuffer = new Map<ArrayBufferLike, Storage[]>();
  for (const data of storages) {
    const list = byBuffer.get(data.buffer);
    if (list === undefined) byBuffer.set(data.buffer, [data]);
    else list.push(data); // (not a copy per storage: storages in the memory share one buffer, thousands of them)
  }
  for (const list of byBuffer.values()) {
    list.sort((a, b) => a.byteOffset - b.byteOffset);
    for (let k = 1; k < list.length; k++) if (list[k]!.byteOffset < list[k - 1]!.byteOffset + list[k - 1]!.byteLength || list[k] === list[k - 1]) return false;
  }
  return true;
}

export interface WasmBackend extends SyncBackend<Tensor> {
  /** A host Tensor whose storage lives in the backend's memory (stepped with no copy), from values as Tensor.from takes them. */
  tensor(values: ArrayLike<number>, dtype?: DType, shape?: readonly number[]): Tensor;
  /** A zero host Tensor whose storage lives in the backend's memory. */
  zeros(shape: readonly number[], dtype?: DType): Tensor;
  /** Whether exact fma uses relaxed_madd on each lane type here, and why. */
  readonly relaxedMadd: Readonly<Record<Lane, FeatureProbe>>;
  /** Whether float16 is converted and rounded by the WebAssembly FP16 proposal's instructions (the `fp16` option), and why. */
  readonly fp16: FeatureProbe;
  /** The worker threads it started (0 without `threads`, or where there are none). */
  readonly threads: number;
  /** How many parts of tensors its worker threads have stepped. */
  readonly workerParts: number;
}

export function wasmBackend(options: WasmBackendOptions = {}): WasmBackend {
  const profile = chosenProfile("wasm-simd", CPU_ROUNDING_PROFILES, options.profile);
  const heap = wasmHeap();
  const pool = WorkerPool.create(options.threads ?? 0, heap.memory);
  const parallelAbove = options.parallelAbove ?? 2 ** 20;
  // (probed on first use: a float16 step, or the property; the probe takes tens of milliseconds)
  const fp16Off: FeatureProbe = { use: false, reason: "turned off by the fp16 option: float16 is rounded in software" };
  const fp16 = (): FeatureProbe => (options.fp16 === false ? fp16Off : fp16Of(heap));
  /** Staging blocks of host storages (params, or state tensors a user put in place): one per storage, freed with it. */
  const staging = new WeakMap<Storage, Storage>();
  /** One staging block per real dtype for grads, which are often new tensors every step. */
  const gradStaging: Partial<Record<RealDType, Storage>> = {};
  /** The kernel arguments per real dtype, refilled when the step's scalars or the hyper-parameters change (no allocation per step). */
  // (in the memory: the steps kernel reads them there)
  const args = Object.fromEntries(REAL_DTYPES.map((real) => [real, argumentsIn(heap.view(Float64Array, KERNEL_SCALARS.length))])) as Record<RealDType, KernelArguments>;
  function argumentsIn(values: Float64Array): KernelArguments {
    return { values, index: heap.offsetOf(values) / 8, of: -1, hyper: undefined, path: undefined, smallWeight: false, bounded: false };
  }
  /** A dtype's arguments for new hyper-parameters or path, all of them, and what follows from them. */
  const writeArguments = (cached: KernelArguments, hyper: NadamHyperParameters, s: StepScalars, real: RealDType, path: CodePath): void => {
    const a = cached.values;
    kernelArguments(hyper, s, real, path, a);
    cached.hyper = hyper;
    cached.path = path;
    cached.smallWeight = Math.abs(a[K.w]!) < 0.5;
    cached.bounded = boundedScalars(storageOf(real), a);
  };
  /** The per-param path's scalars, rewritten (not allocated) when a param's scalar state differs from the last one's; scalarsWritten counts the rewrites. */
  const paramScalars = newStepScalars();
  let scalarsWritten = 0;
  /** A dtype's kernel arguments in the memory, written again only when the step scalars, hyper-parameters or path they were made from change. */
  const argumentsFor = (real: RealDType, s: StepScalars, hyper: NadamHyperParameters, path: CodePath): KernelArguments => {
    const cached = args[real];
    if (cached.hyper !== hyper || cached.path !== path) {
      writeArguments(cached, hyper, s, real, path);
      cached.of = scalarsWritten;
    } else if (cached.of !== scalarsWritten) {
      stepArguments(s, real, cached.values);
      cached.of = scalarsWritten;
    }
    return cached;
  };

  const zeros = (shape: readonly number[], dtype: DType = "float32"): Tensor => {
    const length = shape.reduce((a, b) => a * b, 1) * (DTYPE[dtype].complex ? 2 : 1);
    return new Tensor(dtype, shape, heap.view(DTYPE[dtype].storage, length).fill(0));
  };

  /** A host storage's staging block (its numbers not copied). */
  const stagingOf = (data: Storage): Storage => {
    let block = staging.get(data);
    if (block === undefined) staging.set(data, (block = heap.view(data.constructor as StorageConstructor, data.length)));
    return block;
  };
  /** The address (heap.addressOf) of a storage's numbers in the memory: its own, or its staging block's after copying them in. */
  const placed = (data: Storage): number => {
    if (heap.owns(data)) return heap.addressOf(data);
    const block = stagingOf(data);
    block.set(data as never);
    return heap.addressOf(block);
  };

  /** Batches by their first param. */
  const batches = new WeakMap<Tensor, Batch>();

  /** Whether a batch was made for these params (stepBatch checks their state tensors). */
  const madeFor = (batch: Batch, { params }: GroupStep<Tensor>): boolean => {
    if (batch.params.length !== params.length) return false;
    for (let i = 0; i < params.length; i++) if (params[i] !== batch.params[i]) return false;
    return true;
  };

  /**
   * A group's batch. Usable when its params share a real dtype, none is large
   * enough for the worker threads, and no two of their storages and state
   * tensors' share a byte: one call reads every param's scalars before any
   * kernel runs and stages every storage at once, which is then the same as
   * stepping the params one after another.
   */
  const prepareBatch = ({ params, states }: GroupStep<Tensor>): Batch => {
    const real = DTYPE[params[0]!.dtype].real;
    const stateTensors = states.flatMap((state) => [state.step, state.mu_product, state.exp_avg, state.exp_avg_sq]);
    const involved = [...params.map((p) => p.data), ...stateTensors.map((t) => t.data)];
    const usable = params.every((p) => DTYPE[p.dtype].real === real && (pool === undefined || p.data.length < parallelAbove)) &&
      states.every((state) => state.step.dtype === states[0]!.step.dtype && state.mu_product.dtype === states[0]!.mu_product.dtype) && apart(involved);
    const storage = params[0]!.data.constructor as StorageConstructor;
    const bytes = storage.BYTES_PER_ELEMENT;
    // pieces, and chunks of them of PIECE numbers at most; slotAt: a piece's place in its chunk's slots
    const firstPiece: number[] = [];
    const pieceStart: number[] = [];
    const pieceLength: number[] = [];
    const pieceParam: number[] = [];
    const slotAt: number[] = [];
    const chunks = [0];
    let at = 0;
    let region = 1;
    params.forEach((param, i) => {
      firstPiece.push(pieceStart.length);
      for (let start = 0; start < param.data.length; start += PIECE) {
        const length = Math.min(PIECE, param.data.length - start);
        if (at + length > PIECE) {
          chunks.push(pieceStart.length);
          at = 0;
        }
        pieceStart.push(start);
        pieceLength.push(length);
        pieceParam.push(i);
        slotAt.push(at);
        at += length;
        region = Math.max(region, at);
      }
    });
    firstPiece.push(pieceStart.length);
    chunks.push(pieceStart.length);
    const pieces = pieceStart.length;
    const list = heap.view(Int32Array, (STEPS_ENTRY_BYTES / 4) * Math.max(1, pieces));
    // the window for host params and moments: a region for each of p, m and v that has a host storage, holding one chunk's pieces
    const hosted = (role: (i: number) => Storage): boolean => usable && params.some((_, i) => !heap.owns(role(i)));
    const regionOf: number[] = [];
    let regions = 0;
    for (const role of [(i: number) => params[i]!.data, (i: number) => states[i]!.exp_avg.data, (i: number) => states[i]!.exp_avg_sq.data]) regionOf.push(hosted(role) ? regions++ : -1);
    const window = regions > 0 ? heap.view(storage, regions * region) : undefined;
    const stagedHosts: Bits[] = [];
    const stagedBlocks: Bits[] = [];
    const chunkCopies = [0];
    if (usable) {
      let chunk = 1;
      for (let k = 0; k < pieces; k++) {
        if (k === chunks[chunk]) {
          chunkCopies.push(stagedHosts.length);
          chunk++;
        }
        const i = pieceParam[k]!;
        const state = states[i]!;
        const offsetOf = (data: Storage, role: number): number => {
          if (heap.owns(data)) return heap.offsetOf(data) + pieceStart[k]! * bytes;
          const from = regionOf[role]! * region + slotAt[k]!;
          const slot = window!.subarray(from, from + pieceLength[k]!);
          stagedHosts.push(bitsOfPiece(data, pieceStart[k]!, pieceLength[k]!));
          stagedBlocks.push(bitsOf(slot));
          return slot.byteOffset;
        };
        list.set([offsetOf(params[i]!.data, 0), 0, offsetOf(state.exp_avg.data, 1), offsetOf(state.exp_avg_sq.data, 2), pieceLength[k]!], (STEPS_ENTRY_BYTES / 4) * k);
      }
    }
    chunkCopies.push(stagedHosts.length);
    // the host grads' slots in one block, made on first use (grads in the memory need none)
    let gradSlotAt: number[] = [];
    let gradSlotBits: Bits[] = [];
    const slots = (): void => {
      if (gradSlotAt.length === 0 && usable) {
        const block = heap.view(storage, region);
        gradSlotAt = slotAt.map((slot) => heap.offsetOf(block) + slot * bytes);
        gradSlotBits = slotAt.map((slot, k) => bitsOf(block.subarray(slot, slot + pieceLength[k]!)));
      }
    };
    return {
      params: [...params],
      stateTensors,
      usable,
      real,
      list,
      listIndex: heap.offsetOf(list) / 4,
      firstPiece,
      pieceStart,
      chunks,
      chunkCopies,
      get gradSlotAt() {
        slots();
        return gradSlotAt;
      },
      pieceLength,
      get gradSlotBits() {
        slots();
        return gradSlotBits;
      },
      placedGrads: params.map(() => undefined),
      hostGrads: pieceStart.map(() => undefined),
      stepData: states.map((state) => state.step.data),
      muProductData: states.map((state) => state.mu_product.data),
      buffers: new Set(involved.map((data) => data.buffer)),
      stagedHosts,
      stagedBlocks,
    };
  };

  /** The scalars of a batch's step (overwritten, not allocated, each step). */
  const batchScalars = newStepScalars();
  /** The scalar state every param of a batch shares (mutated, not allocated, each step). */
  const shared: { step: number; step_dtype: DType; mu_product: number; mu_product_dtype: DType } = { step: 0, step_dtype: "float32", mu_product: 0, mu_product_dtype: "float32" };

  /**
   * A group's step as one `steps` call; false, with nothing changed, where it
   * cannot be: the params' scalar states differ, a grad is not of its param's
   * dtype and length or could alias a staged storage, or 16-bit add(alpha)
   * splits at PyTorch's vector body.
   */
  const stepBatch = (work: GroupStep<Tensor>, batch: Batch): boolean => {
    const { params, grads, states, hyper, path } = work;
    const { real, list, placedGrads } = batch;
    const storage = storageOf(real);
    const weightDecay = hyper.weight_decay === 0 ? "none" : hyper.decoupled_weight_decay ? "decoupled" : "l2";
    if (storage !== undefined && profile === "vectorized" && weightDecay === "l2") return false;
    const { stateTensors, stepData, muProductData } = batch;
    // one scalar state: the same step (=== of the stored numbers; equal ones give the same scalars) and the same mu_product (Object.is)
    const step = stepData[0]![0]!;
    const muProduct = muProductData[0]![0]!;
    const entry = STEPS_ENTRY_BYTES / 4;
    for (let i = 0; i < params.length; i++) {
      const state = states[i]!;
      if (state.step !== stateTensors[4 * i] || state.mu_product !== stateTensors[4 * i + 1] || state.exp_avg !== stateTensors[4 * i + 2] || state.exp_avg_sq !== stateTensors[4 * i + 3]) {
        batches.delete(params[0]!); // laid out again at the next step
        return false;
      }
      if (stepData[i]![0] !== step || !sameValue(muProductData[i]![0]!, muProduct)) return false;
      // (the grad of the last step passed the rest then: a Tensor's dtype and storage do not change)
      const grad = grads[i]!;
      if (grad === placedGrads[i]) continue;
      const param = params[i]!;
      if (grad.dtype !== param.dtype || grad.data.length !== param.data.length) return false;
      const data = grad.data;
      const owned = heap.owns(data);
      if (!owned && (batch.buffers.has(data.buffer) || data.buffer instanceof SharedArrayBuffer)) return false;
      const { firstPiece, pieceStart, pieceLength, hostGrads } = batch;
      for (let k = firstPiece[i]!; k < firstPiece[i + 1]!; k++) {
        list[entry * k + 1] = owned ? heap.offsetOf(data) + pieceStart[k]! * data.BYTES_PER_ELEMENT : batch.gradSlotAt[k]!;
        hostGrads[k] = owned ? undefined : bitsOfPiece(data, pieceStart[k]!, pieceLength[k]!);
      }
      placedGrads[i] = grad;
    }
    // nothing changes before this point
    const first = states[0]!;
    shared.step = first.step.get(0);
    shared.step_dtype = first.step.dtype;
    shared.mu_product = first.mu_product.get(0);
    shared.mu_product_dtype = first.mu_product.dtype;
    const s = stepScalarsInto(batchScalars, hyper, path, shared);
    // stored through the first param's tensors, copied as stored to the others (of the same dtypes)
    first.step.set(0, s.step);
    first.mu_product.set(0, s.muProduct);
    const stepStored = stepData[0]![0]!;
    const muProductStored = muProductData[0]![0]!;
    for (let i = 1; i < states.length; i++) {
      stepData[i]![0] = stepStored;
      muProductData[i]![0] = muProductStored;
    }
    // the arguments: those of the hyper-parameters once (while the group's plan is the same), the step's anew each step;
    // (argumentsFor's values are no longer those of paramScalars)
    const cached = args[real];
    const a = cached.values;
    if (cached.hyper !== hyper || cached.path !== path) {
      writeArguments(cached, hyper, s, real, path);
    } else {
      stepArguments(s, real, a);
    }
    cached.of = -1;
    if (batch.kernelFor?.[0] !== hyper || batch.kernelFor[1] !== path) {
      // (with the FP16 conversions, bounded scalars save nothing)
      const hardware = storage === "float16" && fp16().use;
      const variant = { lane: LANE[real], fused: profile === "vectorized", foreach: path === "foreach", maximize: hyper.maximize, weightDecay, smallWeight: cached.smallWeight, storage, differentiable: storage !== undefined && hyper.differentiable === true, boundedScalars: !hardware && cached.bounded, fp16: hardware } as const;
      batch.kernel = kernelFor(variant, heap);
      batch.kernelFor = [hyper, path];
    }
    const { stagedHosts, stagedBlocks, chunks, chunkCopies, hostGrads } = batch;
    let gradSlotBits: readonly Bits[] | undefined;
    for (let c = 0; c + 1 < chunks.length; c++) {
      const from = chunks[c]!;
      const to = chunks[c + 1]!;
      for (let k = chunkCopies[c]!; k < chunkCopies[c + 1]!; k++) copyBits(stagedBlocks[k]!, stagedHosts[k]!);
      for (let k = from; k < to; k++) {
        const bits = hostGrads[k];
        if (bits !== undefined) copyBits((gradSlotBits ??= batch.gradSlotBits)[k]!, bits);
      }
      if (to > from) batch.kernel!.steps(batch.listIndex + (from * STEPS_ENTRY_BYTES) / 4, to - from, cached.index);
      for (let k = chunkCopies[c]!; k < chunkCopies[c + 1]!; k++) copyBits(stagedHosts[k]!, stagedBlocks[k]!);
    }
    return true;
  };
  /** The list entry through which the per-param path hands one call's numbers to a `steps` kernel (stepsOnce). */
  const callEntry = heap.view(Int32Array, STEPS_ENTRY_BYTES / 4);
  const callEntryIndex = heap.offsetOf(callEntry) / 4;
  /** A kernel over n numbers at p, g, m and v (their addresses in the memory, as heap.addressOf gives them), with the arguments `a`. */
  const runKernel = (kernel: CompiledKernel, p: number, g: number, m: number, v: number, n: number, a: KernelArguments): void => stepsOnce(kernel.steps, callEntry, callEntryIndex, p, g, m, v, n, a.index);
  /**
   * Whether a param's step goes a piece at a time: larger than a piece, with a
   * host storage, and no two of its host storages in one buffer (a piece is
   * read after the pieces before it were written back).
   */
  const inPieces = (storages: readonly Storage[]): boolean => {
    if (storages[0]!.length <= PIECE) return false;
    let hosted = false;
    for (let r = 0; r < 4; r++) {
      const data = storages[r]!;
      if (heap.owns(data)) continue;
      if (data.buffer instanceof SharedArrayBuffer) return false;
      for (let q = 0; q < r; q++) if (!heap.owns(storages[q]!) && storages[q]!.buffer === data.buffer) return false;
      hosted = true;
    }
    return hosted;
  };
  /** A param's p, g, m and v storages, and their pieces' offsets in the memory (kept, not allocated per param). */
  const pieceRoles: Storage[] = [];
  const pieceOffsets = new Int32Array(4);
  /** Per kind of storage, the window pieces are staged through: a region of PIECE numbers for each of p, g, m and v. */
  const pieceWindows = new Map<StorageConstructor, Storage>();
  /** Views of the pieces of host storages (and of the window's regions, by role and length), made once. */
  const hostPieces = new WeakMap<Storage, Bits[]>();
  const windowPieces = new WeakMap<Storage, Map<number, Bits>>();
  const piecesOf = (data: Storage): Bits[] => {
    let pieces = hostPieces.get(data);
    if (pieces === undefined) {
      pieces = [];
      for (let start = 0; start < data.length; start += PIECE) pieces.push(bitsOfPiece(data, start, Math.min(PIECE, data.length - start)));
      hostPieces.set(data, pieces);
    }
    return pieces;
  };
  const windowPiece = (window: Storage, role: number, length: number): Bits => {
    let views = windowPieces.get(window);
    if (views === undefined) windowPieces.set(window, (views = new Map()));
    const key = role * (PIECE + 1) + length;
    let view = views.get(key);
    if (view === undefined) views.set(key, (view = bitsOfPiece(window, role * PIECE, length)));
    return view;
  };
  /**
   * One param's step a piece at a time: each host storage's piece copied into
   * the window, the piece stepped (its elements before `body` by `kernel`, the
   * rest by `tail`), and the param's and moments' pieces copied back. Pieces
   * start at multiples of PIECE, so each element meets the kernel it meets whole.
   */
  const stepPieces = (storages: readonly Storage[], kernel: CompiledKernel, tail: CompiledKernel | undefined, body: number, a: KernelArguments): void => {
    const kind = storages[0]!.constructor as StorageConstructor;
    let window = pieceWindows.get(kind);
    if (window === undefined) pieceWindows.set(kind, (window = heap.view(kind, 4 * PIECE)));
    const bytes = kind.BYTES_PER_ELEMENT;
    const n = storages[0]!.length;
    const at = pieceOffsets;
    for (let piece = 0, start = 0; start < n; piece++, start += PIECE) {
      const length = Math.min(PIECE, n - start);
      for (let r = 0; r < 4; r++) {
        const data = storages[r]!;
        if (heap.owns(data)) at[r] = heap.offsetOf(data) + start * bytes;
        else {
          copyBits(windowPiece(window, r, length), piecesOf(data)[piece]!);
          at[r] = heap.offsetOf(window) + r * PIECE * bytes;
        }
      }
      const inBody = Math.max(0, Math.min(length, body - start));
      if (inBody > 0) runKernel(kernel, at[0]!, at[1]!, at[2]!, at[3]!, inBody, a);
      if (inBody < length) {
        const skip = inBody * bytes;
        runKernel(tail!, at[0]! + skip, at[1]! + skip, at[2]! + skip, at[3]! + skip, length - inBody, a);
      }
      for (let r = 0; r < 4; r++) if (r !== 1 && !heap.owns(storages[r]!)) copyBits(piecesOf(storages[r]!)[piece]!, windowPiece(window, r, length));
    }
  };
  const copyBack = (data: Storage): void => {
    if (!heap.owns(data)) data.set(staging.get(data)! as never);
  };
  const placedGrad = (data: Storage, real: RealDType): number => {
    if (heap.owns(data)) return heap.addressOf(data);
    let block = gradStaging[real];
    if (block === undefined || block.length < data.length) gradStaging[real] = block = heap.view(data.constructor as StorageConstructor, Math.max(data.length, 2 * (block?.length ?? 0)));
    block.set(data as never);
    return heap.addressOf(block);
  };

  return {
    name: `wasm-simd (${profile})`,
    device: "cpu",
    supports: WASM_SUPPORT,
    asynchronous: false,
    relaxedMadd: { float32: relaxedMaddOf("float32", heap), float64: relaxedMaddOf("float64", heap) },
    get fp16() {
      return fp16();
    },
    threads: pool?.size ?? 0,
    get workerParts() {
      return pool?.parts ?? 0;
    },
    dispose: () => pool?.terminate(),
    zeros,
    tensor(values, dtype = "float32", shape = [values.length / (DTYPE[dtype].complex ? 2 : 1)]) {
      const t = zeros(shape, dtype);
      if (values.length !== t.data.length) throw new RangeError(`${values.length} values do not fill a ${dtype} tensor of shape ${JSON.stringify(shape)} (${t.data.length} numbers)`);
      for (let i = 0; i < values.length; i++) t.set(i, values[i]!);
      return t;
    },
    initState(param, scalarDtype) {
      return { step: Tensor.scalar(0, scalarDtype), mu_product: Tensor.scalar(1, scalarDtype), exp_avg: zeros(param.shape, param.dtype), exp_avg_sq: zeros(param.shape, param.dtype) };
    },
    // A loaded moment moves into the memory (a copy, as onto a device); one already there, and the 0-d scalars, stay as they are.
    fromHost(tensor) {
      if (tensor.shape.length === 0 || heap.owns(tensor.data) || !WASM_DTYPES.includes(tensor.dtype)) return tensor;
      const moved = zeros(tensor.shape, tensor.dtype);
      moved.data.set(tensor.data as never);
      return moved;
    },
    toHost: (tensor) => tensor,
    isTensor: (value): value is Tensor => value instanceof Tensor,
    stepGroup(work: GroupStep<Tensor>): void {
      if (work.params.length > 0) {
        let batch = batches.get(work.params[0]!);
        if (batch === undefined || (batch.work !== work && !madeFor(batch, work))) batches.set(work.params[0]!, (batch = prepareBatch(work)));
        batch.work = work;
        if (batch.usable && stepBatch(work, batch)) return;
      }
      const { params, grads, states, hyper, path } = work;
      const fused = profile === "vectorized";
      const foreach = path === "foreach";
      const weightDecay = hyper.weight_decay === 0 ? "none" : hyper.decoupled_weight_decay ? "decoupled" : "l2";
      // The params of a group almost always share one scalar state: the last one's scalars and kernel arguments are reused
      // (written into one kept object, `shared` the state they are of, so that a step allocates nothing).
      const s = paramScalars;
      let computed = false;
      for (let i = 0; i < params.length; i++) {
        const param = params[i]!;
        const grad = grads[i]!;
        const state = states[i]!;
        if (grad.dtype !== param.dtype || grad.data.length !== param.data.length) {
          throw new RangeError(`grad (${grad.dtype} [${grad.shape}]) does not match its param (${param.dtype} [${param.shape}])`);
        }
        const real = DTYPE[param.dtype].real;
        const step = state.step.get(0);
        const muProduct = state.mu_product.get(0);
        const stepDtype = state.step.dtype;
        const muProductDtype = state.mu_product.dtype;
        if (!computed || shared.step !== step || !sameValue(shared.mu_product, muProduct) || shared.step_dtype !== stepDtype || shared.mu_product_dtype !== muProductDtype) {
          shared.step = step;
          shared.step_dtype = stepDtype;
          shared.mu_product = muProduct;
          shared.mu_product_dtype = muProductDtype;
          stepScalarsInto(s, hyper, path, shared);
          scalarsWritten++;
          computed = true;
        }
        state.step.set(0, s.step);
        state.mu_product.set(0, s.muProduct);
        const n = param.data.length;
        if (n === 0) continue;
        const a = argumentsFor(real, s, hyper, path);
        const { smallWeight, bounded: boundedArguments } = args[real];
        const storage = storageOf(real);
        const differentiable = storage !== undefined && hyper.differentiable === true;
        const hardware = storage === "float16" && fp16().use;
        const bounded = !hardware && boundedArguments;
        const kernel = kernelOf(LANE[real], fused, foreach, hyper.maximize, weightDecay, smallWeight, storage, false, differentiable, bounded, hardware, heap);
        // 16-bit add(alpha) differs past PyTorch's vectorized main loop: those elements get a kernel of their own
        const body = storage !== undefined && fused && weightDecay === "l2" ? vectorBodyLength(n, real) : n;
        const tail = body < n ? kernelOf(LANE[real], fused, foreach, hyper.maximize, weightDecay, smallWeight, storage, true, differentiable, bounded, hardware, heap) : undefined;
        const roles = pieceRoles;
        roles[0] = param.data;
        roles[1] = grad.data;
        roles[2] = state.exp_avg.data;
        roles[3] = state.exp_avg_sq.data;
        if (!(pool !== undefined && body >= parallelAbove && !kernel.callsHost) && inPieces(roles)) {
          stepPieces(roles, kernel, tail, body, a);
          continue;
        }
        const p = placed(param.data);
        const g = placedGrad(grad.data, real);
        const m = placed(state.exp_avg.data);
        const v = placed(state.exp_avg_sq.data);
        if (pool !== undefined && body >= parallelAbove && !kernel.callsHost) {
          // parts of a multiple of 32 elements: PyTorch's vector blocks stay whole, and only the last part has a tail
          pool.run(kernel.key, kernel.module, kernel.steps, callEntry, callEntryIndex, p, g, m, v, DTYPE[real].itemSize, body, a.values, a.index, 32);
        } else if (body > 0) {
          runKernel(kernel, p, g, m, v, body, a);
        }
        if (tail !== undefined) {
          const skip = body * 2;
          runKernel(tail, (p + skip) | 0, (g + skip) | 0, (m + skip) | 0, (v + skip) | 0, n - body, a);
        }
        copyBack(param.data);
        copyBack(state.exp_avg.data);
        copyBack(state.exp_avg_sq.data);
      }
      pieceRoles.fill(NO_STORAGE); // (no tensor kept alive by the backend)
    },
  };
}
