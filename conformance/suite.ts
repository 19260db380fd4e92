/**
 * A whole run: cases × ports under one policy, with expectation files (known
 * failures with a reason, as test262 and the ONNX backend tests keep them), and
 * the totals a report shows.
 */
import { readFileSync } from "node:fs";
import { globMatches, selectCases, type CaseFilter, type ConformanceCase } from "./cases.ts";
import type { TolerancePolicy } from "./policy.ts";
import type { Port, PortCapabilities } from "./port.ts";
import { runCase, type CaseResult, type Status } from "./run.ts";

/** An expectation file: cases (id globs, optionally one profile) a port is known to fail, and why. */
export interface Expectations {
  readonly port?: string;
  readonly expected_failures: readonly { readonly id: string; readonly profile?: string; readonly reason: string }[];
}

export function loadExpectations(path: string): Expectations {
  const data = JSON.parse(readFileSync(path, "utf8")) as Expectations;
  if (!Array.isArray(data.expected_failures) || data.expected_failures.some((e) => typeof e.id !== "string" || typeof e.reason !== "string")) {
    throw new Error(`${path}: expected {"expected_failures": [{"id": "<id or glob>", "reason": "..."}]}`);
  }
  return data;
}

function expectedFailure(expectations: Expectations | undefined, result: CaseResult): string | undefined {
  return expectations?.expected_failures.find((e) => globMatches(e.id, result.id) && (e.profile === undefined || e.profile === result.profile))?.reason;
}

export interface PortReport {
  readonly name: string;
  readonly capabilities: PortCapabilities | null;
  readonly results: readonly CaseResult[];
  /** Set when the port could not be started or described. */
  readonly error?: string;
  /** Set when the port cannot run on this machine (an optional backend, a missing device): why. */
  readonly skipped?: string;
}

export interface SuiteReport {
  readonly policy: { readonly name: string; readonly description: string };
  readonly startedAt: string;
  readonly seconds: number;
  readonly ports: readonly PortReport[];
}

export interface SuiteOptions {
  readonly filter?: CaseFilter;
  /** The cases to run, already selected (then `filter` and `corpus` are not used). */
  readonly cases?: readonly ConformanceCase[];
  /** The golden corpus folder; default: golden/locate.ts's locateCorpus(). */
  readonly corpus?: string;
  readonly policy: TolerancePolicy;
  readonly expectations?: ReadonlyMap<string, Expectations>;
  onProgress?(port: string, done: number, total: number, last: CaseResult): void;
}

export async function runSuite(ports: readonly Port[], options: SuiteOptions): Promise<SuiteReport> {
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const cases = options.cases ?? selectCases(options.filter, options.corpus);
  const reports: PortReport[] = [];
  for (const port of ports) {
    let capabilities: PortCapabilities;
    try {
      const availability = (await port.available?.()) ?? { available: true };
      if (!availability.available) {
        reports.push({ name: port.name, capabilities: null, results: [], skipped: availability.reason });
        continue;
      }
      capabilities = await port.capabilities();
    } catch (error) {
      reports.push({ name: port.name, capabilities: null, results: [], error: (error as Error).message });
      continue;
    }
    const expectations = options.expectations?.get(port.name) ?? options.expectations?.get("*");
    const results: CaseResult[] = [];
    for (const c of cases) {
      let result = await runCase(port, capabilities, c, options.policy);
      const known = expectedFailure(expectations, result);
      if (known !== undefined) {
        const status: Status = result.status === "fail" || result.status === "error" ? "expected-fail" : result.status === "pass" ? "unexpected-pass" : result.status;
        result = { ...result, status, reason: known };
      }
      results.push(result);
      options.onProgress?.(port.name, results.length, cases.length, result);
    }
    await port.dispose?.();
    reports.push({ name: port.name, capabilities, results });
  }
  return { policy: { name: options.policy.name, description: options.policy.description }, startedAt, seconds: (performance.now() - started) / 1000, ports: reports };
}

/** Case groups for the matrix: the first part of the id (options, structure, edge, long, differentiable, closed-loop). */
export function groupOf(id: string): string {
  return id.split("/")[0]!;
}

export function counts(results: readonly CaseResult[]): Record<Status, number> {
  const c: Record<Status, number> = { pass: 0, fail: 0, skip: 0, error: 0, "expected-fail": 0, "unexpected-pass": 0 };
  for (const r of results) c[r.status]++;
  return c;
}

/** A matrix cell: passed / judged, then each other outcome that occurred (LEGEND). */
export function cell(results: readonly CaseResult[]): string {
  if (results.length === 0) return "-";
  const c = counts(results);
  const judgedCount = results.length - c.skip;
  const others: [string, number][] = [["F", c.fail], ["E", c.error], ["XF", c["expected-fail"]], ["UP", c["unexpected-pass"]], ["S", c.skip]];
  const tail = others.filter(([, n]) => n > 0).map(([k, n]) => `${k}${n}`);
  return [`${c.pass}/${judgedCount}`, ...tail].join(" ");
}

export const LEGEND = "cells: passed/judged; F failed, E errors, XF expected failures, UP unexpected passes, S skipped";

/** Whether a case was judged (passed or failed, as expected or not), as opposed to skipped. */
export function judged(result: CaseResult): boolean {
  return result.status !== "skip";
}

/**
 * Conformant: something was judged, and nothing failed, errored or passed
 * against its expectation. A port skipped as unavailable neither passes nor fails.
 */
export function conformant(report: SuiteReport): boolean {
  const judgedAny = report.ports.some((p) => p.results.some(judged));
  return judgedAny && report.ports.every((p) => p.error === undefined && p.results.every((r) => r.status !== "fail" && r.status !== "error" && r.status !== "unexpected-pass"));
}
