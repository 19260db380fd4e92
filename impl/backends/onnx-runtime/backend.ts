/**
 * NAdam on ONNX Runtime: each step is a run of an ONNX graph (graph.ts) on one
 * execution provider. Sessions are built once per graph signature and shared
 * by every backend instance of a provider. exp_avg and exp_avg_sq live in
 * ONNX Runtime tensors between steps: on the CPU provider the graph writes
 * them in place (preallocated outputs over the same memory), on a GPU
 * provider they stay in device buffers and only reach the host for a state
 * dict. `step` and `mu_product` are host scalars, as PyTorch keeps them on the
 * CPU unless `capturable`: the host-side scalars (spec/nadam/scalars.ts) need them.
 */
import { DTYPE, type DType } from "../../../spec/float/dtype.ts";
import { roundToFormat } from "../../../spec/float/format.ts";
import { vectorBodyLength } from "../../../spec/nadam/element-ops.ts";
import { groupStepScalars, scalarStateKey, type StepScalars } from "../../../spec/nadam/scalars.ts";
import type { RoundingProfile } from "../../../spec/nadam/types.ts";
import { Tensor } from "../../../tensor/tensor.ts";
import { chosenProfile, type AsyncBackend, type BackendSupport, type GroupStep, type NadamState } from "../../backend.ts";
import { GROUP_SCALARS, io, stepModel, type GraphDType, type GroupScalar, type StepGraphSignature } from "./graph.ts";
import { encodeModel } from "./onnx.ts";
import type { ExecutionProvider, OrtModule, OrtSession, OrtTensor } from "./ort.ts";

/** A state tensor held by ONNX Runtime (its value is replaced by each step on a GPU provider). */
export class OrtStateTensor {
  constructor(
    public value: OrtTensor,
    /** The tensor's dtype (a complex one is held as its real view, in its real dtype). */
    readonly dtype: DType,
    readonly shape: readonly number[],
  ) {}
}

/** What each provider runs, and how (measured: see support.ts). */
export interface ProviderTraits {
  readonly provider: ExecutionProvider;
  readonly support: BackendSupport;
  /** Whether state tensors stay in device memory (outputs as GPU buffers). */
  readonly deviceResident: boolean;
  /** The most tensors one Concat may join on this provider (see StepGraphSignature.fanIn). */
  readonly fanIn?: number;
}

/** Host↔device copies of param-sized tensors (0-d scalars not counted), for tests that a step leaves state on the device. */
export interface TransferCounts {
  /** host tensors fed to a run on a device-resident provider */
  uploads: number;
  /** device tensors read back to the host */
  downloads: number;
}

export type OnnxRuntimeBackend = AsyncBackend<Tensor | OrtStateTensor> & {
  readonly transfers: TransferCounts;
  /** The number of ONNX Runtime runs so far (one per param on the for-loop path; on foreach one per group, dtype and step state). */
  readonly runs: number;
};

const PRODUCER = { name: "nadam-reference", version: "1" };

/** Sessions per provider and signature, shared by all backend instances (building one takes milliseconds). */
const SESSIONS = new Map<string, Promise<OrtSession>>();

/** A device tensor's copy to the host: Identity, its output on the host. */
function downloadModel(dtype: GraphDType): Uint8Array {
  const v = (name: string) => ({ name, type: dtype, shape: ["n"] });
  return encodeModel({ name: `download_${dtype}`, inputs: [v("x")], outputs: [v("y")], nodes: [{ op: "Identity", inputs: ["x"], outputs: ["y"] }] }, PRODUCER);
}

