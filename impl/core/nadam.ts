/**
 * torch.optim.NAdam's API in TypeScript, over any NadamBackend: param groups,
 * add_param_group, state, state_dict / load_state_dict, the six hook kinds,
 * zero_grad and step(closure). The algorithm is spec/nadam/step.ts's; this
 * class is PyTorch's Optimizer machinery around it (torch 2.6).
 *
 * Names: methods are camelCase (`stateDict` for `state_dict`); option and state
 * keys keep PyTorch's spelling, since they appear verbatim in state dicts.
 * A backend whose work completes later (asynchronous) is driven through
 * `stepAsync()` and `stateDictAsync()`; the others work with either form.
 */
import { sameValue } from "../../spec/float/bits.ts";
import type { NadamHyperParameters } from "../../spec/nadam/step.ts";
import type { CodePath } from "../../spec/nadam/types.ts";
import { Tensor } from "../../tensor/tensor.ts";
import type { GroupStep, NadamBackend, NadamState, SyncBackend } from "../backend.ts";
import { defaultBackend } from "../backends/index.ts";
import { AssertionError, KeyError, RuntimeError, ValueError } from "./errors.ts";
import { HookRegistry, type RemovableHandle } from "./hooks.ts";
import { defaultOptions, validateOptions, type NadamOptions } from "./options.ts";
import { buildParamGroup, groupInputs, type ParamGroup, type ParamGroupInput, type ParamsInput } from "./param-groups.ts";
import { pyStr } from "./python.ts";
import type { ParamState, StateDict } from "../../tensor/state-dict.ts";
import { packStateDict, unpackStateDict, type StateKey } from "./state-dict.ts";

export type StepArgs = unknown[];
export type StepKwargs = Record<string, unknown>;
/** hook(optimizer, args, kwargs); args[0] is the optimizer, args[1] the closure if one was passed. */
export type StepPreHook = (optimizer: NAdam, args: StepArgs, kwargs: StepKwargs) => void | null | undefined | [StepArgs, StepKwargs];
export type StepPostHook = (optimizer: NAdam, args: StepArgs, kwargs: StepKwargs) => unknown;
export type StateDictPreHook = (optimizer: NAdam) => unknown;
export type StateDictPostHook = (optimizer: NAdam, stateDict: StateDict) => StateDict | void | null | undefined;
export type LoadStateDictPreHook = (optimizer: NAdam, stateDict: StateDict) => StateDict | void | null | undefined;
export type LoadStateDictPostHook = (optimizer: NAdam) => unknown;

const globalStepPreHooks = new HookRegistry<StepPreHook>();
const globalStepPostHooks = new HookRegistry<StepPostHook>();

/** torch.optim.optimizer.register_optimizer_step_pre_hook: runs before every optimizer's step. */
export function registerOptimizerStepPreHook(hook: StepPreHook): RemovableHandle {
  return globalStepPreHooks.add(hook);
}

/** torch.optim.optimizer.register_optimizer_step_post_hook */
export function registerOptimizerStepPostHook(hook: StepPostHook): RemovableHandle {
  return globalStepPostHooks.add(hook);
}

/** NAdam's state keys, in the order PyTorch creates them. */
const STATE_KEYS = ["step", "mu_product", "exp_avg", "exp_avg_sq"] as const;

/** Whether a state entry has no key (as Object.keys(entry).length === 0, without an array per call). */
function isEmpty(entry: object): boolean {
  for (const key in entry) if (Object.hasOwn(entry, key)) return false;
  return true;
}

/**
 * sameValue for a plan's numbers, which are never NaN (plan() refuses NaN): small
 * enough that the engine always inlines it, where sameValue, past prepareStep's
 * inlining budget, is a call that boxes each number handed to it (96 B a step).
 */
function samePlanNumber(a: unknown, b: unknown): boolean {
  return a === b && (a !== 0 || 1 / (a as number) === 1 / (b as number));
}

/** Where a param is, for an error's message. */
function where(g: number, i: number): string {
  return `param_groups[${g}].params[${i}]`;
}

