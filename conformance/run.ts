/**
 * Running cases on a port and judging them: drive the port through a case's
 * schedule, compare its trajectory with torch's (or, in closed loop, the
 * oracle's), accept torch's other legitimate recordings under the default
 * policy, and on failure name the first divergence and the known mistake the
 * port follows, if any.
 */
import type { JsonStateDict, JsonTensor } from "../checkpoint/json.ts";
import { componentsOf, type DType } from "../spec/float/dtype.ts";
import { configOf, hyperFrom, recorded, simulate, type Stepper, type TrajectoryStep } from "../golden/simulate.ts";
import { nadamStep, type NadamHyperParameters, type NadamParamState, type StepConfig } from "../spec/nadam/step.ts";
import { CPU_ROUNDING_PROFILES, type CodePath, type RoundingProfile } from "../spec/nadam/types.ts";
import type { GoldenOptions } from "../golden/case.ts";
import { hexToTensor, wireOptions, type ConformanceCase } from "./cases.ts";
import { compareTrajectories, describeDivergence, type Comparison } from "./judge.ts";
import { compose, MISTAKES, SIBLING_MISTAKES, type Mistake, type MistakeName, type Variant } from "./mistakes.ts";
import type { Objective } from "./objectives.ts";
import { DEFAULT, type TolerancePolicy } from "./policy.ts";
import { UnsupportedError, type OpenRequest, type Port, type PortCapabilities, type PortParam, type PortSession, type PortState, type StepReply } from "./port.ts";
import { decodeTensor, encodeTensor } from "./wire.ts";

export type Status = "pass" | "fail" | "skip" | "error" | "expected-fail" | "unexpected-pass";

/** The oracle as it is: the base of a diagnosis when the port is nearest torch's own configuration. */
const IDENTITY: Variant = { stepper: nadamStep };

export interface Diagnosis {
  /** The mistake's name, or two joined with " + " when only the pair reproduces the port. */
  readonly mistake: string;
  readonly mistakes: readonly MistakeName[];
  readonly explanation: string;
  /** Largest distance between the port and the mistaken variant, and between the port and torch. */
  readonly distance: number;
  readonly correctDistance: number;
}

export interface CaseResult {
  readonly id: string;
  readonly profile: string;
  readonly dtype: string;
  readonly path: string;
  readonly tags: readonly string[];
  readonly status: Status;
  /** Why a case was skipped, errored, or expected to fail. */
  readonly reason?: string;
  readonly firstDivergence?: string;
  readonly diagnosis?: Diagnosis;
  /** When it passed by matching torch's recording under another profile or path. */
  readonly matched?: string;
  readonly comparison?: Comparison;
  readonly milliseconds: number;
}

function toState(s: PortState | null): NadamParamState | null {
  if (s === null) return null;
  return {
    step: decodeTensor(s.step)[0]!,
    step_dtype: s.step.dtype,
    mu_product: decodeTensor(s.mu_product)[0]!,
    mu_product_dtype: s.mu_product.dtype,
    exp_avg: decodeTensor(s.exp_avg),
    exp_avg_sq: decodeTensor(s.exp_avg_sq),
  };
}

/** A param as the case has it: what every tensor the port returns for it must be. */
interface ParamMeta {
  readonly dtype: DType;
  readonly shape: readonly number[];
}

/**
 * The reply as a trajectory step, once each param and moment is checked to be
 * of the param's dtype and shape: the values alone would let a float64 answer
 * pass for a float32 one, or a flat one for a matrix.
 */
