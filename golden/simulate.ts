/**
 * Runs a golden case's schedule (groups, grads, events) through a stepper —
 * the spec's nadamStep, or a deliberately wrong variant of it — and returns
 * the trajectory: every param and state after every step.
 */
import { decodeHex } from "../spec/float/codec.ts";
import { withDefaults } from "../spec/nadam/defaults.ts";
import { castStateOnLoad } from "../spec/nadam/load-state.ts";
import { nadamStep, type NadamHyperParameters, type NadamParamState, type SpecParam, type StepConfig, type StepResult } from "../spec/nadam/step.ts";
import type { Formula } from "../spec/nadam/types.ts";
import type { DType } from "../spec/float/dtype.ts";
import type { GoldenCase, GoldenOptions } from "./case.ts";

export type Stepper = (params: readonly SpecParam[], state: readonly (NadamParamState | undefined)[], hyper: NadamHyperParameters, config: StepConfig) => StepResult;

export interface TrajectoryStep {
  /** Every param that exists at this step, in id order. */
  readonly params: readonly (readonly number[])[];
  readonly state: readonly (NadamParamState | null)[];
}

/** The torch formula a golden file's torch version follows. */
export function formulaOf(version: string): Formula {
  return version.startsWith("1.") ? "torch-1.13" : "torch-2";
}

export function hyperFrom(options: GoldenOptions): NadamHyperParameters {
  const { lr_is_tensor, betas, ...rest } = options;
  return withDefaults({ ...rest, ...(betas ? { betas: [betas[0], betas[1]] } : {}), lr_is_tensor: lr_is_tensor ?? false });
}

/** The StepConfig a golden case was recorded under. */
export function configOf(golden: GoldenCase): StepConfig {
  return {
    path: golden.foreach ? "foreach" : "forloop",
    profile: golden.torch.profile,
    formula: formulaOf(golden.torch.version),
    scalarStateDtype: golden.default_dtype,
  };
}

/** Replay the case's schedule with `stepper` (default: the spec) under `config` (default: the case's own). */
export function simulate(golden: GoldenCase, stepper: Stepper = nadamStep, config: StepConfig = configOf(golden), hyperOf: (options: GoldenOptions) => NadamHyperParameters = hyperFrom): TrajectoryStep[] {
  const dtypes: DType[] = golden.params.map((p) => p.init.dtype);
  const data = golden.params.map((p) => decodeHex(p.init.dtype, p.init.hex));
  const state: (NadamParamState | undefined)[] = golden.params.map(() => undefined);
  const groups = golden.param_groups.map((g) => ({ hyper: hyperOf(g.options), ids: [...g.params] }));
  return golden.steps.map((entry) => {
    for (const event of entry.events ?? []) {
      if (event.kind === "set") {
        const group = groups[event.group]!;
        group.hyper = { ...group.hyper, [event.key]: event.value };
      } else if (event.kind === "add_param_group") {
        groups.push({ hyper: hyperOf(event.options), ids: [...event.params] });
      } else {
        state.forEach((s, id) => {
          if (s !== undefined) state[id] = castStateOnLoad(s, dtypes[id]!);
        });
      }
    }
    const grads = entry.grads.map((hex, id) => (hex === null ? null : decodeHex(dtypes[id]!, hex)));
    for (const group of groups) {
      const params: SpecParam[] = group.ids.map((id) => ({ dtype: dtypes[id]!, data: data[id]!, grad: grads[id] ?? null }));
      const result = stepper(params, group.ids.map((id) => state[id]), group.hyper, config);
      group.ids.forEach((id, k) => {
        data[id] = result.data[k]!;
        state[id] = result.state[k];
      });
    }
    const existing = entry.params.length;
    return { params: data.slice(0, existing), state: state.slice(0, existing).map((s) => s ?? null) };
  });
}

/** The trajectory torch recorded. */
export function recorded(golden: GoldenCase): TrajectoryStep[] {
  const dtypes = golden.params.map((p) => p.init.dtype);
  return golden.steps.map((entry) => ({
    params: entry.params.map((hex, id) => decodeHex(dtypes[id]!, hex)),
    state: entry.state.map((s, id) =>
      s === null
        ? null
        : {
            step: decodeHex(s.step[0], s.step[1])[0]!,
            step_dtype: s.step[0],
            mu_product: decodeHex(s.mu_product[0], s.mu_product[1])[0]!,
            mu_product_dtype: s.mu_product[0],
            exp_avg: decodeHex(dtypes[id]!, s.exp_avg),
            exp_avg_sq: decodeHex(dtypes[id]!, s.exp_avg_sq),
          },
    ),
  }));
}
