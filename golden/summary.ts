/** Totals of golden replays, per torch run, as the tests and `npm start` print them. */
import type { GoldenCase } from "./case.ts";
import type { ReplayReport } from "./replay.ts";

export function runLabel(golden: GoldenCase): string {
  return `torch ${golden.torch.version}, profile ${golden.torch.profile} (${golden.torch.device ?? golden.torch.cpu_capability})`;
}

export function summarize(reports: ReadonlyMap<string, readonly ReplayReport[]>): string {
  const lines = ["golden replay (spec vs real PyTorch, bit for bit):"];
  let cases = 0;
  let values = 0;
  let mismatched = 0;
  for (const [run, list] of reports) {
    const compared = list.reduce((s, r) => s + r.compared, 0);
    const nan = list.reduce((s, r) => s + r.nanCompared, 0);
    const bad = list.reduce((s, r) => s + r.mismatches, 0);
    const failing = list.filter((r) => r.mismatches > 0).length;
    lines.push(`  ${run}: ${list.length} cases (${failing} failing), ${compared} values compared (${nan} of them NaN = NaN), ${bad} mismatched`);
    cases += list.length;
    values += compared;
    mismatched += bad;
  }
  lines.push(`  total: ${cases} cases, ${values} values, ${mismatched} mismatched`);
  return lines.join("\n");
}