function toStep(reply: StepReply, metas: readonly ParamMeta[]): TrajectoryStep {
  const existing = metas.length;
  if (!Array.isArray(reply.params) || !Array.isArray(reply.state) || reply.params.length < existing || reply.state.length < existing) {
    throw new Error(`the port returned ${Array.isArray(reply.params) ? reply.params.length : "no"} params and ${Array.isArray(reply.state) ? reply.state.length : "no"} states for ${existing} params`);
  }
  const check = (t: JsonTensor | undefined, meta: ParamMeta, what: string): void => {
    if (typeof t !== "object" || t === null || !Array.isArray(t.shape)) throw new Error(`${what} is not a tensor`);
    const shape = `[${t.shape.join(", ")}]`;
    if (t.dtype !== meta.dtype || shape !== `[${meta.shape.join(", ")}]`) throw new Error(`${what} is a ${String(t.dtype)} tensor of shape ${shape}; the param is ${meta.dtype} [${meta.shape.join(", ")}]`);
    // Elements beyond the shape's would go unjudged; fewer would be compared against nothing.
    const values = decodeTensor(t).length;
    const expected = meta.shape.reduce((a, b) => a * b, 1) * componentsOf(meta.dtype);
    if (values !== expected) throw new Error(`${what} holds ${values} values; shape [${meta.shape.join(", ")}] of ${meta.dtype} has ${expected}`);
  };
  metas.forEach((meta, i) => {
    check(reply.params[i], meta, `param ${i}`);
    const state = reply.state[i];
    if (state) for (const key of ["exp_avg", "exp_avg_sq"] as const) check(state[key], meta, `param ${i}'s ${key}`);
  });
  return { params: reply.params.slice(0, existing).map(decodeTensor), state: reply.state.slice(0, existing).map(toState) };
}

/** The objective's single param group. */
function objectiveGroup(objective: Objective): { options: Record<string, number | boolean | number[]>; params: number[] } {
  return { options: { ...objective.options }, params: objective.params.map((_, i) => i) };
}

// ---------------------------------------------------------------------------
// Driving a port

/** The port's trajectory on a case. */
export async function drive(port: Port, c: ConformanceCase): Promise<TrajectoryStep[]> {
  const steps: TrajectoryStep[] = [];
  if (c.source.kind === "closed-loop") {
    const { objective } = c.source;
    const params: PortParam[] = objective.params.map((p) => ({ name: p.name, value: encodeTensor(c.dtype, p.shape, p.init) }));
    const session = await port.open({ case: { id: c.id, profile: c.profile }, default_dtype: c.default_dtype, foreach: c.path === "foreach", profile: c.profile, params, param_groups: [objectiveGroup(objective)] });
    try {
      let values = params.map((p) => decodeTensor(p.value));
      for (let s = 0; s < c.source.steps; s++) {
        const grads = objective.grad(values).map((g, i) => encodeTensor(c.dtype, objective.params[i]!.shape, g));
        const step = toStep(await session.step(grads), objective.params.map((p) => ({ dtype: c.dtype, shape: p.shape })));
        steps.push(step);
        values = step.params.map((p) => [...p]);
      }
    } finally {
      await session.close();
    }
    return steps;
  }

  const golden = c.source.golden;
  const paramOf = (id: number, values?: readonly number[]): PortParam => {
    const p = golden.params[id]!;
    return { name: p.name, value: values ? encodeTensor(golden.dtype, p.init.shape, values) : hexToTensor(p.init.dtype, p.init.shape, p.init.hex) };
  };
  const groups = golden.param_groups.map((g) => ({ options: wireOptions(g.options), params: [...g.params] }));
  const request = (values?: readonly (readonly number[])[]): OpenRequest => {
    const ids = groups.flatMap((g) => g.params);
    return { case: { id: c.id, profile: c.profile }, default_dtype: golden.default_dtype, foreach: golden.foreach, profile: c.profile, params: ids.map((id) => paramOf(id, values?.[id])), param_groups: groups };
  };
  let session: PortSession = await port.open(request());
  try {
    for (const entry of golden.steps) {
      for (const event of entry.events ?? []) {
        if (event.kind === "set") await session.set(event.group, event.key, event.value);
        else if (event.kind === "add_param_group") {
          groups.push({ options: wireOptions(event.options), params: [...event.params] });
          await session.addParamGroup(wireOptions(event.options), event.params.map((id) => paramOf(id)));
        } else {
          const saved: JsonStateDict = await session.stateDict();
          await session.close();
          session = await port.open(request(steps.at(-1)?.params));
          await session.loadStateDict(saved);
        }
      }
      const grads = entry.grads.map((hex, id) => (hex === null ? null : hexToTensor(golden.dtype, golden.params[id]!.init.shape, hex)));
      steps.push(toStep(await session.step(grads), golden.params.slice(0, entry.params.length).map((p) => ({ dtype: p.init.dtype, shape: p.init.shape }))));
    }
  } finally {
    await session.close();
  }
  return steps;
}

