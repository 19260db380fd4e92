/**
 * The spec replays every golden case of real PyTorch (golden/data on the CPU,
 * golden/cuda on a GPU) and must match every param and every state entry after
 * every step, bit for bit, under the case's torch version, rounding profile and
 * code path.
 */
import { afterAll, describe, expect, test } from "vitest";
import { loadReplayedCases } from "./load.ts";
import { replayCase, type ReplayReport } from "./replay.ts";
import { runLabel, summarize } from "./summary.ts";

const corpus = loadReplayedCases();
const byRun = new Map<string, typeof corpus>();
for (const entry of corpus) {
  const run = runLabel(entry.golden);
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
  console.log(summarize(reports));
});