function session(ort: OrtModule, traits: ProviderTraits, sig: StepGraphSignature | { readonly download: GraphDType }): Promise<OrtSession> {
  const key = `${traits.provider}:${JSON.stringify(sig)}`;
  let s = SESSIONS.get(key);
  if (s === undefined && "download" in sig) {
    s = ort.InferenceSession.create(downloadModel(sig.download), { executionProviders: [traits.provider], logSeverityLevel: 3, preferredOutputLocation: "cpu" });
    SESSIONS.set(key, s);
  }
  if (s === undefined && !("download" in sig)) {
    const outputs: Record<string, "cpu" | "gpu-buffer"> = {};
    for (let i = 0; i < sig.params; i++) {
      outputs[io.paramOut(i)] = "cpu";
      outputs[io.expAvgOut(i)] = traits.deviceResident ? "gpu-buffer" : "cpu";
      outputs[io.expAvgSqOut(i)] = traits.deviceResident ? "gpu-buffer" : "cpu";
    }
    s = ort.InferenceSession.create(stepModel(sig, PRODUCER), {
      executionProviders: [traits.provider],
      // No graph rewrites: each op is one of PyTorch's roundings, in order.
      graphOptimizationLevel: "disabled",
      logSeverityLevel: 3,
      ...(traits.deviceResident ? { preferredOutputLocation: outputs } : {}),
      // A node the GPU provider lacks must fail the session, not run silently on the CPU.
      ...(traits.provider === "cpu" ? {} : { extra: { session: { disable_cpu_ep_fallback: "1" } } }),
    });
    SESSIONS.set(key, s);
  }
  s!.catch(() => SESSIONS.delete(key));
  return s!;
}

/** Releases every cached session (they are shared; a backend's dispose() leaves them for the next instance). */
export async function releaseSessions(): Promise<void> {
  const all = [...SESSIONS.values()];
  SESSIONS.clear();
  await Promise.all(all.map(async (s) => (await s.catch(() => null))?.release()));
}

/** The dtype a tensor's graph computes in: its own, or a complex dtype's real one (PyTorch steps view_as_real). */
function graphDType(dtype: DType): GraphDType {
  const real = DTYPE[dtype].real;
  if (real !== "float32" && real !== "float64" && real !== "float16" && real !== "bfloat16") throw new RangeError(`the ONNX Runtime backend has no ${dtype} graphs`);
  return real;
}

type HostStorage = Float32Array | Float64Array | Uint16Array;

/** Values (exact in the tensor's dtype) into a host tensor's storage. */
function storeValues(t: Tensor, values: Float32Array): void {
  for (let i = 0; i < values.length; i++) t.set(i, values[i]!);
}

