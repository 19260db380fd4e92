/**
 * Every registered backend beyond the typed-array one (which conformance.test.ts
 * runs on the whole corpus) through the whole suite on its dtypes, under the
 * `exact` policy: each case of a profile it claims passes bit for bit, each of
 * a profile it does not is skipped with that reason; a backend that cannot run
 * here is reported skipped with its reason, never passed.
 */
import { describe, expect, test } from "vitest";
import { BACKENDS } from "../impl/backends/index.ts";
import { backendPort } from "./builtin.ts";
import { selectCases } from "./cases.ts";
import { EXACT } from "./policy.ts";
import { runSuite } from "./suite.ts";
import type { RoundingProfile } from "../spec/nadam/types.ts";

const entries = await Promise.all(BACKENDS.filter((e) => e.id !== "typed-array").map(async (entry) => [entry.id, entry, await entry.availability()] as const));

describe.each(entries)("%s", (_id, entry, availability) => {
  const cases = selectCases({ dtypes: [...entry.supports.dtypes], paths: [...entry.supports.paths] });

  const reason = availability.available ? "" : ` — skipped: ${availability.reason}`;

  test.skipIf(!availability.available)(`passes \`exact\` on every corpus and closed-loop case of its dtypes and paths, under each profile it claims${reason}`, async () => {
    expect(cases.length).toBeGreaterThan(100);
    const report = await runSuite([backendPort(entry)], { policy: EXACT, cases });
    const results = report.ports[0]!.results;
    expect(results.length).toBe(cases.length);
    const claimed = results.filter((r) => entry.supports.profiles.includes(r.profile as RoundingProfile));
    expect(claimed.filter((r) => r.status !== "pass").map((r) => `${r.id} ${r.profile}: ${r.firstDivergence ?? r.reason}`)).toEqual([]);
    expect(claimed.length).toBeGreaterThan(50);
    expect(results.filter((r) => !entry.supports.profiles.includes(r.profile as RoundingProfile)).every((r) => r.status === "skip" && /follows the/.test(r.reason ?? ""))).toBe(true);
  });

  test.runIf(!availability.available)("is reported skipped by the suite, with its reason", async () => {
    const report = await runSuite([backendPort(entry)], { policy: EXACT, cases: cases.slice(0, 1) });
    expect(report.ports[0]!.skipped).toBe(availability.available ? undefined : availability.reason);
    expect(report.ports[0]!.results).toEqual([]);
  });
});
