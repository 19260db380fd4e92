/**
 * The typed-array backend: NAdam on host Tensors (Float64Array / Float32Array /
 * Uint16Array storage), bit-exact to PyTorch's kernels (CPU or CUDA) under a chosen
 * rounding profile. Per param: the host-side scalars from the spec
 * (stepScalars), then one pass over the elements (kernels.ts).
 */
import { DTYPES } from "../../../spec/float/dtype.ts";
import { vectorBodyLength } from "../../../spec/nadam/element-ops.ts";
import { groupStepScalars } from "../../../spec/nadam/scalars.ts";
import { CODE_PATHS, ROUNDING_PROFILES, type RoundingProfile } from "../../../spec/nadam/types.ts";
import { Tensor } from "../../../tensor/tensor.ts";
import { chosenProfile, type BackendSupport, type GroupStep, type SyncBackend } from "../../backend.ts";
import { updateElements } from "./kernels.ts";

export interface TypedArrayBackendOptions {
  /** PyTorch's rounding profile to reproduce: the CPU's two, or cuda. Default "vectorized" (AVX2/AVX512 machines). */
  readonly profile?: RoundingProfile;
}

export const TYPED_ARRAY_SUPPORT: BackendSupport = {
  dtypes: DTYPES,
  paths: CODE_PATHS,
  profiles: ROUNDING_PROFILES,
  features: ["tensor-lr", "differentiable"],
};

/** Opmath working copies of a tensor's values: the storage itself for float32/float64 and the complex dtypes' real views. */
function workingValues(t: Tensor): Float64Array | Float32Array {
  if (t.data instanceof Float64Array || t.data instanceof Float32Array) return t.data;
  const values = new Float32Array(t.data.length);
  for (let i = 0; i < values.length; i++) values[i] = t.get(i);
  return values;
}

function storeBack(t: Tensor, values: Float64Array | Float32Array): void {
  if (values === t.data) return;
  for (let i = 0; i < values.length; i++) t.set(i, values[i]!);
}

export function typedArrayBackend(options: TypedArrayBackendOptions = {}): SyncBackend<Tensor> {
  const profile = chosenProfile("typed-array", TYPED_ARRAY_SUPPORT.profiles, options.profile);
  return {
    name: `typed-array (${profile})`,
    device: "cpu",
    supports: TYPED_ARRAY_SUPPORT,
    asynchronous: false,
    initState(param, scalarDtype) {
      return { step: Tensor.scalar(0, scalarDtype), mu_product: Tensor.scalar(1, scalarDtype), exp_avg: Tensor.zeros(param.shape, param.dtype), exp_avg_sq: Tensor.zeros(param.shape, param.dtype) };
    },
    // State lives on the host: loaded tensors are used as they are (aliased, as in PyTorch) and handed back live.
    fromHost: (tensor) => tensor,
    toHost: (tensor) => tensor,
    isTensor: (value): value is Tensor => value instanceof Tensor,
    stepGroup({ params, grads, states, hyper, path }: GroupStep<Tensor>): void {
      const scalarsOf = groupStepScalars(hyper, path);
      params.forEach((param, i) => {
        const grad = grads[i]!;
        const state = states[i]!;
        if (grad.numel !== param.numel || grad.dtype !== param.dtype) {
          throw new RangeError(`grad (${grad.dtype} [${grad.shape}]) does not match its param (${param.dtype} [${param.shape}])`);
        }
        const scalars = scalarsOf({ step: state.step.get(0), step_dtype: state.step.dtype, mu_product: state.mu_product.get(0), mu_product_dtype: state.mu_product.dtype });
        state.step.set(0, scalars.step);
        state.mu_product.set(0, scalars.muProduct);
        const p = workingValues(param);
        const m = workingValues(state.exp_avg);
        const v = workingValues(state.exp_avg_sq);
        const g = workingValues(grad);
        updateElements(p, g, m, v, hyper, scalars, { dtype: param.dtype, profile, path, vectorBody: vectorBodyLength(p.length, param.dtype) });
        storeBack(param, p);
        storeBack(state.exp_avg, m);
        storeBack(state.exp_avg_sq, v);
      });
    },
  };
}
