/**
 * The TensorFlow.js backend on the seam: NAdam's moments (`exp_avg`,
 * `exp_avg_sq`) live as tfjs tensors on the chosen tfjs backend (cpu, wasm,
 * webgpu, tensorflow) and are never read back during a step; `step` and
 * `mu_product` stay host scalars, because the step's float64 scalars
 * (spec/nadam/scalars.ts: glibc's pow, Python's float arithmetic) are computed
 * from them on the host and tfjs has no float64 to hold them in. The seam's
 * params are host Tensors, so each step uploads the params and grads and reads
 * the new params back; a tfjs user whose params are tf.Variables uses the
 * native front (optimizer.ts), which reads nothing back.
 */
import type * as TF from "@tensorflow/tfjs-core";
import { stepScalars, type StepScalars } from "../../../spec/nadam/scalars.ts";
import type { RoundingProfile } from "../../../spec/nadam/types.ts";
import { Tensor } from "../../../tensor/tensor.ts";
import type { AsyncBackend, BackendSupport, GroupStep, NadamState } from "../../backend.ts";
import { nadamForeach, type Moments, type Tfjs } from "./kernel.ts";
import { useBackend, type TfjsBackendName } from "./runtime.ts";
import { updateFor, type KernelChoice } from "./update.ts";

/**
 * A state value of this backend: a tfjs tensor (exp_avg, exp_avg_sq), or a
 * host tensor not yet on the device (a loaded state, uploaded on its first
 * step) or kept on the host for good (step, mu_product).
 */
export class TfjsStateTensor {
  constructor(
    public device: TF.Tensor | null,
    public host: Tensor | null,
  ) {}
}

export interface TfjsBackendOptions {
  readonly tf: Tfjs;
  readonly backendName: TfjsBackendName;
  readonly profile: RoundingProfile;
  readonly supports: BackendSupport;
  readonly device: "cpu" | "cuda";
  /** The update's implementation (update.ts); prepared by the caller. */
  readonly kernel: KernelChoice;
}

export function tfjsBackend({ tf, backendName, profile, supports, device, kernel }: TfjsBackendOptions): AsyncBackend<TfjsStateTensor> {
  const owned = new Set<TfjsStateTensor>();
  const track = (t: TfjsStateTensor): TfjsStateTensor => (owned.add(t), t);

  /** The moment on the device, uploading a new or loaded one on first use (kept: the tidy around the step must not take it). */
  function onDevice(t: TfjsStateTensor): TF.Tensor {
    if (t.device === null) {
      const host = t.host!;
      t.device = tf.keep(tf.tensor(Float32Array.from(host.data), [...host.shape], "float32"));
      t.host = null;
    }
    return t.device;
  }

  function scalarState(state: NadamState<TfjsStateTensor>) {
    const step = state.step.host!;
    const muProduct = state.mu_product.host!;
    return { step: step.get(0), step_dtype: step.dtype, mu_product: muProduct.get(0), mu_product_dtype: muProduct.dtype };
  }

  return {
    name: `tfjs-${backendName} (${profile})`,
    device,
    supports,
    asynchronous: true,
    initState(param, scalarDtype) {
      return {
        step: track(new TfjsStateTensor(null, Tensor.scalar(0, scalarDtype))),
        mu_product: track(new TfjsStateTensor(null, Tensor.scalar(1, scalarDtype))),
        // made on the device by the step (initState cannot switch tfjs to this backend: that is asynchronous)
        exp_avg: track(new TfjsStateTensor(null, Tensor.zeros(param.shape, "float32"))),
        exp_avg_sq: track(new TfjsStateTensor(null, Tensor.zeros(param.shape, "float32"))),
      };
    },
    fromHost: (tensor) => track(new TfjsStateTensor(null, tensor)),
    isTensor: (value): value is TfjsStateTensor => value instanceof TfjsStateTensor,
    async toHost(t) {
      if (t.host !== null) return t.host;
      return new Tensor("float32", t.device!.shape, Float32Array.from((await t.device!.data()) as Float32Array));
    },
    async stepGroup({ params, grads, states, hyper, path }: GroupStep<TfjsStateTensor>) {
      await useBackend(tf, backendName);
      const { update, flatten } = updateFor(tf, backendName, profile, kernel);
      const scalars: StepScalars[] = [];
      const results = tf.tidy(() => {
        const upload = (t: Tensor) => tf.tensor(t.data as Float32Array, [...t.shape], "float32");
        if (path === "forloop") {
          // One param after another, each from the state the previous ones left (a param may repeat).
          return params.map((param, i) => {
            const state = states[i]!;
            const s = stepScalars(hyper, path, scalarState(state));
            scalars.push(s);
            const out = update({ param: upload(param), expAvg: onDevice(state.exp_avg), expAvgSq: onDevice(state.exp_avg_sq) }, upload(grads[i]!), hyper, s, path);
            commit(state, s, out);
            return out.param;
          });
        }
        const steps = params.map((param, i) => {
          const state = states[i]!;
          const s = stepScalars(hyper, path, scalarState(state));
          scalars.push(s);
          return { param: upload(param), grad: upload(grads[i]!), expAvg: onDevice(state.exp_avg), expAvgSq: onDevice(state.exp_avg_sq), scalars: s };
        });
        const outs = nadamForeach(tf, steps, hyper, update, flatten);
        outs.forEach((out, i) => commit(states[i]!, scalars[i]!, out));
        return outs.map((out) => out.param);
      });
      // The seam's params are host tensors: the one read-back of a step.
      const values = await Promise.all(results.map((t) => t.data()));
      params.forEach((param, i) => (param.data as Float32Array).set(values[i] as Float32Array));
      tf.dispose(results);
    },
    dispose() {
      for (const t of owned) t.device?.dispose();
      owned.clear();
    },
  };

  /** The new moments replace the old ones (kept out of the tidy, the old ones disposed); step and mu_product advance on the host. */
  function commit(state: NadamState<TfjsStateTensor>, s: StepScalars, out: Moments): void {
    state.step.host!.set(0, s.step);
    state.mu_product.host!.set(0, s.muProduct);
    for (const [t, next] of [
      [state.exp_avg, out.expAvg],
      [state.exp_avg_sq, out.expAvgSq],
    ] as const) {
      const old = t.device;
      t.device = tf.keep(next);
      if (old !== null && old !== next) old.dispose();
    }
  }
}
