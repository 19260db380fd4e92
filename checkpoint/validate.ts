/**
 * Is this JSON a NAdam state_dict? The schema (spec/state-dict/schema.json,
 * compiled beside it to schema.validate.js) first, then what a schema cannot
 * express. Every problem names its JSON pointer and what was expected. A state
 * dict of another optimizer is named as such rather than reported as a list of
 * missing keys.
 */
import { elementFromBits } from "../spec/float/codec.ts";
import { componentBytes, DTYPE } from "../spec/float/dtype.ts";
import validateSchema from "../spec/state-dict/schema.validate.js";
import { decodeNumber, isJsonTensor, looksLikeTensor, type JsonTensor } from "./json.ts";
import type { LazyTensor } from "./lazy.ts";

/**
 * The tensors of a state dict's JSON view that stand for tensors still in a
 * file (their `data` left empty): their byte counts were checked where they
 * lie, and scalars are read from there.
 */
export type TensorSources = ReadonlyMap<object, LazyTensor>;

export interface Problem {
  /** JSON pointer into the state dict ("" for the whole document). */
  readonly path: string;
  readonly message: string;
}


/** Largest tensor the checks accept: 2^31 elements (far beyond any optimizer state seen in practice). */
export const MAX_ELEMENTS = 2 ** 31;

/** A JSON pointer (RFC 6901) to the value at these keys. */
export function pointer(...parts: (string | number)[]): string {
  return parts.map((p) => `/${String(p).replace(/~/g, "~0").replace(/\//g, "~1")}`).join("");
}

function asNumber(value: unknown): number | undefined {
  const x = decodeNumber(value);
  return typeof x === "number" ? x : undefined;
}

/** Another torch.optim optimizer's state dict, recognised by keys NAdam never has. */
function otherOptimizer(groups: Record<string, unknown>[], states: Record<string, unknown>[]): string | null {
  const groupHas = (key: string) => groups.some((g) => key in g);
  const stateHas = (key: string) => states.some((s) => key in s);
  if (stateHas("mu_product") || groupHas("momentum_decay")) return null;
  if (stateHas("momentum_buffer") || groupHas("dampening") || groupHas("nesterov")) return "torch.optim.SGD's (param_groups have 'momentum'/'dampening'/'nesterov')";
  if (groupHas("amsgrad")) return "torch.optim.Adam's or AdamW's (param_groups have 'amsgrad'; state has no 'mu_product')";
  if (stateHas("exp_inf")) return "torch.optim.Adamax's (state has 'exp_inf')";
  if (stateHas("acc_delta")) return "torch.optim.Adadelta's (state has 'acc_delta')";
  if (stateHas("square_avg")) return "torch.optim.RMSprop's (state has 'square_avg')";
  if (stateHas("sum")) return "torch.optim.Adagrad's (state has 'sum')";
  if (groupHas("betas") && stateHas("exp_avg") && !groupHas("momentum_decay")) return "torch.optim.RAdam's or another Adam variant's (no 'momentum_decay', no 'mu_product')";
  return null;
}

function checkTensor(t: JsonTensor, path: string, problems: Problem[], sources: TensorSources): void {
  const big = t.shape.findIndex((d) => d > MAX_ELEMENTS);
  if (big >= 0) {
    // Even beside a 0 (no elements), a dimension this large is not written exactly, nor read by torch.
    problems.push({ path: `${path}/shape/${big}`, message: `is ${t.shape[big]}; a dimension is at most ${MAX_ELEMENTS}` });
    return;
  }
  let numel = 1;
  for (const d of t.shape) numel *= d;
  if (numel > MAX_ELEMENTS) {
    problems.push({ path: `${path}/shape`, message: `shape [${t.shape.join(", ")}] has ${numel} elements; at most ${MAX_ELEMENTS} are accepted` });
    return;
  }
  if (sources.has(t)) return;
  // base64: 4 characters per 3 bytes, less the padding.
  const padding = t.data.endsWith("==") ? 2 : t.data.endsWith("=") ? 1 : 0;
  const bytes = (t.data.length / 4) * 3 - padding;
  const expected = numel * DTYPE[t.dtype].itemSize;
  if (t.data.length % 4 !== 0 || bytes !== expected) {
    problems.push({ path: `${path}/data`, message: `holds ${Number.isInteger(bytes) ? bytes : "a non-whole number of"} bytes; shape [${t.shape.join(", ")}] of ${t.dtype} needs ${expected}` });
  }
}

