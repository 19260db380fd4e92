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
import { LazyTensor, materialize, MemoryTensor, pieceBytes, swapBytes, type Skeleton } from "../lazy.ts";
import { pointer } from "../validate.ts";
import { CheckpointError } from "./errors.ts";
import { PickleWriter, PyInt } from "./pickle.ts";
import { memorySource, type ByteSource } from "./source.ts";
import { DEFAULT_UNPICKLE_LIMITS, PyFloat, PyGlobal, PyTuple, typeName, unpickle, type UnpickleLimits } from "./unpickle.ts";
import { DEFAULT_CHUNK_BYTES, DEFAULT_ZIP_LIMITS, memorySink, openZip, ZipWriter, type ZipEntry, type ZipLimits, type ZipSink } from "./zip.ts";

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
  readonly entry: ZipEntry;
  readonly numel: number;
  /** Whether the archive's byteorder is big-endian (its bytes are swapped as they are read). */
  readonly bigEndian: boolean;
  /** The file, in messages. */
  readonly file: string;
}

/**
 * A tensor of a .pt archive, read from its storage entry when asked. A
 * contiguous one is streamed in pieces; any other (a permuted or strided
 * view, which optimizer state is not in practice) is gathered from its
 * storage read whole.
 */
export class StoredTensor extends LazyTensor {
  readonly contiguous: boolean;
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    shape: readonly number[],
    readonly stride: readonly number[],
  ) {
    super(storage.dtype, shape);
    // Strides say nothing where there are no elements (torch writes [5, 0] with strides [1, 1]).
    this.contiguous = this.numel === 0 || stride.every((st, i) => shape[i] === 1 || st === shape.slice(i + 1).reduce((a, b) => a * b, 1));
  }

  get where(): string {
    return `${this.storage.file}: storage data/${this.storage.key}`;
  }

  /** A piece in little-endian order: a big-endian archive's bytes swapped, in a copy (the piece may be a view of memory the caller owns). */
  private littleEndian(bytes: Uint8Array): Uint8Array {
    if (!this.storage.bigEndian) return bytes;
    const copy = Buffer.from(bytes);
    swapBytes(copy, this.dtype);
    return copy;
  }

  /**
   * Elements `from` to `to` (row-major) of a contiguous tensor, in pieces;
   * the whole tensor read this way checks its storage's CRC-32 when it covers the storage.
   */
  readRange(visit: (bytes: Uint8Array) => void, chunkBytes: number, from: number, to: number): void {
    if (!this.contiguous) throw new CheckpointError(`${this.where}: a non-contiguous tensor is not read by ranges`);
    const item = DTYPE[this.dtype].itemSize;
    this.storage.entry.stream((bytes) => visit(this.littleEndian(bytes)), pieceBytes(this.dtype, chunkBytes), (this.offset + from) * item, (this.offset + to) * item);
  }

  read(visit: (bytes: Uint8Array) => void, chunkBytes: number): void {
    if (this.contiguous) return this.readRange(visit, chunkBytes, 0, this.numel);
    const item = DTYPE[this.dtype].itemSize;
    const source = this.storage.entry.read();
    const out = Buffer.alloc(this.byteLength);
    const size = this.shape;
    const index = new Array<number>(size.length).fill(0);
    for (let n = 0; n < this.numel; n++) {
      const at = index.reduce((sum, k, i) => sum + k * this.stride[i]!, this.offset);
      out.set(source.subarray(at * item, (at + 1) * item), n * item);
      for (let d = size.length - 1; d >= 0; d--) {
        if (++index[d]! < size[d]!) break;
        index[d] = 0;
      }
    }
    const piece = pieceBytes(this.dtype, chunkBytes);
    for (let at = 0; at < out.length; at += piece) visit(this.littleEndian(out.subarray(at, Math.min(out.length, at + piece))));
  }

  /** Checks its storage entry's CRC-32 (each entry once, however many tensors view it). */
  override verify(chunkBytes: number): void {
    this.storage.entry.verify(chunkBytes);
  }
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
export class Budget {
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
function rebuildTensor(args: unknown[], budget: Budget): StoredTensor {
  if (args.length < 6 || args.length > 7) throw new CheckpointError(`_rebuild_tensor_v2 with ${args.length} arguments`);
  const [storage, offset, sizeArg, strideArg] = args;
  if (typeof storage !== "object" || storage === null || !("entry" in storage)) throw new CheckpointError(`_rebuild_tensor_v2 of a ${typeName(storage)}, not a storage`);
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
  budget.tensor("rebuilt", numel * DTYPE[s.dtype].itemSize, `a tensor of shape [${size.join(", ")}] over storage data/${s.key}`);
  return new StoredTensor(s, offset, size, stride);
}

/**
 * What a JavaScript state dict cannot keep of a Python one, noted by where it
 * is (a JSON pointer): written out again (as .json, or as .pt by writePt), the
 * value comes back different.
 */
export type Loss = { readonly path: string; readonly what: string };

export interface Walk {
  readonly limits: { readonly maxDepth: number };
  readonly seen: Set<unknown>;
  readonly budget: { value(): void; tensor(kind: "used", bytes: number, what: string): void };
  readonly losses: Loss[];
}

/** Python values → the optimizer's StateDict values: tuples become arrays, dicts objects, floats and ints numbers; tensors stay lazy. */
export function toPlain(value: unknown, depth: number, path: string, walk: Walk): unknown {
  const { limits, seen, budget, losses } = walk;
  if (depth > limits.maxDepth) throw new CheckpointError(`the state dict nests deeper than ${limits.maxDepth} levels`);
  budget.value();
  if (value instanceof LazyTensor) {
    // Every place a tensor appears is written out (JSON, a later save) on its own.
    budget.tensor("used", value.byteLength, `a tensor of shape [${value.shape.join(", ")}] used once more`);
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
        return [String(k), toPlain(v, depth + 1, path + pointer(String(k)), walk)];
      }),
    );
  } else throw new CheckpointError(`an unexpected ${typeName(value)} in the state dict`);
  seen.delete(value);
  return out;
}

