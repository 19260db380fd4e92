/** The host tensor and the state-dict values every layer shares. */
export { Tensor } from "./tensor.ts";
export type { Storage } from "./tensor.ts";
export { deepCopy } from "./state-dict.ts";
export type { PackedGroup, ParamState, StateDict } from "./state-dict.ts";
