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
 * (a param) copied back after, through a staging block kept per storage, so a
 * step allocates no typed array once every param has been seen.
 */
import { DTYPE, DTYPES, REAL_DTYPES, type DType, type RealDType } from "../../../spec/float/dtype.ts";
import { vectorBodyLength } from "../../../spec/nadam/element-ops.ts";
import { groupStepScalars, type StepScalars } from "../../../spec/nadam/scalars.ts";
import type { NadamHyperParameters } from "../../../spec/nadam/step.ts";
import { CODE_PATHS, ROUNDING_PROFILES, type CodePath, type RoundingProfile } from "../../../spec/nadam/types.ts";
import { bfloat16ToFloat, floatToBfloat16, floatToHalf, halfToFloat } from "../../../tensor/half.ts";
import { Tensor, type Storage } from "../../../tensor/tensor.ts";
import type { BackendSupport, GroupStep, SyncBackend } from "../../backend.ts";
import { wasmHeap, type WasmHeap } from "./heap.ts";
import { KERNEL_SCALARS, stepModuleBytes, type KernelScalar, type KernelVariant, type Lane, type StepKernel } from "./kernels.ts";
import { instantiate, limitsOf, probeRelaxedMadd, type RelaxedMaddProbe } from "./probe.ts";
import { WorkerPool } from "./threads.ts";

export interface WasmBackendOptions {
  /** PyTorch's CPU rounding profile to reproduce. Default "vectorized" (AVX2/AVX512 machines). */
  readonly profile?: RoundingProfile;
  /** Worker threads that step parts of a large tensor beside this one (Node only). Default 0: this thread alone. */
  readonly threads?: number;
  /** The number of elements from which a tensor is split over the threads. Default 2^20. */
  readonly parallelAbove?: number;
}

/** Every dtype: float32 / float64 (and complex ones' real views) in their own lanes, float16 / bfloat16 in float32 lanes. */
export const WASM_DTYPES: readonly DType[] = DTYPES;

export const WASM_SUPPORT: BackendSupport = {
  dtypes: WASM_DTYPES,
  paths: CODE_PATHS,
  profiles: ROUNDING_PROFILES,
  features: ["tensor-lr", "differentiable"],
};

type StorageConstructor = Float64ArrayConstructor | Float32ArrayConstructor | Uint16ArrayConstructor;

/** The lanes a real dtype computes in, and its storage format when that differs (16-bit). */
const LANE: Readonly<Record<RealDType, Lane>> = { float64: "float64", float32: "float32", float16: "float32", bfloat16: "float32" };
function storageOf(real: RealDType): "float16" | "bfloat16" | undefined {
  return real === "float16" || real === "bfloat16" ? real : undefined;
}

const unrounded = (x: number): number => x;
const W = KERNEL_SCALARS.indexOf("w");

/**
 * The step kernel's scalar arguments (KERNEL_SCALARS' order), as the typed-array
 * kernel receives them: Python floats converted to the opmath (= lane) type.
 */
function kernelArguments(h: NadamHyperParameters, s: StepScalars, real: RealDType, path: CodePath, into: Float64Array): void {
  const r = real === "float64" ? unrounded : Math.fround;
  const storage = storageOf(real);
  // 16-bit quirks (spec/nadam/element-ops.ts): add's alpha and scalar, and _foreach_mul_'s scalar, become 0-d tensors of the dtype
  const toDtype = (x: number): number => (storage === "float16" ? halfToFloat(floatToHalf(Math.fround(x))) : storage === "bfloat16" ? bfloat16ToFloat(floatToBfloat16(Math.fround(x))) : r(x));
  const foreach = path === "foreach";
  const [beta1, beta2] = h.betas;
  const w = r(1 - beta1); // lerp's weight
  const values: Readonly<Record<KernelScalar, number>> = {
    decay: foreach && !h.lr_is_tensor ? toDtype(s.decayFactor) : r(s.decayFactor),
    alpha: toDtype(h.weight_decay),
    w,
    wMinusOne: r(w - 1),
    oneMinusW: r(1 - w),
    beta2: foreach ? toDtype(beta2) : r(beta2),
    oneMinusBeta2: r(1 - beta2),
    bc2: r(s.biasCorrection2),
    bcSqrt: r(s.biasCorrection2Sqrt),
    eps: toDtype(h.eps),
    step1: r(s.gradStepSize),
    step2: r(s.expAvgStepSize),
  };
  KERNEL_SCALARS.forEach((name, k) => (into[k] = values[name]));
}