export function onnxRuntimeBackend(ort: OrtModule, traits: ProviderTraits, requested: RoundingProfile): OnnxRuntimeBackend {
  const profile = chosenProfile(`onnxruntime-${traits.provider}`, traits.support.profiles, requested);
  const fused = profile === "vectorized";
  const transfers: TransferCounts = { uploads: 0, downloads: 0 };
  let runs = 0;

  const hostArray = (dtype: GraphDType, n: number): HostStorage => (dtype === "float64" ? new Float64Array(n) : dtype === "float16" ? new Uint16Array(n) : new Float32Array(n));
  /** The type a dtype's tensors have in the graphs: bfloat16 values travel as float32 (exactly; onnxruntime's JavaScript API has no bfloat16). */
  const ioType = (dtype: GraphDType) => (dtype === "bfloat16" ? "float32" : dtype);
  /** A host tensor's storage as the graphs take it (a bfloat16 one widened to float32, a copy). */
  const hostData = (t: Tensor): HostStorage => (t.dtype === "bfloat16" ? widened(t) : (t.data as HostStorage));
  /** A bfloat16 host tensor's values as float32 (exact). */
  const widened = (t: Tensor): Float32Array => {
    const values = new Float32Array(t.data.length);
    for (let i = 0; i < values.length; i++) values[i] = t.get(i);
    return values;
  };
  // scalars in the graph's compute type (float32 for float16 tensors)
  const scalar = (dtype: GraphDType, x: number) => (dtype === "float64" ? new ort.Tensor("float64", Float64Array.of(x), []) : new ort.Tensor("float32", Float32Array.of(x), []));
  // every tensor flattened (a complex one to its real view's numbers)
  const flat = (t: Tensor) => new ort.Tensor(ioType(graphDType(t.dtype)), hostData(t), [t.data.length]);

  /** Which elements of the concatenated params PyTorch's vectorized main loop computes (element-ops.ts), per layout. */
  const masks = new Map<string, OrtTensor>();
  const inBodyMask = (lengths: readonly number[], dtype: DType): OrtTensor => {
    const key = `${dtype}:${lengths.join(",")}`;
    let mask = masks.get(key);
    if (mask === undefined) {
      const total = lengths.reduce((a, n) => a + n, 0);
      const values = new Uint8Array(total);
      let offset = 0;
      for (const n of lengths) {
        values.fill(1, offset, offset + vectorBodyLength(n, dtype));
        offset += n;
      }
      if (masks.size > 64) masks.clear();
      masks.set(key, (mask = new ort.Tensor("bool", values, [total])));
    }
    return mask;
  };

  /** Reused host buffers of the joined tensors, per dtype (grown, never shrunk). */
  const joined = new Map<GraphDType, HostStorage[]>();

  /** One joined param, grad and moment each as the run's feeds (the params' order), results written in place. */
  function joinFeeds(dtype: GraphDType, raw: readonly HostStorage[][], feeds: Record<string, OrtTensor>, fetches: Record<string, OrtTensor | null>): void {
    const total = raw.reduce((n, [param]) => n + param!.length, 0);
    let buffers = joined.get(dtype);
    if (buffers === undefined || buffers[0]!.length < total) joined.set(dtype, (buffers = [0, 1, 2, 3].map(() => hostArray(dtype === "bfloat16" ? "float32" : dtype, total))));
    [io.param, io.grad, io.expAvg, io.expAvgSq].forEach((name, k) => {
      const buffer = buffers![k]!.subarray(0, total);
      let offset = 0;
      for (const part of raw) {
        buffer.set(part[k]! as never, offset);
        offset += part[k]!.length;
      }
      feeds[name(0)] = new ort.Tensor(ioType(dtype), buffer, [total]);
    });
    fetches[io.paramOut(0)] = feeds[io.param(0)]!;
    fetches[io.expAvgOut(0)] = feeds[io.expAvg(0)]!;
    fetches[io.expAvgSqOut(0)] = feeds[io.expAvgSq(0)]!;
  }

  /** After a joined run: each param's and moment's piece of the results back where it lives. */
  function splitResults(items: readonly { param: Tensor }[], raw: readonly HostStorage[][], feeds: Record<string, OrtTensor>): { scatter(): void } {
    return {
      scatter() {
        for (const [k, name] of [[0, io.param], [2, io.expAvg], [3, io.expAvgSq]] as const) {
          const result = feeds[name(0)]!.data as HostStorage;
          let offset = 0;
          raw.forEach((part, i) => {
            const piece = result.subarray(offset, offset + part[k]!.length);
            offset += part[k]!.length;
            // a bfloat16 param was widened into a copy: its values go back into the param's own storage
            if (k === 0 && items[i]!.param.dtype === "bfloat16") storeValues(items[i]!.param, piece as Float32Array);
            else part[k]!.set(piece as never);
          });
        }
      },
    };
  }

  /** A moment tensor as an ONNX Runtime one: aliasing host storage on the CPU provider, uploaded on the next run otherwise. */
  const toDevice = (t: Tensor): OrtStateTensor => new OrtStateTensor(flat(t), t.dtype, t.shape);

  async function run(
    items: readonly { param: Tensor; grad: Tensor; state: NadamState<Tensor | OrtStateTensor> }[],
    group: GroupStep<Tensor | OrtStateTensor>,
    scalarsOf: ReturnType<typeof groupStepScalars>,
  ): Promise<void> {
    const { hyper, path } = group;
    const dtype = graphDType(items[0]!.param.dtype);
    const r = dtype === "float64" ? (x: number) => x : Math.fround;
    // What a float16 kernel receives as a 0-d tensor of the dtype (spec/nadam/element-ops.ts), rounded here once.
    const narrow = dtype === "float16" || dtype === "bfloat16";
    const toDtype = (x: number) => roundToFormat(Math.fround(x), DTYPE[dtype].format);
    const foreachScalar = (x: number) => (narrow && path === "foreach" ? toDtype(x) : r(x));
    const [beta1, beta2] = hyper.betas;
    const w = r(1 - beta1);
    const small = Math.abs(w) < 0.5;
    // On the CPU provider a foreach run joins the params on the host (copies into reused buffers, what a
    // Concat would do) and runs the one-param graph: ONNX Runtime's cost per input and output dominates small steps.
    const joinOnHost = !traits.deviceResident && items.length > 1;
    const sig: StepGraphSignature = {
      path,
      dtype,
      profile,
      params: joinOnHost ? 1 : items.length,
      maximize: hyper.maximize,
      weightDecay: hyper.weight_decay === 0 ? "none" : hyper.decoupled_weight_decay ? "decoupled" : "l2",
      lerp: small ? "small-weight" : "large-weight",
      ...(path === "forloop" && hyper.differentiable ? { scaledTerms: true } : {}),
      ...(traits.fanIn !== undefined ? { fanIn: traits.fanIn } : {}),
    };
    const feeds: Record<string, OrtTensor> = {};
    const fetches: Record<string, OrtTensor | null> = {};
    let runScalars: StepScalars | undefined;
    const raw: HostStorage[][] = []; // per param: param, grad, exp_avg, exp_avg_sq storage (joined runs)
    items.forEach(({ param, grad, state }, i) => {
      if (grad.numel !== param.numel || grad.dtype !== param.dtype) {
        throw new RangeError(`grad (${grad.dtype} [${grad.shape}]) does not match its param (${param.dtype} [${param.shape}])`);
      }
      const step = state.step as Tensor;
      const muProduct = state.mu_product as Tensor;
      // (the params of a run share their scalar state: stepGroup groups them so)
      const s = scalarsOf({ step: step.get(0), step_dtype: step.dtype, mu_product: muProduct.get(0), mu_product_dtype: muProduct.dtype });
      if (runScalars !== undefined && s !== runScalars) throw new Error("the params of one ONNX Runtime run must share their step and mu_product");
      runScalars = s;
      step.set(0, s.step);
      muProduct.set(0, s.muProduct);
      for (const key of ["exp_avg", "exp_avg_sq"] as const) {
        const value = state[key];
        if (value instanceof Tensor) state[key] = toDevice(value);
      }
      const expAvg = state.exp_avg as OrtStateTensor;
      const expAvgSq = state.exp_avg_sq as OrtStateTensor;
      if (joinOnHost) {
        // raw storage only: the joined tensors are made once below
        raw.push([hostData(param), hostData(grad), expAvg.value.data as HostStorage, expAvgSq.value.data as HostStorage]);
        return;
      }
      feeds[io.param(i)] = flat(param);
      feeds[io.grad(i)] = flat(grad);
      feeds[io.expAvg(i)] = expAvg.value;
      feeds[io.expAvgSq(i)] = expAvgSq.value;
      if (traits.deviceResident) {
        transfers.uploads += 2 + (expAvg.value.location === "cpu" ? 1 : 0) + (expAvgSq.value.location === "cpu" ? 1 : 0);
      } else {
        // in place, as PyTorch's param.addcdiv_ / exp_avg.lerp_ / exp_avg_sq.addcmul_
        fetches[io.paramOut(i)] = feeds[io.param(i)]!;
        fetches[io.expAvgOut(i)] = expAvg.value;
        fetches[io.expAvgSqOut(i)] = expAvgSq.value;
      }
    });
    const s = runScalars!;
    const groupScalars: Record<GroupScalar, number> = {
      lerp_weight: small ? w : fused ? r(w - 1) : r(1 - w),
      beta2: foreachScalar(beta2), // _foreach_mul_ rounds its scalar to a 16-bit dtype
      one_minus_beta2: r(1 - beta2),
      eps: narrow ? toDtype(hyper.eps) : r(hyper.eps), // add(scalar) rounds it to the dtype
      weight_decay: hyper.decoupled_weight_decay
        ? hyper.lr_is_tensor ? r(s.decayFactor) : foreachScalar(s.decayFactor)
        : narrow ? toDtype(hyper.weight_decay) : r(hyper.weight_decay), // add(alpha=) rounds alpha to the dtype
      bias_correction: r(path === "forloop" ? s.biasCorrection2 : s.biasCorrection2Sqrt),
      grad_step: r(s.gradStepSize),
      exp_avg_step: r(s.expAvgStepSize),
    };
    if (sig.weightDecay === "l2" && fused && (dtype === "float16" || dtype === "bfloat16")) feeds.in_body = inBodyMask(items.map((item) => item.param.data.length), dtype);
    if (joinOnHost) joinFeeds(dtype, raw, feeds, fetches);
    else if (items.length > 1 && items.length <= (traits.fanIn ?? Infinity)) {
      feeds.lengths = new ort.Tensor("int64", BigInt64Array.from(items, (item) => BigInt(item.param.data.length)), [items.length]);
    } else if (items.length > 1) {
      let offset = 0;
      items.forEach(({ param }, i) => {
        feeds[`start${i}`] = new ort.Tensor("int64", BigInt64Array.of(BigInt(offset)), [1]);
        offset += param.data.length;
        feeds[`end${i}`] = new ort.Tensor("int64", BigInt64Array.of(BigInt(offset)), [1]);
      });
    }
    for (const name of GROUP_SCALARS) feeds[name] = scalar(dtype, groupScalars[name]);
    const stepSession = await session(ort, traits, sig);
    runs++;
    if (!traits.deviceResident) {
      const parts = joinOnHost ? splitResults(items, raw, feeds) : null;
      await stepSession.run(feeds, fetches);
      if (parts !== null) parts.scatter();
      // bfloat16 params were stepped in a float32 copy: their values go back into the param's storage
      else if (dtype === "bfloat16") items.forEach(({ param }, i) => storeValues(param, feeds[io.param(i)]!.data as Float32Array));
      return;
    }
    const results = await stepSession.run(feeds);
    items.forEach(({ param, state }, i) => {
      (param.data as HostStorage).set(results[io.paramOut(i)]!.data as HostStorage);
      transfers.downloads++;
      for (const [key, out] of [["exp_avg", io.expAvgOut(i)], ["exp_avg_sq", io.expAvgSqOut(i)]] as const) {
        const held = state[key] as OrtStateTensor;
        if (held.value.location !== "cpu") held.value.dispose();
        held.value = results[out]!;
      }
    });
  }

  return {
    name: `onnxruntime-${traits.provider} (${profile})`,
    device: traits.provider === "cpu" ? "cpu" : "cuda",
    supports: traits.support,
    asynchronous: true,
    get transfers() {
      return transfers;
    },
    get runs() {
      return runs;
    },
    initState(param, scalarDtype) {
      const dtype = graphDType(param.dtype);
      const zeros = () => new OrtStateTensor(new ort.Tensor(ioType(dtype), hostArray(dtype, param.data.length), [param.data.length]), param.dtype, param.shape);
      return { step: Tensor.scalar(0, scalarDtype), mu_product: Tensor.scalar(1, scalarDtype), exp_avg: zeros(), exp_avg_sq: zeros() };
    },
    // Loaded tensors stay host tensors until their first step (0-d step / mu_product for good).
    fromHost: (tensor) => tensor,
    isTensor: (value): value is Tensor | OrtStateTensor => value instanceof Tensor || value instanceof OrtStateTensor,
    async toHost(tensor) {
      if (tensor instanceof Tensor) return tensor;
      if (tensor.value.location === "cpu" && tensor.dtype === "bfloat16") return Tensor.from(tensor.value.data as Float32Array, "bfloat16", tensor.shape);
      if (tensor.value.location === "cpu") {
        // the live storage, as PyTorch's state_dict() hands out CPU state tensors
        return new Tensor(tensor.dtype, tensor.shape, tensor.value.data as HostStorage);
      }
      // (onnxruntime-node 1.30 aborts the process on getData() of a WebGPU tensor: an Identity run with a
      // host output is its download instead)
      transfers.downloads++;
      const copy = await session(ort, traits, { download: graphDType(tensor.dtype) });
      const { y } = await copy.run({ x: tensor.value });
      return new Tensor(tensor.dtype, tensor.shape, (y!.data as HostStorage).slice());
    },
    async stepGroup(group) {
      const items = group.params.map((param, i) => ({ param, grad: group.grads[i]!, state: group.states[i]! }));
      const scalarsOf = groupStepScalars(group.hyper, group.path);
      if (group.path === "forloop" || new Set(group.params).size !== group.params.length) {
        // one param at a time (a repeated param is updated twice, in order)
        for (const item of items) await run([item], group, scalarsOf);
        return;
      }
      // foreach: one run per dtype over the whole group (per step state too, where params' step counts differ)
      const runsOf = new Map<string, typeof items>();
      for (const item of items) {
        const { step, mu_product } = item.state as { step: Tensor; mu_product: Tensor };
        const key = `${item.param.dtype}|${scalarStateKey({ step: step.get(0), step_dtype: step.dtype, mu_product: mu_product.get(0), mu_product_dtype: mu_product.dtype })}`;
        runsOf.set(key, [...(runsOf.get(key) ?? []), item]);
      }
      for (const members of runsOf.values()) await run(members, group, scalarsOf);
    },
    async dispose() {
      // Sessions are shared (releaseSessions frees them); nothing else is held beyond the state tensors the optimizer owns.
    },
  };
}

/** How many sessions are cached (one per provider and graph signature). */
export function sessionCount(): number {
  return SESSIONS.size;
}
