/**
 * A NAdam state dict as values: what `optimizer.stateDict()` returns and
 * `loadStateDict()` takes, and what checkpoint/ reads and writes. PyTorch's
 * shape: `state` keyed by integer param ids, `param_groups` with the ids and
 * every option. Tensors in it are host tensors.
 */
import { Tensor } from "./tensor.ts";

/** A param's entry in a state dict: NAdam's four tensors, or whatever a loaded state dict brought. */
export type ParamState = Record<string, unknown>;

export interface PackedGroup {
  params: number[];
  param_names?: string[];
  [key: string]: unknown;
}

export interface StateDict {
  state: Record<number, ParamState>;
  param_groups: PackedGroup[];
}

/** copy.deepcopy of state-dict values: plain data, arrays, objects, tensors (cloned). */
export function deepCopy<T>(value: T): T {
  if (value instanceof Tensor) return value.clone() as T;
  if (Array.isArray(value)) return value.map(deepCopy) as T;
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, deepCopy(v)])) as T;
  }
  return value;
}