/**
 * The group options a plan is made from, besides lr, betas and the numbers eps,
 * weight_decay and momentum_decay (read by name: a number field read by a
 * computed key is boxed, an allocation per read; these are booleans or None).
 */
const PLAN_KEYS = ["foreach", "differentiable", "capturable", "decoupled_weight_decay", "maximize"] as const;

/**
 * A group's checked hyper-parameters and code path, and the values they were
 * made from: the same values (Object.is) make the same plan, or the same error,
 * so a group whose values did not change is not checked again. A tensor lr is
 * read anew each step (its value may change in place).
 */
class GroupPlan {
  private readonly lr: unknown;
  private readonly betas: unknown;
  private readonly beta1: unknown;
  private readonly beta2: unknown;
  private readonly betasLength: unknown;
  private readonly eps: unknown;
  private readonly weightDecay: unknown;
  private readonly momentumDecay: unknown;
  private readonly values: unknown[];
  /** The group's last unit of work (NAdam.groupStep). */
  work: GroupStep<unknown> | undefined;
  /** Whether this step's params with grads, their grads and complete state entries are `work`'s, as prepareStep found them. */
  unchanged = false;
  /**
   * Per state entry of `work`, its step, mu_product, exp_avg and exp_avg_sq as
   * last found complete: the same four values are tensors still, so an entry
   * that holds them needs no isTensor call.
   */
  stateTensors: unknown[] = [];

  constructor(group: ParamGroup, readonly path: CodePath, readonly hyper: NadamHyperParameters) {
    this.lr = group.lr;
    const betas = group.betas as unknown as ArrayLike<unknown>;
    this.betas = betas;
    this.betasLength = betas.length;
    this.beta1 = betas[0];
    this.beta2 = betas[1];
    this.eps = group.eps;
    this.weightDecay = group.weight_decay;
    this.momentumDecay = group.momentum_decay;
    this.values = PLAN_KEYS.map((key) => group[key]);
  }

  madeFrom(group: ParamGroup): boolean {
    if (this.hyper.lr_is_tensor || !samePlanNumber(group.lr, this.lr) || group.betas !== this.betas) return false;
    const betas = group.betas as unknown as ArrayLike<unknown>;
    if (betas.length !== this.betasLength || !samePlanNumber(betas[0], this.beta1) || !samePlanNumber(betas[1], this.beta2)) return false;
    if (!samePlanNumber(group.eps, this.eps) || !samePlanNumber(group.weight_decay, this.weightDecay) || !samePlanNumber(group.momentum_decay, this.momentumDecay)) return false;
    for (let k = 0; k < PLAN_KEYS.length; k++) if (!sameValue(group[PLAN_KEYS[k]!], this.values[k])) return false;
    return true;
  }
}

export interface NadamConfig {
  /** Default: impl/backends/index.ts's defaultBackend() (typed arrays, vectorized profile). */
  readonly backend?: NadamBackend<unknown>;
  /** torch.get_default_dtype(): the dtype of new `step` / `mu_product` tensors. Default float32. */
  readonly defaultDtype?: "float32" | "float64";
}

function unpackBetas(betas: unknown): [number, number] {
  const list = betas as number[];
  if (list.length > 2) throw new ValueError("too many values to unpack (expected 2)");
  if (list.length < 2) throw new ValueError(`not enough values to unpack (expected 2, got ${list.length})`);
  return [list[0]!, list[1]!];
}

export class NAdam {
  readonly defaults: NadamOptions;
  paramGroups: ParamGroup[] = [];
  /** optimizer.state: per param (or per unmatched saved id), NAdam's state entries. */
  state = new Map<StateKey, ParamState>();
  readonly backend: NadamBackend<unknown>;
  readonly defaultDtype: "float32" | "float64";