/** A torch.save'd file's value, its tensors lazy, and what spends its budgets. */
export interface TorchFile {
  readonly root: unknown;
  readonly budget: Budget;
  /** Every storage the value references, for their CRC-32 checks. */
  readonly storages: readonly StoredTensor[];
}

/** The value of a torch.save'd file (any value: a state dict, a tensor, a float), read through positioned reads: the pickle in memory, storages where they lie. */
export function openTorchFile(input: ByteSource | Uint8Array, limits: ReadLimits = DEFAULT_READ_LIMITS): TorchFile {
  const source = input instanceof Uint8Array ? memorySource(input) : input;
  const head = source.read(0, Math.min(2, source.size));
  if (head.length >= 2 && head[0] === 0x80 && head[1] === 0x02) {
    throw new CheckpointError("this is the legacy (torch < 1.6) torch.save format, which is not read; re-save it with a newer torch");
  }
  // Entries are read only when used: the pickle, the byte order, the storages it references.
  const entries = openZip(source, limits);
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
  const tensors: StoredTensor[] = [];

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
        const entry = entries.get(`${prefix}/data/${key}`);
        if (entry === undefined) throw new CheckpointError(`storage data/${key} is referenced but not in the archive`);
        if (entry.uncompressed !== numel * DTYPE[dtype].itemSize) {
          throw new CheckpointError(`storage data/${key} declares ${numel} ${dtype} elements (${numel * DTYPE[dtype].itemSize} bytes) but holds ${entry.uncompressed} bytes`);
        }
        const ref: StorageRef = { dtype, key, entry, numel, bigEndian: order === "big", file: source.name };
        storages.set(key, ref);
        return ref;
      },
      rebuildTensor: (args) => {
        const t = rebuildTensor(args, budget);
        tensors.push(t);
        return t;
      },
    },
    limits,
  );
  return { root, budget, storages: tensors };
}

/** A key in messages: a str key quoted, an int key as it is. */
function keyName(key: unknown): string {
  return typeof key === "string" ? `'${key}'` : String(key);
}

