/**
 * A NAdam written the way a port with a known mistake writes it: every step
 * in float64, rounded to the dtype only when stored. It is not an oracle: the
 * diagnosis only asks whether a port is much closer to one of these mistaken
 * formulas than to the right one, and the mistakes are far larger than rounding.
 */
import { DTYPE } from "../spec/float/dtype.ts";
import { roundToFormat } from "../spec/float/format.ts";
import type { NadamParamState, StepResult } from "../spec/nadam/step.ts";
import { initialState } from "../spec/nadam/step.ts";
import type { Stepper } from "../golden/simulate.ts";

export interface SloppyKnobs {
  /** bias_correction2 computed with step + offset */
  readonly biasCorrectionOffset?: number;
  /** mu, mu_next and bias corrections computed with the step count before its increment */
  readonly stepFromZero?: boolean;
  /** sqrt(v / bc2 + eps) instead of sqrt(v / bc2) + eps */
  readonly epsInsideSqrt?: boolean;
  /** Keras / optax Nadam: bias-corrected m with beta1^t, no momentum schedule */
  readonly keras?: boolean;
}

export function sloppyStepper(knobs: SloppyKnobs): Stepper {
  return (params, states, h, config) => {
    const result: StepResult = { data: [], state: [] };
    params.forEach((p, i) => {
      const round = (x: number) => roundToFormat(x, DTYPE[p.dtype].format);
      if (p.grad === null) {
        result.data.push([...p.data]);
        result.state.push(states[i]);
        return;
      }
      const s: NadamParamState = states[i] ?? initialState(p.dtype, p.data.length, config.scalarStateDtype);
      const t = s.step + 1;
      const tt = knobs.stepFromZero ? t - 1 : t;
      const [b1, b2] = h.betas;
      let data = [...p.data];
      let grad = p.grad.map((g) => (h.maximize ? -g : g));
      if (h.weight_decay !== 0) {
        if (h.decoupled_weight_decay) data = data.map((x) => x * (1 - h.lr * h.weight_decay));
        else grad = grad.map((g, k) => g + h.weight_decay * data[k]!);
      }
      const mu = b1 * (1 - 0.5 * 0.96 ** (tt * h.momentum_decay));
      const muNext = b1 * (1 - 0.5 * 0.96 ** ((tt + 1) * h.momentum_decay));
      const muProduct = s.mu_product * mu;
      const m = s.exp_avg.map((x, k) => b1 * x + (1 - b1) * grad[k]!);
      const v = s.exp_avg_sq.map((x, k) => b2 * x + (1 - b2) * grad[k]! ** 2);
      const bc2 = 1 - b2 ** (tt + (knobs.biasCorrectionOffset ?? 0));
      data = data.map((x, k) => {
        const den = knobs.epsInsideSqrt ? Math.sqrt(v[k]! / bc2 + h.eps) : Math.sqrt(v[k]! / bc2) + h.eps;
        if (knobs.keras) {
          const mHat = (b1 * m[k]!) / (1 - b1 ** (tt + 1)) + ((1 - b1) * grad[k]!) / (1 - b1 ** tt);
          return x - (h.lr * mHat) / den;
        }
        return x - (h.lr * (1 - mu) * grad[k]!) / ((1 - muProduct) * den) - (h.lr * muNext * m[k]!) / ((1 - muProduct * muNext) * den);
      });
      result.data.push(data.map(round));
      result.state.push({ ...s, step: t, mu_product: roundToFormat(muProduct, DTYPE[s.mu_product_dtype].format), exp_avg: m.map(round), exp_avg_sq: v.map(round) });
    });
    return result;
  };
}