  private readonly stepPreHooks = new HookRegistry<StepPreHook>();
  private readonly stepPostHooks = new HookRegistry<StepPostHook>();
  private readonly stateDictPreHooks = new HookRegistry<StateDictPreHook>();
  private readonly stateDictPostHooks = new HookRegistry<StateDictPostHook>();
  private readonly loadStateDictPreHooks = new HookRegistry<LoadStateDictPreHook>();
  private readonly loadStateDictPostHooks = new HookRegistry<LoadStateDictPostHook>();

  constructor(params: ParamsInput, options: Partial<NadamOptions> = {}, config: NadamConfig = {}) {
    const defaults = { ...defaultOptions(), ...options };
    validateOptions(defaults);
    this.defaults = defaults;
    this.backend = config.backend ?? defaultBackend();
    this.defaultDtype = config.defaultDtype ?? "float32";
    for (const group of groupInputs(params)) this.addParamGroup(group);
  }

  addParamGroup(group: ParamGroupInput): void {
    this.paramGroups.push(buildParamGroup(group, this.defaults, this.paramGroups));
  }

  registerStepPreHook(hook: StepPreHook): RemovableHandle {
    return this.stepPreHooks.add(hook);
  }
  registerStepPostHook(hook: StepPostHook): RemovableHandle {
    return this.stepPostHooks.add(hook);
  }
  registerStateDictPreHook(hook: StateDictPreHook, prepend = false): RemovableHandle {
    return this.stateDictPreHooks.add(hook, prepend);
  }
  registerStateDictPostHook(hook: StateDictPostHook, prepend = false): RemovableHandle {
    return this.stateDictPostHooks.add(hook, prepend);
  }
  registerLoadStateDictPreHook(hook: LoadStateDictPreHook, prepend = false): RemovableHandle {
    return this.loadStateDictPreHooks.add(hook, prepend);
  }
  registerLoadStateDictPostHook(hook: LoadStateDictPostHook, prepend = false): RemovableHandle {
    return this.loadStateDictPostHooks.add(hook, prepend);
  }

  /** zero_grad(set_to_none=True) */
  zeroGrad(setToNone = true): void {
    for (const group of this.paramGroups) {
      for (const p of group.params) {
        if (p.grad === null) continue;
        if (setToNone) p.grad = null;
        else p.grad.zero_();
      }
    }
  }

  /**
   * state_dict(): ids over groups in order; the state as host tensors — the live
   * state tensors themselves on a host backend, as PyTorch returns them.
   */
  stateDict(): StateDict {
    const backend = this.syncBackend("stateDict", "stateDictAsync");
    for (const hook of this.stateDictPreHooks.hooks()) hook(this);
    return this.packed((t) => backend.toHost(t));
  }

  /** state_dict() for any backend: waits for a device's state to reach the host. */
  async stateDictAsync(): Promise<StateDict> {
    for (const hook of this.stateDictPreHooks.hooks()) hook(this);
    const hosts = new Map<unknown, Tensor>();
    for (const entry of this.state.values()) {
      for (const key of STATE_KEYS) {
        const value = entry[key];
        if (this.backend.isTensor(value) && !hosts.has(value)) hosts.set(value, await this.backend.toHost(value));
      }
    }
    return this.packed((t) => hosts.get(t)!);
  }

  /** The state dict with the backend's state tensors as host tensors, through the post-hooks. */
  private packed(toHost: (tensor: unknown) => Tensor): StateDict {
    const state = new Map<StateKey, ParamState>();
    for (const [key, entry] of this.state) {
      // The entry itself when its tensors already live on the host (PyTorch hands out the live dicts).
      let host = entry;
      for (const name of STATE_KEYS) {
        if (!this.backend.isTensor(entry[name])) continue;
        const tensor = toHost(entry[name]);
        if (tensor === entry[name]) continue;
        if (host === entry) host = { ...entry };
        host[name] = tensor;
      }
      state.set(key, host);
    }
    let stateDict = packStateDict(this.paramGroups, state);
    for (const hook of this.stateDictPostHooks.hooks()) {
      const replaced = hook(this, stateDict);
      if (replaced !== undefined && replaced !== null) stateDict = replaced;
    }
    return stateDict;
  }