/** A dict keyed as _flatten_optim_state_dict keys one: "state.<param>.<name>" and "param_groups.<param>.<option>" only. */
function isFlattened(x: unknown): x is Map<unknown, unknown> {
  if (!(x instanceof Map) || x.size === 0) return false;
  let groups = false;
  for (const k of x.keys()) {
    if (typeof k !== "string") return false;
    if (k.startsWith("param_groups.")) groups = true;
    else if (!k.startsWith("state.")) return false;
  }
  return groups;
}

/** A Python value as a string that is equal exactly when the values are (dict keys in any order). */
function pythonKey(v: unknown): string {
  if (v instanceof PyFloat) return `f${Object.is(v.value, -0) ? "-0" : String(v.value)}`;
  if (v instanceof PyTuple) return `(${v.items.map(pythonKey).join(",")})`;
  if (Array.isArray(v)) return `[${v.map(pythonKey).join(",")}]`;
  if (v instanceof Map) return `{${[...v].map(([k, x]) => `${pythonKey(k)}:${pythonKey(x)}`).sort().join(",")}}`;
  if (v instanceof LazyTensor) return `tensor ${v.dtype} [${v.shape.join(",")}] ${v.numel === 1 && !DTYPE[v.dtype].complex ? String(v.scalar()) : v.where}`;
  return `${typeof v}:${JSON.stringify(v)}`;
}

/**
 * The nested optimizer state dict of a flattened one (get_optimizer_state_dict
 * with StateDictOptions(flatten_optimizer_state_dict=True), as torchtitan saves
 * it): the flat dict keeps no groups, only each param's options, so params
 * with equal options make one group, in the order they first appear.
 */
function unflatten(flat: Map<unknown, unknown>, losses: Loss[]): Map<unknown, unknown> {
  const state = new Map<unknown, unknown>();
  const options = new Map<string, Map<unknown, unknown>>();
  for (const [key, value] of flat) {
    // The param's name may hold dots; a state name or an option does not.
    const m = /^(state|param_groups)\.(.+)\.([^.]+)$/.exec(key as string);
    if (m === null) throw new CheckpointError(`the flattened optimizer state dict has a key ${JSON.stringify(key)}, not state.<param>.<name> or param_groups.<param>.<option>`);
    const [, part, param, name] = m as unknown as [string, string, string, string];
    const into = part === "state" ? state : options;
    if (!into.has(param)) into.set(param, new Map());
    (into.get(param) as Map<unknown, unknown>).set(name, value);
  }
  const groups: Map<unknown, unknown>[] = [];
  const byOptions = new Map<string, Map<unknown, unknown>>();
  for (const [param, opts] of options) {
    const key = pythonKey(opts);
    let group = byOptions.get(key);
    if (group === undefined) {
      group = new Map([...opts, ["params", [] as string[]]]);
      byOptions.set(key, group);
      groups.push(group);
    }
    (group.get("params") as string[]).push(param);
  }
  losses.push({ path: "/param_groups", what: `a flattened optimizer state dict (flatten_optimizer_state_dict=True) keeps each param's options, not its group: params with equal options made ${groups.length} group${groups.length === 1 ? "" : "s"}` });
  return new Map<unknown, unknown>([
    ["state", state],
    ["param_groups", groups],
  ]);
}

/**
 * The optimizer state dict in a file's value: the value itself, or the one
 * entry of a dict that is one ({"optim": ...}, as torch.distributed.checkpoint
 * and dcp_to_torch_save write it). `at` says which entry. A flattened one
 * (keys "state.<param>.<name>", "param_groups.<param>.<option>") is nested again.
 */
