/**
 * Replays a golden case through the spec and compares, after every step, each
 * param and each state entry with what PyTorch produced, bit for bit.
 *
 * Equality is SameValue on the dtype's values: -0 differs from +0, and NaN
 * equals NaN whatever its sign or payload (JavaScript numbers do not carry
 * NaN payloads, so the spec cannot model them; the count of NaN comparisons is
 * reported so that nobody mistakes them for bit comparisons).
 */
import { decodeHex } from "../spec/float/codec.ts";
import { withDefaults } from "../spec/nadam/defaults.ts";
import { castStateOnLoad } from "../spec/nadam/load-state.ts";
import { nadamStep, type NadamHyperParameters, type NadamParamState, type SpecParam } from "../spec/nadam/step.ts";
import type { CodePath, DType, Formula } from "../spec/nadam/types.ts";
import type { GoldenCase, GoldenOptions } from "./case.ts";
import { sameValue } from "./compare.ts";

export interface Mismatch {
  readonly step: number; // 1-based
  readonly what: string; // e.g. "param 0 (weight)[3]" or "state 1 exp_avg_sq[0]"
  readonly dtype: DType;
  readonly expected: number;
  readonly actual: number;
}

export interface ReplayReport {
  readonly id: string;
  readonly steps: number;
  /** Element values compared (params and every state entry, every step). */
  readonly compared: number;
  /** Of those, comparisons where both sides were NaN. */
  readonly nanCompared: number;
  readonly mismatches: number;
  /** The first few mismatches, in step order. */
  readonly firstMismatches: readonly Mismatch[];
}

/** The torch formula a golden file's torch version follows. */
export function formulaOf(version: string): Formula {
  return version.startsWith("1.") ? "torch-1.13" : "torch-2";
}

function hyperFrom(options: GoldenOptions): NadamHyperParameters {
  const { lr_is_tensor, betas, ...rest } = options;
  return withDefaults({ ...rest, ...(betas ? { betas: [betas[0], betas[1]] } : {}), lr_is_tensor: lr_is_tensor ?? false });
}

export function replayCase(golden: GoldenCase, maxMismatches = 5): ReplayReport {
  const config = {
    path: (golden.foreach ? "foreach" : "forloop") as CodePath,
    profile: golden.torch.profile,
    formula: formulaOf(golden.torch.version),
    scalarStateDtype: golden.default_dtype,
    vectorWidth: golden.torch.cpu_capability === "AVX512" ? (512 as const) : (256 as const),
  };
  const dtypes = golden.params.map((p) => p.init.dtype);
  const data = golden.params.map((p) => decodeHex(p.init.dtype, p.init.hex));
  const state: (NadamParamState | undefined)[] = golden.params.map(() => undefined);
  const groups = golden.param_groups.map((g) => ({ hyper: hyperFrom(g.options), ids: [...g.params] }));

  let compared = 0;
  let nanCompared = 0;
  let mismatches = 0;
  const first: Mismatch[] = [];
  const check = (step: number, what: string, dtype: DType, expected: number, actual: number): void => {
    compared++;
    if (Number.isNaN(expected) && Number.isNaN(actual)) nanCompared++;
    if (sameValue(dtype, expected, actual)) return;
    mismatches++;
    if (first.length < maxMismatches) first.push({ step, what, dtype, expected, actual });
  };

  golden.steps.forEach((entry, index) => {
    const stepNumber = index + 1;
    for (const event of entry.events ?? []) {
      if (event.kind === "set") {
        const group = groups[event.group]!;
        group.hyper = { ...group.hyper, [event.key]: event.value };
      } else if (event.kind === "add_param_group") {
        groups.push({ hyper: hyperFrom(event.options), ids: [...event.params] });
      } else {
        state.forEach((s, id) => {
          if (s !== undefined) state[id] = castStateOnLoad(s, dtypes[id]!);
        });
      }
    }
    const grads = entry.grads.map((hex, id) => (hex === null ? null : decodeHex(dtypes[id]!, hex)));

    for (const group of groups) {
      const params: SpecParam[] = group.ids.map((id) => ({ dtype: dtypes[id]!, data: data[id]!, grad: grads[id] ?? null }));
      const result = nadamStep(params, group.ids.map((id) => state[id]), group.hyper, config);
      group.ids.forEach((id, k) => {
        data[id] = result.data[k]!;
        state[id] = result.state[k];
      });
    }

    entry.params.forEach((hex, id) => {
      const name = golden.params[id]!.name;
      decodeHex(dtypes[id]!, hex).forEach((x, i) => check(stepNumber, `param ${id} (${name})[${i}]`, dtypes[id]!, x, data[id]![i]!));
    });
    entry.state.forEach((expected, id) => {
      const actual = state[id];
      if (expected === null || actual === undefined) {
        if ((expected === null) !== (actual === undefined)) {
          mismatches++;
          if (first.length < maxMismatches) first.push({ step: stepNumber, what: `state ${id} presence`, dtype: dtypes[id]!, expected: expected === null ? 0 : 1, actual: actual === undefined ? 0 : 1 });
        }
        return;
      }
      const scalar = (key: "step" | "mu_product"): void => {
        const [dtype, hex] = expected[key];
        const actualDtype = key === "step" ? actual.step_dtype : actual.mu_product_dtype;
        if (actualDtype !== dtype) {
          mismatches++;
          if (first.length < maxMismatches) first.push({ step: stepNumber, what: `state ${id} ${key} dtype ${actualDtype}, expected ${dtype}`, dtype, expected: NaN, actual: NaN });
          return;
        }
        check(stepNumber, `state ${id} ${key}`, dtype, decodeHex(dtype, hex)[0]!, actual[key]);
      };
      scalar("step");
      scalar("mu_product");
      decodeHex(dtypes[id]!, expected.exp_avg).forEach((x, i) => check(stepNumber, `state ${id} exp_avg[${i}]`, dtypes[id]!, x, actual.exp_avg[i]!));
      decodeHex(dtypes[id]!, expected.exp_avg_sq).forEach((x, i) => check(stepNumber, `state ${id} exp_avg_sq[${i}]`, dtypes[id]!, x, actual.exp_avg_sq[i]!));
    });
  });

  return { id: golden.id, steps: golden.steps.length, compared, nanCompared, mismatches, firstMismatches: first };
}
