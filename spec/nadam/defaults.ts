/** torch.optim.NAdam's constructor defaults (torch 2.6 signature). */
import type { NadamHyperParameters } from "./step.ts";

export const NADAM_DEFAULTS: NadamHyperParameters = {
  lr: 2e-3,
  lr_is_tensor: false,
  betas: [0.9, 0.999],
  eps: 1e-8,
  weight_decay: 0,
  momentum_decay: 4e-3,
  decoupled_weight_decay: false,
  maximize: false,
};

/** Fill the options a param group leaves out with the defaults, as add_param_group does. */
export function withDefaults(options: Partial<NadamHyperParameters>): NadamHyperParameters {
  return { ...NADAM_DEFAULTS, ...options };
}
