/**
 * torch.optim.NAdam's API in TypeScript, over any NadamBackend: param groups,
 * add_param_group, state, state_dict / load_state_dict, the six hook kinds,
 * zero_grad and step(closure). The algorithm is spec/nadam/step.ts's; this
 * class is PyTorch's Optimizer machinery around it (torch 2.6).
 *
 * Names: methods are camelCase (`stateDict` for `state_dict`); option and state
 * keys keep PyTorch's spelling, since they appear verbatim in state dicts.
 */
import type { GroupHyperParameters, NadamBackend, NadamState } from "../backend.ts";
import { typedArrayBackend } from "../typed/backend.ts";
import { Tensor } from "../typed/tensor.ts";
import { AssertionError, KeyError, RuntimeError, ValueError } from "./errors.ts";
import { HookRegistry, type RemovableHandle } from "./hooks.ts";
import { defaultOptions, validateOptions, type NadamOptions } from "./options.ts";
import { buildParamGroup, groupInputs, type ParamGroup, type ParamGroupInput, type ParamsInput } from "./param-groups.ts";
import { pyStr } from "./python.ts";
import { packStateDict, unpackStateDict, type ParamState, type StateDict, type StateKey } from "./state-dict.ts";

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

export interface NadamConfig {
  /** Default: the typed-array backend, vectorized (AVX2) profile. */
  readonly backend?: NadamBackend;
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
  readonly backend: NadamBackend;
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
    this.backend = config.backend ?? typedArrayBackend();
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

  /** state_dict(): the live state objects (as in PyTorch), ids over groups in order. */
  stateDict(): StateDict {
    for (const hook of this.stateDictPreHooks.hooks()) hook(this);
    let stateDict = packStateDict(this.paramGroups, this.state);
    for (const hook of this.stateDictPostHooks.hooks()) {
      const replaced = hook(this, stateDict);
      if (replaced !== undefined && replaced !== null) stateDict = replaced;
    }
    return stateDict;
  }

  /**
   * load_state_dict(): PyTorch's checks, casts and defaults for older state dicts.
   * Unlike PyTorch, a state dict that fails a check leaves the optimizer exactly as it was.
   */
  loadStateDict(stateDict: StateDict): void {
    let sd: StateDict = { ...stateDict };
    for (const hook of this.loadStateDictPreHooks.hooks()) {
      const replaced = hook(this, sd);
      if (replaced !== undefined && replaced !== null) sd = replaced;
    }
    const { groups, state } = unpackStateDict(sd, this.paramGroups, this.defaultDtype);
    this.paramGroups = groups;
    this.state = state;
    for (const hook of this.loadStateDictPostHooks.hooks()) hook(this);
  }

  /** step(closure=None): hooks around one update of every group; returns the closure's loss. */
  step(closure?: () => unknown): unknown {
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
    const loss = this.update((args[1] ?? kwargs.closure) as (() => unknown) | undefined);
    for (const hook of [...this.stepPostHooks.hooks(), ...globalStepPostHooks.hooks()]) hook(this, args, kwargs);
    return loss;
  }

  /** The body of NAdam.step. */
  private update(closure: (() => unknown) | undefined): unknown {
    const loss = closure === undefined ? undefined : closure();
    // Every group's hyper-parameters are checked before any is updated, so that a
    // bad value (NaN, a 3-element betas) raises with the optimizer untouched.
    const plans = this.paramGroups.map((group, g) => this.plan(group, g));
    this.paramGroups.forEach((group, g) =>
      group.params.forEach((p, i) => {
        if (p.grad === null) return;
        this.checkGrad(p, `param_groups[${g}].params[${i}]`);
        this.checkState(p);
      }),
    );
    plans.forEach((plan, g) => {
      const group = this.paramGroups[g]!;
      const withGrad = group.params.filter((p) => p.grad !== null);
      if (withGrad.length === 0) return;
      const states = withGrad.map((p) => this.stateFor(p));
      this.backend.stepGroup({ params: withGrad, grads: withGrad.map((p) => p.grad!), states, hyper: plan.hyper, path: plan.foreach ? "foreach" : "forloop" });
    });
    return loss;
  }

  private plan(group: ParamGroup, index: number): { hyper: GroupHyperParameters; foreach: boolean } {
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
    return {
      foreach,
      hyper: {
        lr,
        lrIsTensor: group.lr instanceof Tensor,
        beta1,
        beta2,
        eps: group.eps,
        weight_decay: group.weight_decay,
        momentum_decay: group.momentum_decay,
        decoupled_weight_decay: Boolean(group.decoupled_weight_decay),
        maximize: Boolean(group.maximize),
        differentiable: Boolean(group.differentiable),
      },
    };
  }

  /** A grad must match its param's shape and dtype (PyTorch fails inside the kernels, midway). */
  private checkGrad(p: Tensor, where: string): void {
    const grad = p.grad!;
    if (!(grad instanceof Tensor)) throw new ValueError(`${where}: grad is not a Tensor`);
    if (grad.dtype !== p.dtype) throw new ValueError(`${where}: grad has dtype ${grad.dtype}, the param ${p.dtype}`);
    if (grad.shape.length !== p.shape.length || grad.shape.some((d, k) => d !== p.shape[k])) {
      throw new ValueError(`${where}: grad has shape [${grad.shape.join(", ")}], the param [${p.shape.join(", ")}]`);
    }
  }

  /** A state entry that exists must be complete: PyTorch only initialises empty ones. */
  private checkState(p: Tensor): void {
    const entry = this.state.get(p);
    if (entry === undefined || Object.keys(entry).length === 0) return;
    for (const key of ["step", "mu_product", "exp_avg", "exp_avg_sq"]) {
      if (!(entry[key] instanceof Tensor)) throw new KeyError(`'${key}'`);
    }
  }

  /** _init_group's lazy state: created on the first step with a grad. */
  private stateFor(p: Tensor): NadamState {
    let entry = this.state.get(p);
    if (entry === undefined || Object.keys(entry).length === 0) {
      entry = {
        step: Tensor.scalar(0, this.defaultDtype),
        mu_product: Tensor.scalar(1, this.defaultDtype),
        exp_avg: Tensor.zeros(p.shape, p.dtype),
        exp_avg_sq: Tensor.zeros(p.shape, p.dtype),
      };
      this.state.set(p, entry);
    }
    return entry as unknown as NadamState;
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
