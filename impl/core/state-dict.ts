/**
 * state_dict() and load_state_dict() as PyTorch defines them (torch 2.6,
 * Optimizer.state_dict / load_state_dict / NAdam.__setstate__), as pure
 * functions: packing reads the optimizer, unpacking builds the new groups and
 * state without touching it, so that a load either applies whole or not at all.
 */
import { DTYPE } from "../../spec/float/dtype.ts";
import { deepCopy, type PackedGroup, type ParamState, type StateDict } from "../../tensor/state-dict.ts";
import { Tensor } from "../../tensor/tensor.ts";
import { KeyError, ValueError } from "./errors.ts";
import type { ParamGroup } from "./param-groups.ts";

/** state keys: a param, or the integer id of a saved entry that matched no param (kept, re-emitted). */
export type StateKey = Tensor | number;

/** state_dict(): integer ids over all groups in order; live state objects, as PyTorch returns them. */
export function packStateDict(groups: readonly ParamGroup[], state: ReadonlyMap<StateKey, ParamState>): StateDict {
  const ids = new Map<Tensor, number>();
  let start = 0;
  const param_groups = groups.map((group) => {
    const packed: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(group)) if (key !== "params") packed[key] = value;
    // A param repeated within a group gets the id of its last position (PyTorch's dict comprehension).
    const fresh = new Map<Tensor, number>();
    group.params.forEach((p, i) => {
      if (!ids.has(p)) fresh.set(p, start + i);
    });
    for (const [p, id] of fresh) ids.set(p, id);
    packed.params = group.params.map((p) => ids.get(p)!);
    start += group.params.length;
    return packed as PackedGroup;
  });
  const packedState: Record<number, ParamState> = {};
  for (const [key, value] of state) packedState[key instanceof Tensor ? ids.get(key)! : key] = value;
  return { state: packedState, param_groups };
}

/**
 * _process_value_according_to_param_policy: every tensor but `step` follows a
 * floating-point param's dtype; a complex param's state is not cast.
 */
function castValue(param: Tensor, value: unknown, groupIsCapturable: boolean, key?: string): unknown {
  if (value instanceof Tensor) {
    if (key === "step") return groupIsCapturable ? value.to("float32") : value;
    if (DTYPE[param.dtype].complex) return value;
    return value.to(param.dtype); // the same object when the dtype already matches (aliased, as in PyTorch)
  }
  if (Array.isArray(value)) return value.map((v) => castValue(param, v, groupIsCapturable));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, castValue(param, v, groupIsCapturable, k)]));
  }
  return value;
}

const HYPER_KEYS = ["lr", "eps", "weight_decay", "momentum_decay"] as const;

/**
 * What PyTorch does not check but a bad checkpoint must not get past: NaN
 * hyper-parameters and state tensors whose shapes do not fit their param.
 * Each message names the path in the state dict.
 */
function checkLoadable(savedGroups: readonly PackedGroup[], idToParam: ReadonlyMap<number, Tensor>, state: Record<string, unknown>): void {
  savedGroups.forEach((group, g) => {
    for (const key of HYPER_KEYS) {
      const value = group[key];
      const number = value instanceof Tensor ? (value.numel === 1 ? value.item() : NaN) : value;
      if (key in group && (typeof number !== "number" || Number.isNaN(number))) {
        throw new ValueError(`loaded state dict has param_groups[${g}].${key} = ${String(value)}; expected a number`);
      }
    }
    const betas = group.betas;
    if ("betas" in group && (!Array.isArray(betas) || betas.some((b) => typeof b !== "number" || Number.isNaN(b)))) {
      throw new ValueError(`loaded state dict has param_groups[${g}].betas = ${JSON.stringify(betas)}; expected two numbers`);
    }
  });
  for (const [key, entry] of Object.entries(state)) {
    const param = idToParam.get(Number(key));
    if (param === undefined || entry === null || typeof entry !== "object") continue;
    for (const name of ["exp_avg", "exp_avg_sq"]) {
      const t = (entry as Record<string, unknown>)[name];
      if (t !== undefined && !(t instanceof Tensor && t.shape.length === param.shape.length && t.shape.every((d, i) => d === param.shape[i]))) {
        const got = t instanceof Tensor ? `shape [${t.shape.join(", ")}]` : typeof t;
        throw new ValueError(`loaded state dict has state[${key}].${name} of ${got}; its param has shape [${param.shape.join(", ")}]`);
      }
    }
    for (const name of ["step", "mu_product"]) {
      const t = (entry as Record<string, unknown>)[name];
      if (t !== undefined && !(typeof t === "number" || (t instanceof Tensor && t.numel === 1))) {
        throw new ValueError(`loaded state dict has state[${key}].${name} that is neither a number nor a one-element tensor`);
      }
    }
  }
}