/** Per lane type: whether relaxed_madd is fused here (probed once per process). */
const relaxedMadd = new Map<Lane, RelaxedMaddProbe>();
function relaxedMaddOf(lane: Lane, heap: WasmHeap): RelaxedMaddProbe {
  let probe = relaxedMadd.get(lane);
  if (probe === undefined) relaxedMadd.set(lane, (probe = probeRelaxedMadd(lane, heap)));
  return probe;
}

/** A compiled step kernel: its module (what a worker thread instantiates) and whether it calls the host's exact fma. */
interface CompiledKernel {
  readonly key: number;
  readonly module: WebAssembly.Module;
  readonly step: StepKernel;
  /** float64 lanes with emulated fma fall back to the host for extreme exponents: such a kernel runs on this thread only. */
  readonly callsHost: boolean;
}

/** Compiled kernels by variant (kernelKey), once per process. */
const kernels = new Map<number, CompiledKernel>();

function kernelKey(v: Omit<KernelVariant, "fma">): number {
  const decay = v.weightDecay === "none" ? 0 : v.weightDecay === "decoupled" ? 1 : 2;
  const storage = v.storage === undefined ? 0 : v.storage === "float16" ? 1 : 2;
  return (v.lane === "float64" ? 1 : 0) | (v.fused ? 2 : 0) | (v.foreach ? 4 : 0) | (v.maximize ? 8 : 0) | (decay << 4) | (v.smallWeight ? 64 : 0) |
    (storage << 7) | (v.scalarLoop === true ? 512 : 0) | (v.differentiable === true ? 1024 : 0);
}

function kernelFor(variant: Omit<KernelVariant, "fma">, heap: WasmHeap): CompiledKernel {
  const key = kernelKey(variant);
  let kernel = kernels.get(key);
  if (kernel === undefined) {
    const fma = variant.fused && relaxedMaddOf(variant.lane, heap).use ? "relaxed" : "emulated";
    const module = new WebAssembly.Module(stepModuleBytes({ ...variant, fma }, limitsOf(heap)));
    kernel = { key, module, step: instantiate(module, heap).step as StepKernel, callsHost: variant.lane === "float64" && variant.fused && fma === "emulated" };
    kernels.set(key, kernel);
  }
  return kernel;
}

export interface WasmBackend extends SyncBackend<Tensor> {
  /** A host Tensor whose storage lives in the backend's memory (stepped with no copy), from values as Tensor.from takes them. */
  tensor(values: ArrayLike<number>, dtype?: DType, shape?: readonly number[]): Tensor;
  /** A zero host Tensor whose storage lives in the backend's memory. */
  zeros(shape: readonly number[], dtype?: DType): Tensor;
  /** Whether exact fma uses relaxed_madd on each lane type here, and why. */
  readonly relaxedMadd: Readonly<Record<Lane, RelaxedMaddProbe>>;
  /** The worker threads it started (0 without `threads`, or where there are none). */
  readonly threads: number;
  /** How many parts of tensors its worker threads have stepped. */
  readonly workerParts: number;
}