export function findOptimizerStateDict(root: unknown, losses: Loss[] = []): { stateDict: Map<unknown, unknown>; at?: string } {
  const isOne = (x: unknown): x is Map<unknown, unknown> => (x instanceof Map && x.has("state") && x.has("param_groups")) || isFlattened(x);
  const nested = (x: Map<unknown, unknown>) => (isFlattened(x) ? unflatten(x, losses) : x);
  if (isOne(root)) return { stateDict: nested(root) };
  if (root instanceof Map) {
    const inside = [...root].filter(([, v]) => isOne(v));
    if (inside.length === 1) return { stateDict: nested(inside[0]![1] as Map<unknown, unknown>), at: String(inside[0]![0]) };
    if (inside.length > 1) throw new CheckpointError(`the pickle holds ${inside.length} optimizer state dicts (at ${inside.map(([k]) => keyName(k)).join(", ")}); one is read at a time`);
  }
  throw new CheckpointError(`the pickle holds a ${typeName(root)} without 'state' and 'param_groups': not an optimizer state_dict`);
}

/**
 * An optimizer state dict as a skeleton (tensors lazy). State keyed by
 * parameter name (a fully qualified name, as
 * torch.distributed.checkpoint.state_dict's get_optimizer_state_dict writes
 * it, params listed by name) is given PyTorch's int ids, 0, 1, … in
 * param_groups order (what optimizer.state_dict() would give), and the names
 * kept as param_names.
 */
export function optimizerSkeleton(stateDict: Map<unknown, unknown>, walk: Walk): Skeleton {
  let state = stateDict.get("state");
  let groups = stateDict.get("param_groups");
  if (!(state instanceof Map)) throw new CheckpointError(`'state' is a ${typeName(state)}, not a dict`);
  if (!Array.isArray(groups)) throw new CheckpointError(`'param_groups' is a ${typeName(groups)}, not a list`);
  const byName = groups.some((g) => g instanceof Map && Array.isArray(g.get("params")) && (g.get("params") as unknown[]).some((p) => typeof p === "string"));
  if (byName) ({ state, groups } = idsForNames(state, groups as unknown[], walk.losses));
  const plainState: Skeleton["state"] = {};
  let stringIds = 0;
  for (const [key, value] of state as Map<unknown, unknown>) {
    // torch.distributed.checkpoint saves every dict key as a string: an optimizer.state_dict() saved with it comes back keyed "0", "1", …
    const id = typeof key === "string" && /^(0|[1-9][0-9]{0,15})$/.test(key) && !byName ? Number(key) : key;
    if (typeof id !== "number") throw new CheckpointError(`a state key ${JSON.stringify(key)} is not an int param id${byName ? "" : " (nor are the params listed by name)"}`);
    if (id !== key) stringIds++;
    if (Object.hasOwn(plainState, id)) throw new CheckpointError(`the state has two entries for param id ${id} (${JSON.stringify(String(id))} and ${id})`);
    plainState[id] = toPlain(value, 1, `/state/${id}`, walk) as Record<string, unknown>;
  }
  if (stringIds > 0) walk.losses.push({ path: "/state", what: `${stringIds} state key${stringIds === 1 ? "" : "s"} saved as strings (torch.distributed.checkpoint keeps dict keys as strings) read as the int ids param_groups lists` });
  return { state: plainState, param_groups: toPlain(groups, 0, "/param_groups", walk) as Skeleton["param_groups"] };
}

function idsForNames(state: Map<unknown, unknown>, groups: unknown[], losses: Loss[]): { state: Map<unknown, unknown>; groups: unknown[] } {
  const ids = new Map<string, number>();
  const renamed = groups.map((g, i) => {
    if (!(g instanceof Map)) throw new CheckpointError(`param_groups[${i}] is a ${typeName(g)}, not a dict`);
    const params = g.get("params");
    if (!Array.isArray(params) || params.some((p) => typeof p !== "string")) throw new CheckpointError(`param_groups[${i}]['params'] mixes names and ids; a state dict lists its params one way`);
    for (const name of params as string[]) {
      if (ids.has(name)) throw new CheckpointError(`the param '${name}' is listed twice in param_groups`);
      ids.set(name, ids.size);
    }
    const names = g.get("param_names");
    if (names !== undefined && !(Array.isArray(names) && names.length === params.length && names.every((n, k) => n === params[k]))) {
      throw new CheckpointError(`param_groups[${i}] lists its params by name and has other param_names`);
    }
    const out = new Map(g);
    out.set("params", (params as string[]).map((name) => ids.get(name)!));
    out.set("param_names", [...(params as string[])]);
    return out;
  });
  const keyed = new Map<unknown, unknown>();
  for (const [key, value] of state) {
    if (typeof key !== "string") throw new CheckpointError(`the state key ${keyName(key)} is not a param name, and param_groups lists params by name`);
    const id = ids.get(key);
    if (id === undefined) throw new CheckpointError(`state for the param '${key}', which no param group lists`);
    keyed.set(id, value);
  }
  losses.push({ path: "/state", what: "state keyed by param name (as torch.distributed.checkpoint.state_dict writes it): written with ids 0, 1, … in param_groups order, the names in param_names" });
  return { state: keyed, groups: renamed };
}