export interface UnpackedState {
  readonly groups: ParamGroup[];
  readonly state: Map<StateKey, ParamState>;
}

/** load_state_dict()'s work after its pre-hooks, up to (not including) the assignment. */
export function unpackStateDict(stateDict: StateDict, groups: readonly ParamGroup[], scalarDtype: "float32" | "float64"): UnpackedState {
  if (stateDict === null || typeof stateDict !== "object") throw new ValueError(`a state dict must be an object, got ${String(stateDict)}`);
  if (!("param_groups" in stateDict)) throw new KeyError("'param_groups'");
  if (!("state" in stateDict)) throw new KeyError("'state'");
  if (!Array.isArray(stateDict.param_groups)) throw new ValueError("loaded state dict's param_groups is not a list");
  stateDict.param_groups.forEach((group, g) => {
    if (typeof group === "object" && group !== null && Object.hasOwn(group, "__proto__")) throw new ValueError(`loaded state dict has a '__proto__' key in param_groups[${g}]; a JavaScript object would take it as its prototype`);
  });
  const savedGroups = deepCopy(stateDict.param_groups);
  if (groups.length !== savedGroups.length) throw new ValueError("loaded state dict has a different number of parameter groups");
  savedGroups.forEach((saved, g) => {
    if (!Array.isArray(saved.params) || saved.params.length !== groups[g]!.params.length) {
      throw new ValueError("loaded state dict contains a parameter group that doesn't match the size of optimizer's group");
    }
  });
  const idToParam = new Map<number, Tensor>();
  const idToGroup = new Map<number, PackedGroup>();
  savedGroups.forEach((saved, g) =>
    saved.params.forEach((id, i) => {
      idToParam.set(id, groups[g]!.params[i]!);
      idToGroup.set(id, saved);
    }),
  );
  const savedState = stateDict.state as Record<string, unknown>;
  checkLoadable(savedGroups, idToParam, savedState);

  const state = new Map<StateKey, ParamState>();
  for (const [key, value] of Object.entries(savedState)) {
    const id = Number(key);
    const param = idToParam.get(id);
    if (param === undefined) {
      state.set(id, value as ParamState);
      continue;
    }
    const group = idToGroup.get(id)!;
    const cast = castValue(param, value, Boolean(group.capturable) || Boolean(group.fused)) as ParamState;
    // NAdam.__setstate__: Python numbers become 0-d tensors of the default scalar dtype.
    for (const name of ["step", "mu_product"]) {
      if (typeof cast[name] === "number") cast[name] = Tensor.scalar(cast[name] as number, scalarDtype);
    }
    state.set(param, cast);
  }

  const newGroups = savedGroups.map((saved, g) => {
    const current = groups[g]!;
    const group: Record<string, unknown> = { ...saved, params: current.params };
    if (!("param_names" in saved) && current.param_names !== undefined) group.param_names = current.param_names;
    // NAdam.__setstate__ defaults for state dicts saved by older PyTorch.
    for (const [key, value] of [["maximize", false], ["foreach", null], ["capturable", false], ["differentiable", false], ["decoupled_weight_decay", false]] as const) {
      if (!(key in group)) group[key] = value;
    }
    return group as ParamGroup;
  });
  return { groups: newGroups, state };
}