// ---------------------------------------------------------------------------
// What is expected

/** The oracle (or a variant of it) in a closed loop on an objective. */
function closedLoop(c: ConformanceCase, objective: Objective, steps: number, stepper: Stepper, config: StepConfig, hyperOf: (o: GoldenOptions) => NadamHyperParameters): TrajectoryStep[] {
  const round = (values: readonly number[], shape: readonly number[]) => decodeTensor(encodeTensor(c.dtype, shape, values));
  let data = objective.params.map((p) => round(p.init, p.shape));
  let state: (NadamParamState | undefined)[] = data.map(() => undefined);
  const hyper = hyperOf(objective.options as GoldenOptions);
  const out: TrajectoryStep[] = [];
  for (let s = 0; s < steps; s++) {
    const grads = objective.grad(data).map((g, i) => round(g, objective.params[i]!.shape));
    const result = stepper(data.map((d, i) => ({ dtype: c.dtype, data: d, grad: grads[i]! })), state, hyper, config);
    data = result.data;
    state = result.state;
    out.push({ params: data, state: state.map((x) => x ?? null) });
  }
  return out;
}

function caseConfig(c: ConformanceCase): StepConfig {
  return c.source.kind === "golden" ? configOf(c.source.golden) : { path: c.path, profile: c.profile, scalarStateDtype: c.default_dtype };
}

/**
 * torch 2.6's other legitimate answers to the same inputs: the other CPU profile,
 * the other code path, both. The oracle computes them (it is bit-exact to torch
 * under each, as the golden tests show); recordings of the other path cannot be
 * used directly, since each path's golden case has inputs of its own.
 */
export function alternatives(c: ConformanceCase): { label: string; variant: Variant }[] {
  // a CPU case's other CPU profile; a CUDA case's two CPU profiles
  const profiles: readonly RoundingProfile[] = c.profile === "cuda" ? CPU_ROUNDING_PROFILES : [c.profile === "default" ? "vectorized" : "default"];
  const path: CodePath = c.path === "forloop" ? "foreach" : "forloop";
  const changes: { label: string; change: Partial<StepConfig> }[] = profiles.map((profile) => ({ label: `torch's ${profile} profile`, change: { profile } }));
  if (!c.tags.includes("differentiable")) {
    // foreach refuses differentiable groups
    changes.push({ label: `torch's ${path} path`, change: { path } }, ...profiles.map((profile) => ({ label: `torch's ${profile} profile and ${path} path`, change: { profile, path } })));
  }
  return changes.map(({ label, change }) => ({ label, variant: { stepper: nadamStep, config: (config: StepConfig) => ({ ...config, ...change }) } }));
}

/** torch's recording (golden) or the oracle's run (closed loop), optionally through a variant of the oracle. */
export function expected(c: ConformanceCase, mistake?: Variant): TrajectoryStep[] {
  const config = mistake?.config ? mistake.config(caseConfig(c)) : caseConfig(c);
  const hyperOf = (o: GoldenOptions) => (mistake?.hyper ? mistake.hyper(hyperFrom(o)) : hyperFrom(o));
  if (c.source.kind === "closed-loop") return closedLoop(c, c.source.objective, c.source.steps, mistake?.stepper ?? nadamStep, config, hyperOf);
  if (mistake === undefined) return recorded(c.source.golden);
  return simulate(c.source.golden, mistake.stepper, config, hyperOf);
}

// ---------------------------------------------------------------------------
// Judging

function largest(comparison: Comparison): number {
  return Math.max(0, ...Object.values(comparison.maxDistance).map((d) => d ?? 0));
}

/** Whether a mistake can be made on this case: swapping paths cannot where the case is differentiable. */
function applies(mistake: Mistake, c: ConformanceCase): boolean {
  return !(mistake.name === "paths-swapped" && c.tags.includes("differentiable")); // foreach refuses differentiable groups
}