/** Every object (tensors excepted) anywhere in a value, the value itself included. */
function eachObject(value: unknown, path: string, visit: (o: Record<string, unknown>, path: string) => void): void {
  if (isJsonTensor(value)) return;
  if (Array.isArray(value)) value.forEach((v, i) => eachObject(v, `${path}/${i}`, visit));
  else if (value !== null && typeof value === "object") {
    visit(value as Record<string, unknown>, path);
    for (const [k, v] of Object.entries(value)) eachObject(v, path + pointer(k), visit);
  }
}

/** Every tensor anywhere in a value. */
function eachTensor(value: unknown, path: string, visit: (t: JsonTensor, path: string) => void): void {
  if (isJsonTensor(value)) visit(value, path);
  else if (Array.isArray(value)) value.forEach((v, i) => eachTensor(v, `${path}/${i}`, visit));
  else if (value !== null && typeof value === "object") for (const [k, v] of Object.entries(value)) eachTensor(v, path + pointer(k), visit);
}

/** A 1-element tensor's value (any real dtype, 16-bit ones included) or a number; undefined when there is none to check. */
function scalarValue(value: unknown, sources: TensorSources): number | undefined {
  const source = typeof value === "object" && value !== null ? sources.get(value) : undefined;
  if (source !== undefined) return source.scalar();
  if (isJsonTensor(value)) {
    const bytes = Buffer.from(value.data, "base64");
    const info = DTYPE[value.dtype];
    if (info.complex || bytes.length !== info.itemSize) return undefined; // complex: refused by the caller; a wrong length: by checkTensor
    const size = componentBytes(value.dtype);
    const bits = size === 8 ? bytes.readBigUInt64LE(0) : BigInt(size === 4 ? bytes.readUInt32LE(0) : bytes.readUInt16LE(0));
    return elementFromBits(value.dtype, bits);
  }
  return asNumber(value);
}

function sameShape(a: JsonTensor, b: JsonTensor): boolean {
  return a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
}