/** What openPt found: the state dict as a skeleton, where it was in the file, and the storages to check. */
export interface OpenedPt {
  readonly skeleton: Skeleton;
  readonly at?: string;
  readonly storages: readonly StoredTensor[];
}

/** A torch.save'd optimizer state_dict, its tensors left in the file. Throws CheckpointError naming what is wrong. */
export function openPt(input: ByteSource | Uint8Array, limits: ReadLimits = DEFAULT_READ_LIMITS, losses: Loss[] = []): OpenedPt {
  const file = openTorchFile(input, limits);
  const { stateDict, at } = findOptimizerStateDict(file.root, losses);
  const skeleton = optimizerSkeleton(stateDict, { limits, seen: new Set(), budget: file.budget, losses });
  return { skeleton, at, storages: file.storages };
}

/** Read a torch.save'd optimizer state_dict into memory, every storage's CRC-32 checked. Throws CheckpointError naming what is wrong. */
export function readPt(file: Uint8Array, limits: ReadLimits = DEFAULT_READ_LIMITS, losses: Loss[] = []): StateDict {
  const opened = openPt(file, limits, losses);
  for (const t of opened.storages) t.verify(2 ** 24);
  return materialize(opened.skeleton);
}

/** Python values for a state dict: tuples where PyTorch has tuples, ints where it has ints. */
function toPython(value: unknown, key?: string): unknown {
  if (value instanceof Tensor || value instanceof LazyTensor || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) {
    if (key === "betas") return new PyTuple(value.map((v) => toPython(v)));
    if (key === "params") return value.map((id) => new PyInt(id as number));
    return value.map((v) => toPython(v));
  }
  return new Map(Object.entries(value).map(([k, v]) => [k, toPython(v, k)]));
}

/**
 * A state dict as torch.save writes it, into a zip sink: the pickle, then
 * each tensor's storage streamed from where it lies in pieces of `chunkBytes`.
 */
export function writePtTo(sink: ZipSink, stateDict: Skeleton | StateDict, archiveName = "archive", chunkBytes = DEFAULT_CHUNK_BYTES, forceZip64 = false): void {
  const state = new Map(Object.entries(stateDict.state).map(([id, entry]) => [new PyInt(Number(id)), toPython(entry)]));
  const root = new Map<string, unknown>([
    ["state", state],
    ["param_groups", stateDict.param_groups.map((g) => toPython(g))],
  ]);
  const { pickle, storages } = PickleWriter.dump(root);
  const zip = new ZipWriter(sink, forceZip64);
  const byteorder = Buffer.from("little");
  zip.add(`${archiveName}/data.pkl`, pickle.length, (write) => write(pickle));
  zip.add(`${archiveName}/byteorder`, byteorder.length, (write) => write(byteorder));
  storages.forEach((t, i) => {
    const lazy = t instanceof Tensor ? new MemoryTensor(t) : t;
    zip.add(`${archiveName}/data/${i}`, lazy.byteLength, (write) => lazy.read(write, chunkBytes));
  });
  const version = Buffer.from("3\n");
  zip.add(`${archiveName}/version`, version.length, (write) => write(version));
  zip.finish();
}

/** A .pt file of the state dict, as torch.save writes it, in memory. */
export function writePt(stateDict: StateDict, archiveName = "archive"): Buffer {
  const { sink, bytes } = memorySink();
  writePtTo(sink, stateDict, archiveName);
  return bytes();
}
