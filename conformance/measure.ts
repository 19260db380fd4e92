/**
 * The measurements behind the default policy's budgets (TOLERANCE.md): for every
 * case of the suite — torch 2.6's recordings, and the closed-loop runs, where
 * differences compound as in training — the largest distance, in ULPs at scale,
 * between the case's expected trajectory and the oracle under a changed
 * configuration (torch's other CPU profile, the other code path, the old 1.13
 * formula), per dtype and tensor.
 */
import type { DType } from "../spec/float/dtype.ts";
import { nadamStep, type StepConfig } from "../spec/nadam/step.ts";
import type { ConformanceCase } from "./cases.ts";
import { compareTrajectories } from "./judge.ts";
import { EXACT, type TensorKind } from "./policy.ts";
import { expected } from "./run.ts";

/** A change of configuration, or null where it cannot run the case. */
export type ConfigChange = (config: StepConfig, c: ConformanceCase) => StepConfig | null;

export const CHANGES: Readonly<Record<"other CPU profile" | "other code path" | "torch 1.13 formula", ConfigChange>> = {
  "other CPU profile": (c) => ({ ...c, profile: c.profile === "default" ? "vectorized" : "default" }),
  // foreach refuses differentiable groups
  "other code path": (c, kase) => (kase.tags.includes("differentiable") ? null : { ...c, path: c.path === "forloop" ? "foreach" : "forloop" }),
  "torch 1.13 formula": (c) => ({ ...c, formula: "torch-1.13" }),
};

export type Distances = Partial<Record<DType, Partial<Record<TensorKind, number>>>>;

/** The largest distance per dtype and tensor between each case's expected trajectory and the oracle under `change`. */
export function largestDistances(cases: readonly ConformanceCase[], change: ConfigChange): Distances {
  const worst: Distances = {};
  for (const c of cases) {
    if (change({ path: c.path, profile: c.profile }, c) === null) continue;
    const variant = { stepper: nadamStep, config: (config: StepConfig) => change(config, c)! };
    const { maxDistance } = compareTrajectories(c.dtype, expected(c), expected(c, variant), EXACT);
    const row = (worst[c.dtype] ??= {});
    for (const [kind, d] of Object.entries(maxDistance) as [TensorKind, number][]) row[kind] = Math.max(row[kind] ?? 0, d);
  }
  return worst;
}

/** The default policy's rule: 4x the largest distance between torch's two CPU profiles, up to a power of two, at least 4 (0 for step). */
export function budgetFrom(kind: TensorKind, measured: number): number {
  if (kind === "step") return 0;
  return Math.max(4, 2 ** Math.ceil(Math.log2(Math.max(4 * measured, 1))));
}