/** How closely a variant of the oracle reproduces the port. */
interface Fit {
  readonly bitIdentical: boolean;
  /** Within the default policy's budgets: rounding noise apart. */
  readonly withinNoise: boolean;
  readonly distance: number;
  /** The step of the first value beyond the default budgets (later is closer); Infinity when none. */
  readonly firstStep: number;
}

function fit(c: ConformanceCase, variant: Variant | undefined, actual: readonly TrajectoryStep[]): Fit {
  let trajectory: TrajectoryStep[];
  try {
    trajectory = expected(c, variant);
  } catch {
    return { bitIdentical: false, withinNoise: false, distance: Infinity, firstStep: 0 }; // a variant that cannot run the case
  }
  const comparison = compareTrajectories(c.dtype, trajectory, actual, DEFAULT, c.source.kind);
  return { bitIdentical: comparison.bitIdentical, withinNoise: comparison.first === null, distance: largest(comparison), firstStep: comparison.first?.step ?? Infinity };
}

/** -1, 0 or 1; infinities equal to themselves (where a subtraction gives NaN). */
function compare(a: number, b: number): number {
  return a === b ? 0 : a < b ? -1 : 1;
}

/** Closer fits first: bit-identical, then within noise, then by distance, then by how long they agree. */
function closer(a: Fit, b: Fit): number {
  const tier = (f: Fit) => (f.bitIdentical ? 0 : f.withinNoise ? 1 : 2);
  return compare(tier(a), tier(b)) || compare(a.distance, b.distance) || compare(b.firstStep, a.firstStep);
}

interface Candidate {
  readonly names: readonly MistakeName[];
  readonly explanation: string;
  readonly fit: Fit;
}

/** The mistake (or pair) that best explains the port on top of `sibling`, with how well the sibling alone fits. */
function bestMistake(c: ConformanceCase, actual: readonly TrajectoryStep[], sibling: Variant | undefined): { best: Candidate | undefined; alone: Fit } {
  const on = (v: Variant | undefined): Variant | undefined => (sibling === undefined || v === undefined ? (v ?? sibling) : compose(sibling, v));
  const candidates = MISTAKES.filter((m) => applies(m, c) && !(sibling !== undefined && SIBLING_MISTAKES.includes(m.name)));
  const singles: Candidate[] = candidates.map((m) => ({ names: [m.name], explanation: m.explanation, fit: fit(c, on(m), actual) })).sort((a, b) => closer(a.fit, b.fit));
  let best = singles[0];
  if (best !== undefined && !best.fit.bitIdentical) {
    // Pairs of the five closest singles; of all of them when none is even within noise (NaN and Inf hide closeness).
    const near = singles
      .slice(0, best.fit.withinNoise ? 5 : singles.length)
      .map((s) => MISTAKES.find((m) => m.name === s.names[0])!)
      .sort((a, b) => MISTAKES.indexOf(a) - MISTAKES.indexOf(b)); // a pair is named in MISTAKES' order
    for (const [i, a] of near.entries()) {
      for (const b of near.slice(i + 1)) {
        const pair = compose(a, b);
        if (pair === undefined) continue;
        const f = fit(c, on(pair), actual);
        if (closer(f, best.fit) < 0) best = { names: [a.name, b.name], explanation: `${a.explanation}; and ${b.explanation}`, fit: f };
      }
    }
  }
  return { best, alone: fit(c, on(undefined), actual) };
}

/**
 * The known mistake the port's trajectory follows, if one explains it: the
 * oracle with that mistake reproduces the port bit for bit, or within rounding
 * noise (the default policy's budgets) where the oracle itself does not. When
 * no single mistake is bit-identical, pairs are tried too. `siblings`: under a
 * policy that accepts torch's other profiles and paths, the ones the port is
 * nearest to; the mistakes are made on top of each, the best explanation
 * wins, and swapping profiles or paths is not a mistake there.
 */