  /**
   * load_state_dict(): PyTorch's checks, casts and defaults for older state dicts;
   * the loaded tensors become the backend's. Unlike PyTorch, a state dict that
   * fails a check leaves the optimizer exactly as it was.
   */
  loadStateDict(stateDict: StateDict): void {
    let sd: StateDict = { ...stateDict };
    for (const hook of this.loadStateDictPreHooks.hooks()) {
      const replaced = hook(this, sd);
      if (replaced !== undefined && replaced !== null) sd = replaced;
    }
    const { groups, state } = unpackStateDict(sd, this.paramGroups, this.defaultDtype);
    const owned = new Map<StateKey, ParamState>();
    for (const [key, entry] of state) {
      if (!(key instanceof Tensor)) {
        owned.set(key, entry); // an id that matched no param: kept as loaded, re-emitted by stateDict()
        continue;
      }
      const converted: ParamState = { ...entry };
      for (const name of STATE_KEYS) if (entry[name] instanceof Tensor) converted[name] = this.backend.fromHost(entry[name]);
      owned.set(key, converted);
    }
    this.paramGroups = groups;
    this.state = owned;
    for (const hook of this.loadStateDictPostHooks.hooks()) hook(this);
  }

  /** step(closure=None): hooks around one update of every group; returns the closure's loss. */
  step(closure?: () => unknown): unknown {
    const backend = this.syncBackend("step", "stepAsync");
    if (this.hasNoPreHooks()) {
      // (no pre-hook can replace the closure or the arguments: the post-hooks, if any, get the defaults)
      const loss = closure?.();
      const work = this.prepareStep();
      for (let k = 0; k < work.length; k++) backend.stepGroup(work[k]!);
      if (this.stepPostHooks.size + globalStepPostHooks.size > 0) this.runStepPostHooks(closure === undefined ? [this] : [this, closure], {});
      return loss;
    }
    const { args, kwargs } = this.runStepPreHooks(closure);
    const loss = this.closureOf(args, kwargs)?.();
    for (const work of this.prepareStep()) backend.stepGroup(work);
    this.runStepPostHooks(args, kwargs);
    return loss;
  }

  /** step(closure) for any backend; the closure may be async. */
  async stepAsync(closure?: () => unknown): Promise<unknown> {
    if (!this.backend.asynchronous && closure === undefined && this.hasNoPreHooks()) {
      // (step()'s work without an await: a synchronous backend has nothing to wait for)
      return this.step();
    }
    const { args, kwargs } = this.runStepPreHooks(closure);
    const loss = await this.closureOf(args, kwargs)?.();
    for (const work of this.prepareStep()) await this.backend.stepGroup(work);
    this.runStepPostHooks(args, kwargs);
    return loss;
  }

  private hasNoPreHooks(): boolean {
    return globalStepPreHooks.size + this.stepPreHooks.size === 0;
  }

  private syncBackend(method: string, asyncMethod: string): SyncBackend<unknown> {
    if (this.backend.asynchronous) {
      throw new RuntimeError(`the ${this.backend.name} backend is asynchronous: use \`await optimizer.${asyncMethod}()\` instead of ${method}()`);
    }
    return this.backend;
  }

  private runStepPreHooks(closure: (() => unknown) | undefined): { args: StepArgs; kwargs: StepKwargs } {
    let args: StepArgs = closure === undefined ? [this] : [this, closure];
    let kwargs: StepKwargs = {};
    for (const hook of [...globalStepPreHooks.hooks(), ...this.stepPreHooks.hooks()]) {
      const result = hook(this, args, kwargs);
      if (result === undefined || result === null) continue;
      if (Array.isArray(result) && result.length === 2) {
        [args, kwargs] = result;
        continue;
      }
      throw new RuntimeError(`<function NAdam.step> must return None or a tuple of (new_args, new_kwargs), but got ${pyStr(result)}.`);
    }
    return { args, kwargs };
  }

  private runStepPostHooks(args: StepArgs, kwargs: StepKwargs): void {
    for (const hook of [...this.stepPostHooks.hooks(), ...globalStepPostHooks.hooks()]) hook(this, args, kwargs);
  }

