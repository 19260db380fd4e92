/**
 * The JSON encoding of a NAdam state_dict (spec/state-dict/schema.json): the
 * optimizer's StateDict with Tensors ⇄ plain JSON with {dtype, shape, data}
 * tensors (little-endian bytes, base64). Bit patterns survive: NaN, ±Inf and
 * -0 inside tensors are bytes; non-finite hyper-parameters are "inf", "-inf",
 * "nan".
 */
import type { DType } from "../spec/float/dtype.ts";
import type { StateDict } from "../tensor/state-dict.ts";
import { Tensor } from "../tensor/tensor.ts";
import { LazyTensor, LITTLE_ENDIAN_HOST, swapBytes, tensorFromLittleEndian, type Skeleton } from "./lazy.ts";


export const STATE_DICT_FORMAT = "nadam-state-dict/1";

export interface JsonTensor {
  dtype: DType;
  shape: number[];
  data: string;
}

export type JsonValue = null | boolean | number | string | JsonTensor | JsonValue[] | { [key: string]: JsonValue };

export interface JsonStateDict {
  format?: typeof STATE_DICT_FORMAT;
  state: Record<string, Record<string, JsonValue>>;
  param_groups: Record<string, JsonValue>[];
}

/** The tensor's elements as little-endian bytes (a complex element: real part, then imaginary part), a copy detached from the tensor. */
export function tensorBytes(t: Tensor): Buffer {
  const bytes = Buffer.from(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  if (!LITTLE_ENDIAN_HOST) swapBytes(bytes, t.dtype);
  return bytes;
}

/** A tensor from little-endian bytes (copied); the caller has checked the length. */
export function tensorFromBytes(dtype: DType, shape: readonly number[], bytes: Uint8Array): Tensor {
  return tensorFromLittleEndian(dtype, shape, Buffer.from(bytes));
}

/** The keys of a tensor in the encoding, and nothing else: an object with more is not a tensor (validate.ts refuses it). */
const TENSOR_KEYS = ["data", "dtype", "shape"];

export function isJsonTensor(value: unknown): value is JsonTensor {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const keys = Object.keys(value).sort();
  return keys.length === TENSOR_KEYS.length && keys.every((k, i) => k === TENSOR_KEYS[i]);
}

/** An object that has a tensor's keys and more: neither a tensor nor anything else a state dict holds. */
export function looksLikeTensor(value: unknown): boolean {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !isJsonTensor(value) && TENSOR_KEYS.every((k) => Object.hasOwn(value, k));
}

/** Keys whose values are numbers in PyTorch (and so may be "inf" / "nan" in JSON). */
const NUMBER_KEYS = new Set(["lr", "eps", "weight_decay", "momentum_decay", "betas", "step", "mu_product", "initial_lr"]);

function encodeNumber(x: number): number | string {
  if (Number.isFinite(x)) return x;
  return Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf";
}

/** "inf", "-inf", "nan" as the numbers they stand for; anything else unchanged. */
export function decodeNumber(x: unknown): unknown {
  if (x === "inf") return Infinity;
  if (x === "-inf") return -Infinity;
  if (x === "nan") return NaN;
  return x;
}

/** A value's JSON encoding; a lazy tensor becomes what `lazy` makes of it. */
export function encodeValue(value: unknown, lazy?: (t: LazyTensor) => JsonValue): JsonValue {
  if (value instanceof Tensor) return { dtype: value.dtype, shape: [...value.shape], data: tensorBytes(value).toString("base64") };
  if (value instanceof LazyTensor) {
    if (lazy === undefined) throw new TypeError("a lazy tensor where a tensor in memory was expected");
    return lazy(value);
  }
  if (typeof value === "number") return encodeNumber(value);
  if (Array.isArray(value)) return value.map((v) => encodeValue(v, lazy));
  if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, encodeValue(v, lazy)]));
  if (value === undefined) return null;
  return value as JsonValue;
}

/** Decode a JSON value that passed the schema; `key` says whether strings may stand for numbers. */
export function decodeValue(value: unknown, key?: string): unknown {
  if (isJsonTensor(value)) {
    const bytes = Buffer.from(value.data, "base64");
    return tensorFromBytes(value.dtype, value.shape, bytes);
  }
  if (Array.isArray(value)) return value.map((v) => decodeValue(v, key === "betas" ? key : undefined));
  if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, decodeValue(v, k)]));
  return key !== undefined && NUMBER_KEYS.has(key) ? decodeNumber(value) : value;
}

export function stateDictToJson(stateDict: StateDict): JsonStateDict {
  const state: JsonStateDict["state"] = {};
  for (const [id, entry] of Object.entries(stateDict.state)) state[id] = encodeValue(entry) as Record<string, JsonValue>;
  return { format: STATE_DICT_FORMAT, state, param_groups: stateDict.param_groups.map((g) => encodeValue(g) as Record<string, JsonValue>) };
}

/**
 * A skeleton's JSON encoding, each lazy tensor a {dtype, shape, data} whose
 * data is `data(t)` (default: empty, for checks of the structure), and those
 * objects mapped back to their tensors.
 */
export function skeletonToJson(skeleton: Skeleton, data: (t: LazyTensor) => string = () => ""): { json: JsonStateDict; sources: Map<object, LazyTensor> } {
  const sources = new Map<object, LazyTensor>();
  const lazy = (t: LazyTensor): JsonTensor => {
    const placeholder: JsonTensor = { dtype: t.dtype, shape: [...t.shape], data: data(t) };
    sources.set(placeholder, t);
    return placeholder;
  };
  const state: JsonStateDict["state"] = {};
  for (const [id, entry] of Object.entries(skeleton.state)) state[id] = encodeValue(entry, lazy) as Record<string, JsonValue>;
  const json: JsonStateDict = { format: STATE_DICT_FORMAT, state, param_groups: skeleton.param_groups.map((g) => encodeValue(g, lazy) as Record<string, JsonValue>) };
  return { json, sources };
}

/** The optimizer's StateDict from JSON that validate.ts accepted. */
export function stateDictFromJson(json: JsonStateDict): StateDict {
  const state: StateDict["state"] = {};
  for (const [id, entry] of Object.entries(json.state)) state[Number(id)] = decodeValue(entry) as Record<string, unknown>;
  return { state, param_groups: json.param_groups.map((g) => decodeValue(g) as StateDict["param_groups"][number]) };
}
