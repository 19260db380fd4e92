/**
 * The measurements behind the default policy's budgets (conformance/TOLERANCE.md),
 * made by conformance/measure.ts on the suite's cases, and the budgets they give.
 * Run: npx tsx scripts/measure-tolerance.ts
 */
import { allCases } from "../conformance/cases.ts";
import { budgetFrom, CHANGES, largestDistances } from "../conformance/measure.ts";
import type { TensorKind } from "../conformance/policy.ts";

const show = (d: number): string => (Number.isFinite(d) ? d.toPrecision(3) : "inf");
for (const source of ["golden", "closed-loop"] as const) {
  const cases = allCases().filter((c) => c.source.kind === source);
  for (const [name, change] of Object.entries(CHANGES)) {
    console.log(`${source}, ${name}: largest distance (ULPs at scale) over ${cases.length} cases`);
    for (const [dtype, kinds] of Object.entries(largestDistances(cases, change))) {
      const row = Object.entries(kinds).map(([k, d]) => `${k} ${show(d)}`);
      const budgets = name === "other CPU profile" ? `  -> budgets ${Object.entries(kinds).map(([k, d]) => `${k} ${budgetFrom(k as TensorKind, d)}`).join(", ")}` : "";
      console.log(`  ${dtype.padEnd(8)} ${row.join(", ")}${budgets}`);
    }
  }
}
