/**
 * A whole run: cases × ports under one policy, with expectation files (known
 * failures with a reason, as test262 and the ONNX backend tests keep them), and
 * the totals a report shows.
 */
import { readRegularFile } from "../checkpoint/files.ts";
import { globMatches, selectCases, type CaseFilter, type ConformanceCase } from "./cases.ts";
import type { TolerancePolicy } from "./policy.ts";
import { capabilitiesProblem, type Port, type PortCapabilities } from "./port.ts";
import { runCase, type CaseResult, type Status } from "./run.ts";
import { printable } from "./text.ts";

/** An expectation file: cases (id globs, optionally one profile) a port is known to fail, and why. */
export interface Expectations {
  readonly port?: string;
  readonly expected_failures: readonly { readonly id: string; readonly profile?: string; readonly reason: string }[];
}

/** Largest expectation file read. */
const MAX_EXPECTATIONS_BYTES = 16 * 2 ** 20;

export function loadExpectations(path: string): Expectations {
  let data: Expectations;
  try {
    // A regular file only, bounded: a FIFO or a device named here would hang or read without end.
    data = JSON.parse(readRegularFile(path, MAX_EXPECTATIONS_BYTES).toString("utf8")) as Expectations;
  } catch (error) {
    throw new Error(`${path}: ${error instanceof SyntaxError ? "not valid JSON" : (error as Error).message}`);
  }
  if (typeof data !== "object" || data === null || (data.port !== undefined && typeof data.port !== "string") || !Array.isArray(data.expected_failures) || data.expected_failures.some((e) => typeof e !== "object" || e === null || typeof e.id !== "string" || typeof e.reason !== "string" || (e.profile !== undefined && typeof e.profile !== "string"))) {
    throw new Error(`${path}: expected {"expected_failures": [{"id": "<id or glob>", "reason": "..."}]}`);
  }
  return data;
}

function expectedFailure(expectations: Expectations | undefined, result: CaseResult): string | undefined {
  return expectations?.expected_failures.find((e) => globMatches(e.id, result.id) && (e.profile === undefined || e.profile === result.profile))?.reason;
}

export interface PortReport {
  readonly name: string;
  /** The port as the user named it (its command line, module or builtin:…), which its expectations are tied to. */
  readonly spec?: string;
  readonly capabilities: PortCapabilities | null;
  readonly results: readonly CaseResult[];
  /** Set when the port could not be started or described. */
  readonly error?: string;
  /** Set when the port cannot run on this machine (an optional backend, a missing device): why. */
  readonly skipped?: string;
  /** What ending the port took, when it had to be forced (killed, processes left behind). */
  readonly shutdown?: string;
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
  /**
   * Expectation files by the port they waive for: its `spec` (what the user
   * named on the command line), or "*" for every port. Never by the name a port
   * gives itself, which a port chooses.
   */
  readonly expectations?: ReadonlyMap<string, Expectations>;
  /** Seconds one case may take on a port before the port is declared dead. Default 120. */
  readonly caseSeconds?: number;
  /** Seconds the whole run may take; cases past it are not run, and the port says so. Default 4 hours. */
  readonly runSeconds?: number;
  /** Seconds a port's dispose() may take before the run goes on without it. Default 30. */
  readonly disposeSeconds?: number;
  onProgress?(port: string, done: number, total: number, last: CaseResult): void;
}

export const DEFAULT_CASE_SECONDS = 120;
export const DEFAULT_RUN_SECONDS = 4 * 3600;
/** Seconds a port's dispose() may take by default (a subprocess port's takes at most a few grace periods). */
export const DEFAULT_DISPOSE_SECONDS = 30;

/** A port as the suite sees it: what it was named on the command line, when it was. */
export type NamedPort = Port & { readonly spec?: string };

type Outcome = { readonly result: CaseResult } | { readonly over: string };

