/**
 * Replays a golden case through the spec and compares, after every step, each
 * param and each state entry with what PyTorch produced, bit for bit.
 *
 * Equality is SameValue on the dtype's values: -0 differs from +0, and NaN
 * equals NaN whatever its sign or payload (JavaScript numbers do not carry
 * NaN payloads, so the spec cannot model them; the count of NaN comparisons is
 * reported so that nobody mistakes them for bit comparisons).
 */
import type { DType } from "../spec/float/dtype.ts";
import type { GoldenCase } from "./case.ts";
import { sameValue } from "./compare.ts";
import type { StepConfig } from "../spec/nadam/step.ts";
import { configOf, recorded, simulate } from "./simulate.ts";

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

/** `config`: the case's own by default; another (a profile torch did not record it under) to show how far that is. */
export function replayCase(golden: GoldenCase, maxMismatches = 5, config: StepConfig = configOf(golden)): ReplayReport {
  const expected = recorded(golden);
  const actual = simulate(golden, undefined, config);
  const dtypes = golden.params.map((p) => p.init.dtype);
  let compared = 0;
  let nanCompared = 0;
  let mismatches = 0;
  const first: Mismatch[] = [];
  const miss = (m: Mismatch): void => {
    mismatches++;
    if (first.length < maxMismatches) first.push(m);
  };
  const check = (step: number, what: string, dtype: DType, want: number, got: number): void => {
    compared++;
    if (Number.isNaN(want) && Number.isNaN(got)) nanCompared++;
    if (!sameValue(dtype, want, got)) miss({ step, what, dtype, expected: want, actual: got });
  };

  expected.forEach((want, s) => {
    const got = actual[s]!;
    const step = s + 1;
    want.params.forEach((values, id) => values.forEach((x, i) => check(step, `param ${id} (${golden.params[id]!.name})[${i}]`, dtypes[id]!, x, got.params[id]![i]!)));
    want.state.forEach((w, id) => {
      const g = got.state[id]!;
      if (w === null || g === null) {
        if ((w === null) !== (g === null)) miss({ step, what: `state ${id} presence`, dtype: dtypes[id]!, expected: w === null ? 0 : 1, actual: g === null ? 0 : 1 });
        return;
      }
      for (const key of ["step", "mu_product"] as const) {
        const [wantDtype, gotDtype] = key === "step" ? [w.step_dtype, g.step_dtype] : [w.mu_product_dtype, g.mu_product_dtype];
        if (wantDtype !== gotDtype) miss({ step, what: `state ${id} ${key} dtype ${gotDtype}, expected ${wantDtype}`, dtype: wantDtype, expected: NaN, actual: NaN });
        else check(step, `state ${id} ${key}`, wantDtype, w[key], g[key]);
      }
      w.exp_avg.forEach((x, i) => check(step, `state ${id} exp_avg[${i}]`, dtypes[id]!, x, g.exp_avg[i]!));
      w.exp_avg_sq.forEach((x, i) => check(step, `state ${id} exp_avg_sq[${i}]`, dtypes[id]!, x, g.exp_avg_sq[i]!));
    });
  });
  return { id: golden.id, steps: golden.steps.length, compared, nanCompared, mismatches, firstMismatches: first };
}
