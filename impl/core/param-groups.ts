/**
 * Param groups as torch.optim.Optimizer builds them: the constructor's
 * reading of `params`, and add_param_group's checks and defaults
 * (torch 2.6, torch/optim/optimizer.py), with PyTorch's messages.
 */
import { Tensor } from "../../tensor/tensor.ts";
import { KeyError, PyTypeError, ValueError } from "./errors.ts";
import { OPTION_KEYS, type NadamOptions } from "./options.ts";
import { pyTypeName } from "./python.ts";

/** A param group as the optimizer holds it: params, optional names, every option. */
export type ParamGroup = NadamOptions & {
  params: Tensor[];
  param_names?: string[];
  [key: string]: unknown;
};

/** What a user passes for a group: params (tensors, or [name, tensor] pairs) and any options. */
export type ParamGroupInput = Partial<NadamOptions> & {
  params: Tensor | Iterable<Tensor> | Iterable<readonly [string, Tensor]>;
  [key: string]: unknown;
};

export type ParamsInput = Iterable<Tensor> | Iterable<readonly [string, Tensor]> | Iterable<ParamGroupInput>;

export function isNamedParam(x: unknown): x is readonly [string, Tensor] {
  return Array.isArray(x) && x.length === 2 && typeof x[0] === "string";
}

export function isGroupInput(x: unknown): x is ParamGroupInput {
  return typeof x === "object" && x !== null && !(x instanceof Tensor) && !Array.isArray(x);
}

export function warn(message: string): void {
  process.emitWarning(message, "UserWarning");
}

/** Optimizer.__init__'s reading of `params` into group inputs. */
export function groupInputs(params: ParamsInput): ParamGroupInput[] {
  if (params instanceof Tensor) {
    throw new PyTypeError(`params argument given to the optimizer should be an iterable of Tensors or dicts, but got ${pyTypeName(params)}`);
  }
  const list = [...(params as Iterable<unknown>)];
  if (list.length === 0) throw new ValueError("optimizer got an empty parameter list");
  if (!isGroupInput(list[0])) return [{ params: list as Tensor[] }];
  return list.map((g) => {
    if (!isGroupInput(g)) throw new PyTypeError(`param_group must be a dict, but got <class '${pyTypeName(g)}'>`);
    return g;
  });
}

/**
 * add_param_group's work, without touching the optimizer: the new group, filled
 * with defaults, or an error. `existing` are the optimizer's current groups.
 */
export function buildParamGroup(input: unknown, defaults: NadamOptions, existing: readonly ParamGroup[]): ParamGroup {
  if (!isGroupInput(input)) throw new PyTypeError(`param_group must be a dict, but got <class '${pyTypeName(input)}'>`);
  if (!("params" in input)) throw new KeyError("'params'");
  const raw = input.params;
  if (raw instanceof Set) {
    throw new PyTypeError("optimizer parameters need to be organized in ordered collections, but the ordering of tensors in sets will change between runs. Please use a list instead.");
  }
  const entries: unknown[] = raw instanceof Tensor ? [raw] : [...(raw as Iterable<unknown>)];
  const named = entries.filter(isNamedParam).length;
  if (named > 0 && named !== entries.length) {
    throw new ValueError("all optimizer params should be with/without names. Some param names are missing");
  }
  const params = entries.map((e) => (isNamedParam(e) ? e[1] : e));
  for (const p of params) {
    if (!(p instanceof Tensor)) throw new PyTypeError(`optimizer can only optimize Tensors, but one of the params is ${pyTypeName(p)}`);
  }
  // A Python dict takes any key; a JavaScript object takes "__proto__" as its prototype (an lr inherited, not its own), so it is refused.
  if (Object.hasOwn(input, "__proto__")) throw new ValueError("'__proto__' cannot be a param group key: a JavaScript object would take it as its prototype");
  // Key order: params, param_names, the group's own keys, then the missing defaults.
  const group: Record<string, unknown> = { params };
  if (named > 0) group.param_names = entries.map((e) => (e as [string, Tensor])[0]);
  for (const [key, value] of Object.entries(input)) if (key !== "params") group[key] = value;
  for (const key of OPTION_KEYS) if (!(key in group)) group[key] = defaults[key];

  if (new Set(params).size !== params.length) {
    warn("optimizer contains a parameter group with duplicate parameters; in future, this will cause an error; see github.com/pytorch/pytorch/issues/40967 for more information");
  }
  for (const other of existing) {
    if (("param_names" in group) !== ("param_names" in other && other.param_names !== undefined)) {
      const which = "param_names" in group ? "with" : "without";
      throw new ValueError(`all optimizer param groups should be with/without names. cannot add param group ${which} names to the optimizer`);
    }
  }
  const taken = new Set(existing.flatMap((g) => g.params));
  if (params.some((p) => taken.has(p as Tensor))) throw new ValueError("some parameters appear in more than one parameter group");
  return group as ParamGroup;
}