  /** The closure a pre-hook may have replaced: args[1], or kwargs.closure. */
  private closureOf(args: StepArgs, kwargs: StepKwargs): (() => unknown) | undefined {
    return (args[1] ?? kwargs.closure) as (() => unknown) | undefined;
  }

  /**
   * The body of NAdam.step up to the arithmetic: every group's hyper-parameters,
   * grads and state checked, and what the backend cannot run refused, before any
   * value changes; then the lazy state, and one unit of work per group with grads.
   * This runs for every step: it allocates only when something changed since the
   * last step (a group's values, a grad, a state entry), and otherwise hands the
   * backend the very same (never mutated) work.
   */
  private prepareStep(): readonly GroupStep<unknown>[] {
    const groups = this.paramGroups;
    let checkedEntries = 0;
    const plans = this.groupPlans;
    for (let g = 0; g < groups.length; g++) plans[g] = this.planOf(groups[g]!, g);
    plans.length = groups.length;
    for (let g = 0; g < groups.length; g++) {
      const plan = plans[g]!;
      const { supports } = this.backend;
      // (checkSupported names the first param it fails on; what depends on the group alone is asked once here)
      const groupSupported = supports.paths.includes(plan.path) && (!plan.hyper.lr_is_tensor || supports.features.includes("tensor-lr")) &&
        (!plan.hyper.differentiable || supports.features.includes("differentiable"));
      let supportedDtype: string | undefined;
      const params = groups[g]!.params;
      // a param and grad at the same place in the last work under this plan passed checkGrad and checkSupported then, and
      // neither can fail now: a Tensor's dtype and shape are readonly (the shape frozen), and the plan is the same
      const last = plan.work;
      let unchanged = last !== undefined;
      let count = 0;
      for (let i = 0; i < params.length; i++) {
        const p = params[i]!;
        if (p.grad === null) continue;
        const checked = last !== undefined && count < last.params.length && last.params[count] === p && last.grads[count] === p.grad;
        if (!checked) {
          this.checkGrad(p, g, i);
          if (!groupSupported || p.dtype !== supportedDtype) {
            this.checkSupported(p, plan, g, i);
            supportedDtype = p.dtype;
          }
        }
        // the usual case: the last step's entry, holding the tensors it held then
        const found = checked ? this.state.get(p) : undefined;
        const known = plan.stateTensors;
        let entry: NadamState<unknown> | undefined;
        if (found !== undefined && (found as unknown) === last!.states[count] && found.step === known[4 * count] && found.mu_product === known[4 * count + 1] &&
          found.exp_avg === known[4 * count + 2] && found.exp_avg_sq === known[4 * count + 3]) {
          entry = found as unknown as NadamState<unknown>;
        } else {
          entry = this.checkState(p);
          if (entry !== undefined && checked && last!.states[count] === entry) {
            known[4 * count] = entry.step;
            known[4 * count + 1] = entry.mu_product;
            known[4 * count + 2] = entry.exp_avg;
            known[4 * count + 3] = entry.exp_avg_sq;
          }
        }
        this.entries[checkedEntries++] = entry;
        unchanged &&= checked && entry !== undefined && last!.states[count] === entry;
        count++;
      }
      plan.unchanged = unchanged && count === last!.params.length;
    }
    this.entries.length = checkedEntries;
    this.nextEntry = 0;
    let work = this.work;
    let count = 0;
    for (let g = 0; g < groups.length; g++) {
      const step = this.groupStep(groups[g]!, plans[g]!);
      if (step === undefined) continue;
      if (work[count] !== step) {
        if (work === this.work) work = work.slice(0, count);
        work[count] = step;
      }
      count++;
    }
    if (count !== work.length) work = work.slice(0, count);
    return (this.work = work);
  }