export function wasmBackend(options: WasmBackendOptions = {}): WasmBackend {
  const profile = options.profile ?? "vectorized";
  const heap = wasmHeap();
  const pool = WorkerPool.create(options.threads ?? 0, heap.memory);
  const parallelAbove = options.parallelAbove ?? 2 ** 20;
  /** Staging blocks of host storages (params, or state tensors a user put in place): one per storage, freed with it. */
  const staging = new WeakMap<Storage, Storage>();
  /** One staging block per real dtype for grads, which are often new tensors every step. */
  const gradStaging: Partial<Record<RealDType, Storage>> = {};
  /** The kernel arguments per real dtype, refilled when the step's scalars or the hyper-parameters change (no allocation per step). */
  const args = Object.fromEntries(REAL_DTYPES.map((real) => [real, { values: new Float64Array(KERNEL_SCALARS.length), of: undefined as StepScalars | undefined, hyper: undefined as NadamHyperParameters | undefined, path: undefined as CodePath | undefined }])) as Record<RealDType, { values: Float64Array; of: StepScalars | undefined; hyper: NadamHyperParameters | undefined; path: CodePath | undefined }>;

  const zeros = (shape: readonly number[], dtype: DType = "float32"): Tensor => {
    const length = shape.reduce((a, b) => a * b, 1) * (DTYPE[dtype].complex ? 2 : 1);
    return new Tensor(dtype, shape, heap.view(DTYPE[dtype].storage, length).fill(0));
  };

  /** The byte offset of a storage's numbers in the memory: its own, or its staging block's after copying them in. */
  const placed = (data: Storage): number => {
    if (heap.owns(data)) return data.byteOffset;
    let block = staging.get(data);
    if (block === undefined) staging.set(data, (block = heap.view(data.constructor as StorageConstructor, data.length)));
    block.set(data as never);
    return block.byteOffset;
  };
  const copyBack = (data: Storage): void => {
    if (!heap.owns(data)) data.set(staging.get(data)! as never);
  };
  const placedGrad = (data: Storage, real: RealDType): number => {
    if (heap.owns(data)) return data.byteOffset;
    let block = gradStaging[real];
    if (block === undefined || block.length < data.length) gradStaging[real] = block = heap.view(data.constructor as StorageConstructor, Math.max(data.length, 2 * (block?.length ?? 0)));
    block.set(data as never);
    return block.byteOffset;
  };

  return {
    name: `wasm-simd (${profile})`,
    device: "cpu",
    supports: WASM_SUPPORT,
    asynchronous: false,
    relaxedMadd: { float32: relaxedMaddOf("float32", heap), float64: relaxedMaddOf("float64", heap) },
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
    stepGroup({ params, grads, states, hyper, path }: GroupStep<Tensor>): void {
      const scalarsOf = groupStepScalars(hyper, path);
      const fused = profile === "vectorized";
      const foreach = path === "foreach";
      const weightDecay = hyper.weight_decay === 0 ? "none" : hyper.decoupled_weight_decay ? "decoupled" : "l2";
      const groupKernels: Partial<Record<RealDType, CompiledKernel>> = {};
      const variants: Partial<Record<RealDType, Omit<KernelVariant, "fma">>> = {};
      // The params of a group almost always share one scalar state: the last one's scalars and kernel arguments are reused.
      let last: { step: number; stepDtype: DType; muProduct: number; muProductDtype: DType; scalars: StepScalars } | undefined;
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
        if (last === undefined || last.step !== step || !Object.is(last.muProduct, muProduct) || last.stepDtype !== stepDtype || last.muProductDtype !== muProductDtype) {
          last = { step, stepDtype, muProduct, muProductDtype, scalars: scalarsOf({ step, step_dtype: stepDtype, mu_product: muProduct, mu_product_dtype: muProductDtype }) };
        }
        const s = last.scalars;
        state.step.set(0, s.step);
        state.mu_product.set(0, s.muProduct);
        const n = param.data.length;
        if (n === 0) continue;
        const cached = args[real];
        if (cached.of !== s || cached.hyper !== hyper || cached.path !== path) {
          kernelArguments(hyper, s, real, path, cached.values);
          cached.of = s;
          cached.hyper = hyper;
          cached.path = path;
        }
        const a = cached.values;
        const storage = storageOf(real);
        // The variant depends only on the group and the dtype: looked up once per dtype in a group.
        let kernel = groupKernels[real];
        if (kernel === undefined) {
          variants[real] = { lane: LANE[real], fused, foreach, maximize: hyper.maximize, weightDecay, smallWeight: Math.abs(a[W]!) < 0.5, storage, differentiable: storage !== undefined && hyper.differentiable === true };
          groupKernels[real] = kernel = kernelFor(variants[real]!, heap);
        }
        const p = placed(param.data);
        const g = placedGrad(grad.data, real);
        const m = placed(state.exp_avg.data);
        const v = placed(state.exp_avg_sq.data);
        // 16-bit add(alpha) differs past PyTorch's vectorized main loop: those elements get a kernel of their own
        const body = storage !== undefined && fused && weightDecay === "l2" ? vectorBodyLength(n, real) : n;
        if (pool !== undefined && body >= parallelAbove && !kernel.callsHost) {
          // parts of a multiple of 32 elements: PyTorch's vector blocks stay whole, and only the last part has a tail
          pool.run(kernel.key, kernel.module, kernel.step, [p, g, m, v], DTYPE[real].itemSize, body, a, 32);
        } else if (body > 0) {
          kernel.step(p, g, m, v, body, a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, a[8]!, a[9]!, a[10]!, a[11]!);
        }
        if (body < n) {
          const skip = body * 2;
          kernelFor({ ...variants[real]!, scalarLoop: true }, heap).step(p + skip, g + skip, m + skip, v + skip, n - body, a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, a[8]!, a[9]!, a[10]!, a[11]!);
        }
        copyBack(param.data);
        copyBack(state.exp_avg.data);
        copyBack(state.exp_avg_sq.data);
      }
    },
  };
}
