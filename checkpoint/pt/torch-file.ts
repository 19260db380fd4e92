/**
 * PyTorch .pt files holding an optimizer state_dict: read (zip + restricted
 * unpickling + storages) into the optimizer's StateDict, and write one that
 * torch.load(weights_only=True) reads back equal.
 *
 * Layout (torch.save, torch >= 1.6): <name>/data.pkl (the pickle),
 * <name>/byteorder ("little"), <name>/data/<key> (one storage's raw bytes each),
 * <name>/version.
 */
import type { StateDict } from "../../tensor/state-dict.ts";
import { Tensor } from "../../tensor/tensor.ts";
import { DTYPE, DTYPES, isDType, type DType } from "../../spec/float/dtype.ts";
import { swapBytes, tensorBytes, tensorFromBytes } from "../json.ts";
import { CheckpointError } from "./errors.ts";
import { PickleWriter, PyInt } from "./pickle.ts";
import { DEFAULT_UNPICKLE_LIMITS, PyFloat, PyGlobal, PyTuple, typeName, unpickle, type UnpickleLimits } from "./unpickle.ts";
import { DEFAULT_ZIP_LIMITS, openZip, writeZip, type ZipLimits } from "./zip.ts";

const STORAGE_DTYPES: Readonly<Record<string, DType | string>> = {
  ...Object.fromEntries(DTYPES.map((dtype) => [DTYPE[dtype].torchStorage, dtype])),
  "torch.LongStorage": "int64",
  "torch.IntStorage": "int32",
  "torch.BoolStorage": "bool",
  "torch.ByteStorage": "uint8",
};

interface StorageRef {
  readonly dtype: DType;
  readonly key: string;
  readonly bytes: Uint8Array;
  readonly numel: number;
}

export interface ReadLimits extends ZipLimits, UnpickleLimits {
  /** Deepest nesting of containers in the state dict. */
  readonly maxDepth: number;
  /**
   * Values the state dict may hold, counted as written out (a value shared
   * through the memo counts each time it is used), per byte of the pickle. Every
   * value costs a pickle at least one opcode; torch shares a few (the betas
   * tuple of groups built from the same defaults), never a value per byte.
   */
  readonly maxValuesPerPickleByte: number;
  /**
   * Tensor bytes the state dict may hold, counted as written out, beyond the
   * archive's storage bytes: each storage holds one tensor's data in a real
   * file; the slack covers small tensors shared between places.
   */
  readonly tensorSlackBytes: number;
}

export const DEFAULT_READ_LIMITS: ReadLimits = { ...DEFAULT_ZIP_LIMITS, ...DEFAULT_UNPICKLE_LIMITS, maxDepth: 64, maxValuesPerPickleByte: 4, tensorSlackBytes: 2 ** 20 };

/**
 * What a file can legitimately describe, spent as it is read: values (memo
 * sharing cannot make a small pickle expand into a huge state dict) and tensor
 * bytes (one storage cannot become many tensors' worth of memory).
 */
class Budget {
  private values = 0;
  /** Bytes of tensors rebuilt from storages, and of tensors as used in the state dict (each place counts). */
  private readonly tensorBytes = { rebuilt: 0, used: 0 };
  constructor(
    private readonly maxValues: number,
    private readonly maxTensorBytes: number,
  ) {}
  value(): void {
    if (++this.values > this.maxValues) throw new CheckpointError(`the state dict expands to more than ${this.maxValues} values, more than its pickle can describe: values shared through the memo many times over`);
  }
  tensor(kind: "rebuilt" | "used", bytes: number, what: string): void {
    this.tensorBytes[kind] += bytes;
    if (this.tensorBytes[kind] > this.maxTensorBytes) throw new CheckpointError(`${what} brings the tensors to more than ${this.maxTensorBytes} bytes, more than the archive's storages hold: one storage used as many tensors`);
  }
}

function nonNegativeInts(x: unknown, what: string): number[] {
  if (!(x instanceof PyTuple) || x.items.some((d) => typeof d !== "number" || !Number.isSafeInteger(d) || d < 0)) {
    throw new CheckpointError(`a tensor's ${what} is ${typeName(x)}, not a tuple of non-negative ints`);
  }
  return x.items as number[];
}