export function diagnose(c: ConformanceCase, actual: readonly TrajectoryStep[], correct: Comparison, siblings?: readonly Variant[]): Diagnosis | undefined {
  let chosen: { best: Candidate; alone: Fit } | undefined;
  for (const sibling of siblings ?? [undefined]) {
    const { best, alone } = bestMistake(c, actual, sibling);
    if (best === undefined) continue;
    const explains = best.fit.bitIdentical || (best.fit.withinNoise && !alone.withinNoise);
    if (explains && (chosen === undefined || closer(best.fit, chosen.best.fit) < 0)) chosen = { best, alone };
  }
  if (chosen === undefined) return undefined;
  const { best } = chosen;
  return { mistake: best.names.join(" + "), mistakes: best.names, explanation: best.explanation, distance: best.fit.distance, correctDistance: largest(correct) };
}

export function judge(c: ConformanceCase, actual: readonly TrajectoryStep[], policy: TolerancePolicy): Omit<CaseResult, "milliseconds" | "status"> & { status: "pass" | "fail" } {
  const base = { id: c.id, profile: c.profile, dtype: c.dtype, path: c.path, tags: c.tags };
  const own = compareTrajectories(c.dtype, expected(c), actual, policy, c.source.kind);
  if (own.first === null) return { ...base, status: "pass", comparison: own };
  const names = c.source.kind === "golden" ? c.source.golden.params.map((p) => p.name) : c.source.objective.params.map((p) => p.name);
  if (!policy.acceptSiblings) return { ...base, status: "fail", comparison: own, firstDivergence: describeDivergence(own.first, names), diagnosis: diagnose(c, actual, own) };
  // Under a policy that accepts torch's siblings, the nearest of them (those that agree with
  // the port longest, then closest) are the bases a mistake is made on.
  const siblings: { variant: Variant; comparison: Comparison }[] = [{ variant: IDENTITY, comparison: own }];
  for (const { label, variant } of alternatives(c)) {
    const other = compareTrajectories(c.dtype, expected(c, variant), actual, policy, c.source.kind);
    if (other.first === null) return { ...base, status: "pass", comparison: own, matched: label };
    siblings.push({ variant, comparison: other });
  }
  const rank = (x: Comparison): [number, number] => [-(x.first?.step ?? Infinity), largest(x)];
  const better = (a: [number, number], b: [number, number]) => compare(a[0], b[0]) || compare(a[1], b[1]);
  const nearest = siblings.reduce((a, b) => (better(rank(b.comparison), rank(a.comparison)) < 0 ? b : a));
  const tied = siblings.filter((x) => better(rank(x.comparison), rank(nearest.comparison)) === 0).map((x) => x.variant);
  return { ...base, status: "fail", comparison: own, firstDivergence: describeDivergence(own.first, names), diagnosis: diagnose(c, actual, own, tied) };
}

export function unsupported(c: ConformanceCase, caps: PortCapabilities, policy: TolerancePolicy): string | undefined {
  if (!caps.dtypes.includes(c.dtype)) return `the port does not support ${c.dtype}`;
  if (!caps.paths.includes(c.path)) return `the port does not implement the ${c.path} path`;
  if (!caps.profiles.includes(c.profile) && !policy.acceptSiblings) return `the port follows the ${caps.profiles.join("/")} profile`;
  const missing = c.features.filter((f) => !caps.features.includes(f));
  if (missing.length > 0) return `the port lacks ${missing.join(", ")}`;
  const options = c.options.filter((o) => caps.unsupported_options?.includes(o));
  return options.length > 0 ? `the port has no ${options.join(", ")} option` : undefined;
}

export async function runCase(port: Port, caps: PortCapabilities, c: ConformanceCase, policy: TolerancePolicy): Promise<CaseResult> {
  const started = performance.now();
  const base = { id: c.id, profile: c.profile, dtype: c.dtype, path: c.path, tags: c.tags };
  const skip = unsupported(c, caps, policy);
  if (skip !== undefined) return { ...base, status: "skip", reason: skip, milliseconds: 0 };
  let actual: TrajectoryStep[];
  try {
    actual = await drive(port, c);
  } catch (error) {
    // A port may say, when asked, that it lacks what the case needs: a skip with its reason.
    const status = error instanceof UnsupportedError ? "skip" : "error";
    return { ...base, status, reason: (error as Error).message, milliseconds: performance.now() - started };
  }
  return { ...judge(c, actual, policy), milliseconds: performance.now() - started };
}