export async function runSuite(ports: readonly NamedPort[], options: SuiteOptions): Promise<SuiteReport> {
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const cases = options.cases ?? selectCases(options.filter, options.corpus);
  const caseMs = (options.caseSeconds ?? DEFAULT_CASE_SECONDS) * 1000;
  const runMs = (options.runSeconds ?? DEFAULT_RUN_SECONDS) * 1000;
  const disposeSeconds = options.disposeSeconds ?? DEFAULT_DISPOSE_SECONDS;
  const reports: PortReport[] = [];
  for (const port of ports) {
    const spec = port.spec;
    const results: CaseResult[] = [];
    let capabilities: PortCapabilities | null = null;
    let error: string | undefined;
    let skipped: string | undefined;
    try {
      const availability = (await port.available?.()) ?? { available: true };
      if (!availability.available) skipped = availability.reason;
      else {
        const declared: unknown = await port.capabilities();
        const problem = capabilitiesProblem(declared);
        if (problem !== undefined) throw new Error(problem);
        capabilities = declared as PortCapabilities;
      }
    } catch (e) {
      error = (e as Error).message;
    }
    if (capabilities !== null) {
      const expectations = (spec !== undefined ? options.expectations?.get(spec) : undefined) ?? options.expectations?.get("*");
      for (const [index, c] of cases.entries()) {
        const left = runMs - (performance.now() - started);
        if (left <= 0) {
          error = `the run's budget of ${runMs / 1000} s was spent before case ${c.id} [${c.profile}]; ${cases.length - index} cases not run`;
          break;
        }
        const budget = Math.min(caseMs, left);
        const over = budget === caseMs ? `took more than ${caseMs / 1000} s (the per-case budget)` : `was still running when the run's budget of ${runMs / 1000} s was spent`;
        let timer: NodeJS.Timeout | undefined;
        const overrun = new Promise<Outcome>((resolve) => (timer = setTimeout(() => resolve({ over }), budget)));
        const outcome = await Promise.race([runCase(port, capabilities, c, options.policy).then((result) => ({ result })), overrun]);
        clearTimeout(timer);
        if ("over" in outcome) {
          // Declared dead once: the remaining cases are not run against it, nor waited on.
          error = `declared dead at case ${c.id} [${c.profile}]: it ${outcome.over}; ${cases.length - index - 1} cases not run`;
          results.push({ id: c.id, profile: c.profile, dtype: c.dtype, path: c.path, tags: c.tags, status: "error", reason: `the port ${outcome.over}`, milliseconds: budget });
          break;
        }
        let result = outcome.result.reason === undefined ? outcome.result : { ...outcome.result, reason: printable(outcome.result.reason) };
        const known = expectedFailure(expectations, result);
        if (known !== undefined) {
          const status: Status = result.status === "fail" || result.status === "error" ? "expected-fail" : result.status === "pass" ? "unexpected-pass" : result.status;
          result = { ...result, status, reason: known };
        }
        results.push(result);
        options.onProgress?.(printable(port.name, 200), results.length, cases.length, result);
        const dead = port.dead;
        if (dead !== undefined) {
          error = `declared dead at case ${c.id} [${c.profile}]: it ${dead}; ${cases.length - index - 1} cases not run`;
          break;
        }
      }
    }
    // Always ended, whatever happened above: a port left running keeps the suite alive.
    let shutdown: string | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      // Bounded too: an in-process port's dispose may hang as its cases did.
      const late = new Promise<string>((resolve) => (timer = setTimeout(() => resolve(`its dispose() did not return within ${disposeSeconds} s; left behind`), disposeSeconds * 1000)));
      shutdown = (await Promise.race([Promise.resolve(port.dispose?.()), late])) ?? undefined;
    } catch (e) {
      shutdown = `could not be ended: ${(e as Error).message}`;
    }
    clearTimeout(timer);
    // What a port chose (its name, its messages) is shown only made printable.
    const name = printable(port.name, 200);
    reports.push({
      name,
      ...(spec !== undefined && spec !== port.name ? { spec: printable(spec, 200) } : {}),
      capabilities,
      results,
      ...(error !== undefined ? { error: printable(error) } : {}),
      ...(skipped !== undefined ? { skipped: printable(skipped) } : {}),
      ...(shutdown ? { shutdown: printable(shutdown) } : {}),
    });
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
 * Conformant: every port that ran was judged on something, and nothing failed, errored or passed
 * against its expectation. A port skipped as unavailable neither passes nor fails.
 */
export function conformant(report: SuiteReport): boolean {
  const judgedAny = report.ports.some((p) => p.results.some(judged));
  // Every port that ran must have been judged on something: one that supports nothing proves nothing.
  const eachJudged = report.ports.every((p) => p.skipped !== undefined || p.results.some(judged));
  return judgedAny && eachJudged && report.ports.every((p) => p.error === undefined && p.results.every((r) => r.status !== "fail" && r.status !== "error" && r.status !== "unexpected-pass"));
}