/** _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) */
function rebuildTensor(args: unknown[], swap: boolean, budget: Budget): Tensor {
  if (args.length < 6 || args.length > 7) throw new CheckpointError(`_rebuild_tensor_v2 with ${args.length} arguments`);
  const [storage, offset, sizeArg, strideArg] = args;
  if (typeof storage !== "object" || storage === null || !("bytes" in storage)) throw new CheckpointError(`_rebuild_tensor_v2 of a ${typeName(storage)}, not a storage`);
  const s = storage as StorageRef;
  if (typeof offset !== "number" || !Number.isSafeInteger(offset) || offset < 0) throw new CheckpointError(`a tensor's storage offset is ${String(offset)}`);
  const size = nonNegativeInts(sizeArg, "size");
  const stride = nonNegativeInts(strideArg, "stride");
  if (size.length !== stride.length) throw new CheckpointError(`a tensor has ${size.length} sizes but ${stride.length} strides`);
  let numel = 1;
  for (const d of size) numel *= d;
  if (numel > 0) {
    const last = size.reduce((sum, d, i) => sum + (d - 1) * stride[i]!, offset);
    if (!(last < s.numel)) {
      throw new CheckpointError(`a tensor of shape [${size.join(", ")}] (stride [${stride.join(", ")}], offset ${offset}) reaches element ${last} of storage data/${s.key}, which holds ${s.numel}`);
    }
  }
  // More elements than the storage holds means overlapping (stride-0, expanded) views:
  // never optimizer state, and a way to make a small file allocate without bound.
  if (numel > s.numel) {
    throw new CheckpointError(`a tensor of shape [${size.join(", ")}] has ${numel} elements over storage data/${s.key} of ${s.numel}: overlapping (expanded) tensors are not read`);
  }
  const item = DTYPE[s.dtype].itemSize;
  budget.tensor("rebuilt", numel * item, `a tensor of shape [${size.join(", ")}] over storage data/${s.key}`);
  const out = Buffer.alloc(numel * item);
  const contiguous = stride.every((st, i) => size[i] === 1 || st === size.slice(i + 1).reduce((a, b) => a * b, 1));
  if (contiguous) {
    out.set(s.bytes.subarray(offset * item, (offset + numel) * item));
  } else {
    const index = new Array<number>(size.length).fill(0);
    for (let n = 0; n < numel; n++) {
      const source = index.reduce((sum, k, i) => sum + k * stride[i]!, offset);
      out.set(s.bytes.subarray(source * item, (source + 1) * item), n * item);
      for (let d = size.length - 1; d >= 0; d--) {
        if (++index[d]! < size[d]!) break;
        index[d] = 0;
      }
    }
  }
  if (swap) swapBytes(out, s.dtype);
  return tensorFromBytes(s.dtype, size, out);
}

/**
 * What a JavaScript state dict cannot keep of a Python one, noted by where it
 * is (a JSON pointer): written out again (as .json, or as .pt by writePt), the
 * value comes back different.
 */
export type Loss = { readonly path: string; readonly what: string };

interface Walk {
  readonly limits: ReadLimits;
  readonly seen: Set<unknown>;
  readonly budget: Budget;
  readonly losses: Loss[];
}

/** Python values → the optimizer's StateDict values: tuples become arrays, dicts objects, floats and ints numbers. */
function toPlain(value: unknown, depth: number, path: string, walk: Walk): unknown {
  const { limits, seen, budget, losses } = walk;
  if (depth > limits.maxDepth) throw new CheckpointError(`the state dict nests deeper than ${limits.maxDepth} levels`);
  budget.value();
  if (value instanceof Tensor) {
    // Every place a tensor appears is written out (JSON, a later save) on its own.
    budget.tensor("used", value.data.byteLength, `a tensor of shape [${value.shape.join(", ")}] used once more`);
    return value;
  }
  if (value instanceof PyFloat) {
    if (Object.is(value.value, -0)) losses.push({ path, what: "the float -0.0 is written to JSON as 0" });
    return value.value;
  }
  if (typeof value === "number") {
    // Ints stay ints only where PyTorch has them (param ids); elsewhere they are written back as floats.
    if (!/^\/param_groups\/\d+\/params\/\d+$/.test(path)) losses.push({ path, what: `the int ${value} is written back to .pt as the float ${value}.0` });
    return value;
  }
  if (value === null || typeof value !== "object") return value;
  if (value instanceof PyGlobal) throw new CheckpointError(`a bare global ${value} where a value belongs`);
  if (seen.has(value)) throw new CheckpointError("the state dict contains itself (a cycle)");
  seen.add(value);
  let out: unknown;
  if (value instanceof PyTuple) {
    if (!/\/betas$/.test(path)) losses.push({ path, what: "a tuple is written back as a list" });
    out = value.items.map((v, i) => toPlain(v, depth + 1, `${path}/${i}`, walk));
  } else if (Array.isArray(value)) out = value.map((v, i) => toPlain(v, depth + 1, `${path}/${i}`, walk));
  else if (value instanceof Map) {
    out = Object.fromEntries(
      [...value].map(([k, v]) => {
        if (typeof k === "number") losses.push({ path, what: `the int key ${k} becomes the string '${k}'` });
        return [String(k), toPlain(v, depth + 1, `${path}/${String(k).replace(/~/g, "~0").replace(/\//g, "~1")}`, walk)];
      }),
    );
  } else throw new CheckpointError(`an unexpected ${typeName(value)} in the state dict`);
  seen.delete(value);
  return out;
}