/** The problems of a parsed JSON value as a NAdam state dict; [] when valid. */
export function validateStateDict(value: unknown, sources: TensorSources = new Map()): Problem[] {
  if (!validateSchema(value)) {
    return (validateSchema.errors ?? []).map((e) => {
      const params = e.params as Record<string, unknown>;
      if (e.keyword === "additionalProperties") return { path: e.instancePath, message: `has an unexpected key '${String(params.additionalProperty)}'` };
      if (e.keyword === "required") return { path: e.instancePath, message: `needs the key '${String(params.missingProperty)}'` };
      if (e.keyword === "propertyNames") return { path: e.instancePath, message: `has a key '${String(params.propertyName)}' that is not a param id (a non-negative integer)` };
      const allowed = "allowedValues" in params ? ` (${JSON.stringify(params.allowedValues)})` : "";
      return { path: e.instancePath, message: `${e.message ?? "is invalid"}${allowed}` };
    });
  }
  const sd = value as { state: Record<string, Record<string, unknown>>; param_groups: Record<string, unknown>[] };
  const other = otherOptimizer(sd.param_groups, Object.values(sd.state));
  if (other !== null) return [{ path: "", message: `not a NAdam state_dict: it looks like ${other}` }];

  const problems: Problem[] = [];
  eachTensor(sd, "", (t, path) => checkTensor(t, path, problems, sources));
  eachObject(sd, "", (o, path) => {
    if (looksLikeTensor(o)) problems.push({ path, message: `has a tensor's keys (dtype, shape, data) and ${Object.keys(o).filter((k) => !["dtype", "shape", "data"].includes(k)).map((k) => `'${k}'`).join(", ")}: neither a tensor nor anything else a state dict holds` });
    // A JavaScript object given this key takes it as its prototype.
    if (Object.hasOwn(o, "__proto__")) problems.push({ path: path + pointer("__proto__"), message: "is a key '__proto__', which a JavaScript object takes as its prototype; refused" });
  });
  for (const id of Object.keys(sd.state)) {
    if (!Number.isSafeInteger(Number(id))) problems.push({ path: pointer("state", id), message: `id ${id} is beyond 2^53 - 1: not an exact number` });
  }

  const owner = new Map<number, string>();
  sd.param_groups.forEach((group, g) => {
    const ids = group.params as number[];
    ids.forEach((id, i) => {
      const here = pointer("param_groups", g, "params", i);
      if (!Number.isSafeInteger(id)) problems.push({ path: here, message: `id ${id} is beyond 2^53 - 1: not an exact number` });
      const first = owner.get(id);
      if (first !== undefined) problems.push({ path: here, message: `id ${id} also appears at ${first}; every param has one id` });
      else owner.set(id, here);
    });
    const names = group.param_names as string[] | undefined;
    if (names !== undefined && names.length !== ids.length) {
      problems.push({ path: pointer("param_groups", g, "param_names"), message: `has ${names.length} names for ${ids.length} params` });
    }
    for (const key of ["lr", "betas", "eps", "weight_decay", "momentum_decay"]) {
      if (!(key in group)) problems.push({ path: pointer("param_groups", g), message: `has no '${key}'; NAdam's step() needs it` });
    }
    const ranges: [string, (x: number) => boolean, string][] = [
      ["lr", (x) => x >= 0, "a number >= 0"],
      ["eps", (x) => x >= 0, "a number >= 0"],
      ["weight_decay", (x) => x >= 0, "a number >= 0"],
      ["momentum_decay", (x) => x >= 0, "a number >= 0"],
    ];
    for (const [key, ok, expected] of ranges) {
      if (!(key in group)) continue;
      const x = isJsonTensor(group[key]) ? scalarValue(group[key], sources) : asNumber(group[key]);
      if (x !== undefined && !ok(x)) problems.push({ path: pointer("param_groups", g, key), message: `is ${x}; expected ${expected}` });
      if (isJsonTensor(group[key]) && DTYPE[(group[key] as JsonTensor).dtype].complex) problems.push({ path: pointer("param_groups", g, key), message: `is a ${(group[key] as JsonTensor).dtype} tensor; expected a real one` });
      if (isJsonTensor(group[key]) && (group[key] as JsonTensor).shape.reduce((a, b) => a * b, 1) !== 1) {
        problems.push({ path: pointer("param_groups", g, key), message: "is a tensor of more than one element; a tensor lr must have 1 element" });
      }
    }
    const betas = group.betas as unknown[] | undefined;
    if (betas !== undefined) {
      if (betas.length !== 2) problems.push({ path: pointer("param_groups", g, "betas"), message: `has ${betas.length} values; expected 2` });
      betas.forEach((b, i) => {
        const x = asNumber(b)!;
        if (!(x >= 0 && x < 1)) problems.push({ path: pointer("param_groups", g, "betas", i), message: `is ${x}; expected a number in [0, 1)` });
      });
    }
  });

  for (const [id, entry] of Object.entries(sd.state)) {
    const here = (key?: string) => (key === undefined ? pointer("state", id) : pointer("state", id, key));
    if (!owner.has(Number(id))) problems.push({ path: here(), message: `state for id ${id}, which no param group lists` });
    for (const key of ["step", "mu_product", "exp_avg", "exp_avg_sq"]) {
      if (Object.keys(entry).length > 0 && !(key in entry)) problems.push({ path: here(), message: `has no '${key}'; NAdam's step() needs it` });
    }
    for (const key of ["step", "mu_product"] as const) {
      const v = entry[key];
      if (v === undefined) continue;
      if (isJsonTensor(v) && v.shape.length !== 0) problems.push({ path: here(key), message: `has shape [${v.shape.join(", ")}]; expected a 0-d tensor` });
      if (isJsonTensor(v) && DTYPE[v.dtype].complex) problems.push({ path: here(key), message: `is a ${v.dtype} tensor; expected a real one` });
      const x = scalarValue(v, sources);
      if (x === undefined) continue;
      if (key === "step" && !(Number.isInteger(x) && x >= 0)) problems.push({ path: here(key), message: `is ${x}; expected a whole number >= 0` });
      if (key === "mu_product" && !(x >= 0 && x <= 1)) problems.push({ path: here(key), message: `is ${x}; expected a number in [0, 1] (a product of mu_t in [0, 1))` });
    }
    const [m, v] = [entry.exp_avg, entry.exp_avg_sq];
    if (isJsonTensor(m) && isJsonTensor(v)) {
      if (!sameShape(m, v)) problems.push({ path: here("exp_avg_sq"), message: `has shape [${v.shape.join(", ")}], exp_avg [${m.shape.join(", ")}]; they must be equal` });
      if (m.dtype !== v.dtype) problems.push({ path: here("exp_avg_sq"), message: `is ${v.dtype}, exp_avg ${m.dtype}; they must be equal` });
    }
  }
  return problems;
}