  /** The work of the last step, reused while nothing in it changes. */
  private work: GroupStep<unknown>[] = [];
  /** The complete state entry of each param with a grad (undefined where it had none), in step order, as checkState found it; groupStep's place in them. */
  private readonly entries: (NadamState<unknown> | undefined)[] = [];
  private nextEntry = 0;
  /** This step's plan of each group, in order. */
  private readonly groupPlans: GroupPlan[] = [];
  /** Per group: its checked plan, and the values it was made from (a plan is a function of them alone). */
  private readonly plans = new WeakMap<ParamGroup, GroupPlan>();

  /** A group's plan: the last one while the group's values are the same ones (Object.is), else checked anew. */
  private planOf(group: ParamGroup, index: number): GroupPlan {
    const last = this.plans.get(group);
    if (last !== undefined && last.madeFrom(group)) return last;
    const plan = this.plan(group, index);
    this.plans.set(group, plan);
    return plan;
  }

  private plan(group: ParamGroup, index: number): GroupPlan {
    for (const key of ["lr", "betas", "eps", "weight_decay", "momentum_decay"] as const) {
      if (!(key in group)) throw new KeyError(`'${key}'`);
    }
    const [beta1, beta2] = unpackBetas(group.betas);
    const lr = group.lr instanceof Tensor ? group.lr.item() : group.lr;
    const numbers = { lr, beta1, beta2, eps: group.eps, weight_decay: group.weight_decay, momentum_decay: group.momentum_decay };
    for (const [key, value] of Object.entries(numbers)) {
      if (typeof value !== "number" || Number.isNaN(value)) throw new ValueError(`param_groups[${index}]: ${key} is ${pyStr(value)}, not a number`);
    }
    const foreach = group.foreach ?? (this.backend.device !== "cpu" && !group.differentiable);
    if (foreach && group.differentiable) throw new AssertionError("_foreach ops don't support autograd");
    if (group.capturable && this.backend.device === "cpu") {
      throw new AssertionError(
        foreach
          ? "If capturable=True, params, mu_products, and state_steps must be on supported devices: ['cuda', 'xpu', 'hpu', 'privateuseone']."
          : "If capturable=True, params, mu_products and state_steps must be on supported devices: ['cuda', 'xpu', 'hpu', 'privateuseone', 'xla'].",
      );
    }
    return new GroupPlan(group, foreach ? "foreach" : "forloop", {
      lr,
      lr_is_tensor: group.lr instanceof Tensor,
      betas: [beta1, beta2],
      eps: group.eps,
      weight_decay: group.weight_decay,
      momentum_decay: group.momentum_decay,
      decoupled_weight_decay: Boolean(group.decoupled_weight_decay),
      maximize: Boolean(group.maximize),
      differentiable: Boolean(group.differentiable),
    });
  }

  /** A grad must match its param's shape and dtype (PyTorch fails inside the kernels, midway). */
  private checkGrad(p: Tensor, g: number, i: number): void {
    const grad = p.grad!;
    // (the place is spelled out only for an error: this runs for every param of every step)
    if (!(grad instanceof Tensor)) throw new ValueError(`${where(g, i)}: grad is not a Tensor`);
    if (grad.dtype !== p.dtype) throw new ValueError(`${where(g, i)}: grad has dtype ${grad.dtype}, the param ${p.dtype}`);
    if (grad.shape === p.shape) return;
    let sameShape = grad.shape.length === p.shape.length;
    for (let k = 0; sameShape && k < p.shape.length; k++) sameShape = grad.shape[k] === p.shape[k];
    if (!sameShape) throw new ValueError(`${where(g, i)}: grad has shape [${grad.shape.join(", ")}], the param [${p.shape.join(", ")}]`);
  }

  /** What the backend cannot run is refused by name, before anything changes. */
  private checkSupported(p: Tensor, plan: GroupPlan, g: number, i: number): void {
    const { supports } = this.backend;
    if (!supports.dtypes.includes(p.dtype)) this.lacks(g, i, `${p.dtype} params`, supports.dtypes);
    if (!supports.paths.includes(plan.path)) this.lacks(g, i, `${plan.path} path`, supports.paths);
    if (plan.hyper.lr_is_tensor && !supports.features.includes("tensor-lr")) this.lacks(g, i, "tensor lr", supports.features);
    if (plan.hyper.differentiable && !supports.features.includes("differentiable")) this.lacks(g, i, "differentiable branch", supports.features);
  }

