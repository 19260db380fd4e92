/**
 * The spec replays every golden case of real PyTorch and must match every
 * param and every state entry after every step, bit for bit, under the case's
 * torch version, CPU profile and code path.
 */
import { afterAll, describe, expect, test } from "vitest";
import { loadGoldenCorpus } from "./load.ts";
import { replayCase, type ReplayReport } from "./replay.ts";

const corpus = loadGoldenCorpus();
const byRun = new Map<string, typeof corpus>();
for (const entry of corpus) {
  const run = `torch ${entry.golden.torch.version}, profile ${entry.golden.torch.profile} (${entry.golden.torch.cpu_capability})`;
  byRun.set(run, [...(byRun.get(run) ?? []), entry]);
}
const reports = new Map<string, ReplayReport[]>();

describe.each([...byRun.keys()])("%s", (run) => {
  const entries = byRun.get(run)!;
  test.each(entries.map((e) => [e.golden.id, e] as const))("%s", (_id, entry) => {
    const report = replayCase(entry.golden);
    reports.set(run, [...(reports.get(run) ?? []), report]);
    const detail = report.firstMismatches.map((m) => `step ${m.step}: ${m.what} = ${m.actual}, torch ${m.expected}`);
    expect(detail).toEqual([]);
    expect(report.mismatches).toBe(0);
    expect(report.compared).toBeGreaterThan(0);
  });
});

afterAll(() => {
  const lines = ["golden replay (spec vs real PyTorch, bit for bit):"];
  let cases = 0;
  let values = 0;
  let mismatched = 0;
  for (const [run, list] of reports) {
    const compared = list.reduce((s, r) => s + r.compared, 0);
    const nan = list.reduce((s, r) => s + r.nanCompared, 0);
    const bad = list.reduce((s, r) => s + r.mismatches, 0);
    lines.push(`  ${run}: ${list.length} cases, ${compared} values compared (${nan} of them NaN = NaN), ${bad} mismatched`);
    cases += list.length;
    values += compared;
    mismatched += bad;
  }
  lines.push(`  total: ${cases} cases, ${values} values, ${mismatched} mismatched`);
  console.log(lines.join("\n"));
});
