/**
 * What Optimizer.load_state_dict does to a param's NAdam state (torch 1.13 – 2.6,
 * `_process_value_according_to_param_policy`): every floating-point tensor but
 * `step` is cast to the param's dtype — `mu_product` included — while `step`
 * keeps its dtype (unless the group is capturable or fused, never the case on
 * CPU). So a float64 param's mu_product becomes float64 after a reload and a
 * resumed run is no longer bit-identical to an uninterrupted one; a float16
 * param's mu_product becomes float16. A complex param is not floating point to
 * PyTorch: nothing of its state is cast.
 */
import { DTYPE, type DType } from "../float/dtype.ts";
import { roundToFormat } from "../float/format.ts";
import type { NadamParamState } from "./step.ts";

export function castStateOnLoad(state: NadamParamState, paramDtype: DType): NadamParamState {
  // Only floating-point params cast (`param.is_floating_point()`): a complex param's mu_product keeps its dtype.
  if (DTYPE[paramDtype].complex) return state;
  return {
    ...state,
    mu_product: roundToFormat(state.mu_product, DTYPE[paramDtype].format),
    mu_product_dtype: paramDtype,
  };
}