  private lacks(g: number, i: number, what: string, has: readonly string[]): never {
    throw new RuntimeError(`${where(g, i)}: the ${this.backend.name} backend has no ${what} (it has ${has.join(", ") || "none"})`);
  }

  /**
   * A state entry that exists must be complete: PyTorch only initialises empty
   * ones. Returns the entry when complete; undefined when there is none or it is
   * empty (stateFor makes it then).
   */
  private checkState(p: Tensor): NadamState<unknown> | undefined {
    const entry = this.state.get(p);
    if (entry === undefined) return entry;
    // (the usual case first, without a loop over the keys)
    const backend = this.backend;
    if (backend.isTensor(entry.step) && backend.isTensor(entry.mu_product) && backend.isTensor(entry.exp_avg) && backend.isTensor(entry.exp_avg_sq)) return entry as unknown as NadamState<unknown>;
    if (isEmpty(entry)) return undefined;
    for (const key of STATE_KEYS) {
      if (!this.backend.isTensor(entry[key])) throw new KeyError(`'${key}'`);
    }
    return entry as unknown as NadamState<unknown>;
  }

  /** _init_group's lazy state: created by the backend on the first step with a grad. */
  private stateFor(p: Tensor): NadamState<unknown> {
    let entry = this.state.get(p);
    if (entry === undefined || isEmpty(entry)) {
      entry = { ...this.backend.initState(p, this.defaultDtype) };
      this.state.set(p, entry);
    }
    return entry as unknown as NadamState<unknown>;
  }

  /**
   * A group's unit of work (after its lazy state), or none without grads: its
   * last one when the params with grads, their grads and state entries and the
   * plan are the same ones, else a new one (a backend may keep what it was given).
   */
  private groupStep(group: ParamGroup, plan: GroupPlan): GroupStep<unknown> | undefined {
    const last = plan.work;
    if (plan.unchanged) {
      // (every entry complete: no stateFor to run, nothing to compare again)
      this.nextEntry += last!.params.length;
      return last;
    }
    let same = last !== undefined;
    let count = 0;
    const params = group.params;
    for (let i = 0; i < params.length; i++) {
      const p = params[i]!;
      if (p.grad === null) continue;
      // the complete entry checkState found: only stateFor changes entries, and only empty ones (or none)
      const state = this.entries[this.nextEntry++] ?? this.stateFor(p);
      if (same) same = count < last!.params.length && last!.params[count] === p && last!.grads[count] === p.grad && last!.states[count] === state;
      count++;
    }
    if (count === 0) return undefined;
    if (same && count === last!.params.length) return last;
    return this.newGroupStep(group, plan);
  }

  /**
   * groupStep's new unit of work. (A method of its own: its closures capture
   * `this`, and a function with such closures allocates their context at every
   * call, before any of them is made: in groupStep, an allocation every step.)
   */
  private newGroupStep(group: ParamGroup, plan: GroupPlan): GroupStep<unknown> {
    const withGrad = group.params.filter((p) => p.grad !== null);
    const states = withGrad.map((p) => this.stateFor(p));
    plan.work = { params: withGrad, grads: withGrad.map((p) => p.grad!), states, hyper: plan.hyper, path: plan.path };
    plan.stateTensors = states.flatMap((state) => [state.step, state.mu_product, state.exp_avg, state.exp_avg_sq]);
    return plan.work;
  }

  /** repr(optimizer) */
  toString(): string {
    const groups = this.paramGroups.map((group, i) => {
      const keys = Object.keys(group).filter((k) => k !== "params").sort();
      return `\nParameter Group ${i}\n` + keys.map((k) => `    ${k}: ${pyStr(group[k])}\n`).join("");
    });
    return `NAdam (${groups.join("")})`;
  }
}