/** Read a torch.save'd optimizer state_dict. Throws CheckpointError naming what is wrong. */
export function readPt(file: Uint8Array, limits: ReadLimits = DEFAULT_READ_LIMITS, losses: Loss[] = []): StateDict {
  if (file.length >= 2 && file[0] === 0x80 && file[1] === 0x02) {
    throw new CheckpointError("this is the legacy (torch < 1.6) torch.save format, which is not read; re-save it with a newer torch");
  }
  // Entries are inflated only when used: the pickle, the byte order, the storages it references.
  const entries = openZip(file, limits);
  const pickles = [...entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pickles.length !== 1) throw new CheckpointError(`expected one <archive>/data.pkl in the zip, found ${pickles.length}`);
  const prefix = pickles[0]!.slice(0, -"/data.pkl".length);
  const byteorder = entries.get(`${prefix}/byteorder`)?.read();
  const pickle = entries.get(pickles[0]!)!.read();
  const storageBytes = [...entries].filter(([n]) => n.startsWith(`${prefix}/data/`)).reduce((sum, [, e]) => sum + e.uncompressed, 0);
  const budget = new Budget(Math.max(10_000, limits.maxValuesPerPickleByte * pickle.length), storageBytes + limits.tensorSlackBytes);
  const order = byteorder === undefined ? "little" : Buffer.from(byteorder).toString("utf8").trim();
  if (order !== "little" && order !== "big") throw new CheckpointError(`${prefix}/byteorder says ${JSON.stringify(order)}`);
  const storages = new Map<string, StorageRef>();

  const root = unpickle(
    pickle,
    {
      persistentLoad(pid) {
        if (!(pid instanceof PyTuple) || pid.items.length !== 5 || pid.items[0] !== "storage") {
          throw new CheckpointError(`a persistent id ${typeName(pid)} that is not ('storage', type, key, location, numel)`);
        }
        const [, type, key, , numel] = pid.items;
        if (!(type instanceof PyGlobal) || typeof key !== "string" || typeof numel !== "number" || !Number.isSafeInteger(numel) || numel < 0) {
          throw new CheckpointError("a storage reference with a malformed type, key or size");
        }
        const dtype = STORAGE_DTYPES[type.toString()];
        if (dtype === undefined || !isDType(dtype)) throw new CheckpointError(`a tensor of dtype ${dtype ?? type.toString()}: a NAdam state holds ${DTYPES.join(", ")} only`);
        const cached = storages.get(key);
        if (cached !== undefined) return cached;
        const bytes = entries.get(`${prefix}/data/${key}`)?.read();
        if (bytes === undefined) throw new CheckpointError(`storage data/${key} is referenced but not in the archive`);
        if (bytes.length !== numel * DTYPE[dtype].itemSize) {
          throw new CheckpointError(`storage data/${key} declares ${numel} ${dtype} elements (${numel * DTYPE[dtype].itemSize} bytes) but holds ${bytes.length} bytes`);
        }
        const ref: StorageRef = { dtype, key, bytes, numel };
        storages.set(key, ref);
        return ref;
      },
      rebuildTensor: (args) => rebuildTensor(args, order === "big", budget),
    },
    limits,
  );
  if (!(root instanceof Map) || !root.has("state") || !root.has("param_groups")) {
    throw new CheckpointError(`the pickle holds a ${typeName(root)} without 'state' and 'param_groups': not an optimizer state_dict`);
  }
  const state = root.get("state");
  const groups = root.get("param_groups");
  if (!(state instanceof Map)) throw new CheckpointError(`'state' is a ${typeName(state)}, not a dict`);
  if (!Array.isArray(groups)) throw new CheckpointError(`'param_groups' is a ${typeName(groups)}, not a list`);
  const plainState: StateDict["state"] = {};
  const walk: Walk = { limits, seen: new Set(), budget, losses };
  for (const [key, value] of state) {
    if (typeof key !== "number") throw new CheckpointError(`a state key ${JSON.stringify(key)} is not an int param id`);
    plainState[key] = toPlain(value, 1, `/state/${key}`, walk) as Record<string, unknown>;
  }
  return { state: plainState, param_groups: toPlain(groups, 0, "/param_groups", walk) as StateDict["param_groups"] };
}

/** Python values for a state dict: tuples where PyTorch has tuples, ints where it has ints. */
function toPython(value: unknown, key?: string): unknown {
  if (value instanceof Tensor || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) {
    if (key === "betas") return new PyTuple(value.map((v) => toPython(v)));
    if (key === "params") return value.map((id) => new PyInt(id as number));
    return value.map((v) => toPython(v));
  }
  return new Map(Object.entries(value).map(([k, v]) => [k, toPython(v, k)]));
}

/** A .pt file of the state dict, as torch.save writes it. */
export function writePt(stateDict: StateDict, archiveName = "archive"): Buffer {
  const state = new Map(Object.entries(stateDict.state).map(([id, entry]) => [new PyInt(Number(id)), toPython(entry)]));
  const root = new Map<string, unknown>([
    ["state", state],
    ["param_groups", stateDict.param_groups.map((g) => toPython(g))],
  ]);
  const { pickle, storages } = PickleWriter.dump(root);
  return writeZip([
    [`${archiveName}/data.pkl`, pickle],
    [`${archiveName}/byteorder`, Buffer.from("little")],
    ...storages.map((t, i) => [`${archiveName}/data/${i}`, tensorBytes(t)] as const),
    [`${archiveName}/version`, Buffer.from("3\n")],
  ]);
}
