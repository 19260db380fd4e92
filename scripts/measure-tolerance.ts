/**
 * The measurements behind the default policy's budgets (conformance/TOLERANCE.md):
 * for every torch 2.6 golden case, the largest distance, in ULPs at the tensor's
 * scale, between torch's recording and (a) torch under the other CPU profile,
 * (b) the other code path, (c) the old torch 1.13 for-loop formula — all three
 * computed by the oracle on the case's own inputs. Run: npx tsx scripts/measure-tolerance.ts
 */
import { configOf, recorded, simulate } from "../golden/simulate.ts";
import { loadGoldenCorpus } from "../golden/load.ts";
import { compareTrajectories } from "../conformance/judge.ts";
import { EXACT } from "../conformance/policy.ts";
import type { StepConfig } from "../spec/nadam/step.ts";

const variants: Record<string, (c: StepConfig, differentiable: boolean) => StepConfig | null> = {
  "other CPU profile": (c) => ({ ...c, profile: c.profile === "default" ? "vectorized" : "default" }),
  "other code path": (c, differentiable) => (differentiable ? null : { ...c, path: c.path === "forloop" ? "foreach" : "forloop" }),
  "torch 1.13 for-loop formula": (c) => ({ ...c, formula: "torch-1.13" }),
};

const corpus = loadGoldenCorpus().filter(({ golden }) => golden.torch.version.startsWith("2."));
for (const [name, change] of Object.entries(variants)) {
  const worst: Record<string, Record<string, number>> = {};
  for (const { golden } of corpus) {
    const config = change(configOf(golden), golden.tags.includes("differentiable"));
    if (config === null) continue;
    const { maxDistance } = compareTrajectories(golden.dtype, recorded(golden), simulate(golden, undefined, config), EXACT);
    for (const [kind, d] of Object.entries(maxDistance)) {
      const row = (worst[golden.dtype] ??= {});
      row[kind] = Math.max(row[kind] ?? 0, d ?? 0);
    }
  }
  console.log(`${name}: largest distance (ULPs at scale) over ${corpus.length} recordings`);
  for (const [dtype, kinds] of Object.entries(worst)) {
    console.log(`  ${dtype.padEnd(8)} ${Object.entries(kinds).map(([k, d]) => `${k} ${Number.isFinite(d) ? d.toPrecision(3) : "inf"}`).join(", ")}`);
  }
}
