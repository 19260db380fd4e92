/**
 * The `.metadata` file of a torch.distributed.checkpoint (DCP) folder, read
 * with the restricted unpickler: only the metadata classes DCP writes (and
 * torch.Size, torch's dtypes, layouts and memory formats, pathlib's paths)
 * may be named, each built as plain data; any other global is refused by
 * name. What it says:
 *   state_dict_metadata  flattened key → a tensor's dtype, size and chunks
 *                        (each at offsets, of sizes), or "bytes" (a pickled value)
 *   storage_data         (key, chunk offsets) → file, byte offset and length
 *   planner_data         flattened key → its path in the saved state dict
 */
import { isDType, type DType } from "../../spec/float/dtype.ts";
import { CheckpointError } from "../pt/errors.ts";
import { PyGlobal, PyTuple, typeName, unpickle, type PickleClasses } from "../pt/unpickle.ts";

const MODULE = "torch.distributed.checkpoint.metadata";
const CLASSES = ["Metadata", "TensorStorageMetadata", "BytesStorageMetadata", "ChunkStorageMetadata", "TensorProperties", "MetadataIndex", "StorageMeta"].map((c) => `${MODULE}.${c}`);
const STORAGE_INFO = "torch.distributed.checkpoint.filesystem._StorageInfo";
/** torch's dtypes, as a pickle names them (torch.float32); the NAdam ones are read, others only named in messages. */
const TORCH_DTYPES = ["float64", "float32", "float16", "bfloat16", "complex64", "complex128", "complex32", "int64", "int32", "int16", "int8", "uint8", "uint16", "uint32", "uint64", "bool", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "qint8", "quint8", "qint32"];
// pathlib's classes moved to pathlib._local in Python 3.13; storage_meta's checkpoint_id is one.
const CALLABLES = ["torch.Size", "torch.serialization._get_layout", `${MODULE}._MEM_FORMAT_ENCODING`, ...["PosixPath", "WindowsPath", "PurePosixPath", "PureWindowsPath"].flatMap((c) => [`pathlib.${c}`, `pathlib._local.${c}`])];
const ALLOWED = new Set([...CLASSES, STORAGE_INFO, ...CALLABLES, ...TORCH_DTYPES.map((d) => `torch.${d}`)]);

/** An instance of one of the metadata classes: its class name and its fields. */
class PyObject {
  fields = new Map<string, unknown>();
  tupleState: unknown[] | undefined;
  constructor(readonly cls: string) {}
}

const CLASSES_HOOK: PickleClasses = {
  allowed: ALLOWED,
  what: "a torch.distributed.checkpoint .metadata names only its metadata classes, torch.Size and torch's dtypes",
  reduce(callable, args) {
    const name = callable.toString();
    if (name === "torch.Size") {
      const dims = args[0];
      if (args.length !== 1 || !(dims instanceof PyTuple) || dims.items.some((d) => typeof d !== "number" || !Number.isSafeInteger(d) || d < 0)) throw new CheckpointError(`torch.Size of ${args.map(typeName).join(", ")}, not a tuple of non-negative ints`);
      return new PyTuple([...(dims.items as number[])]);
    }
    if (name === "torch.serialization._get_layout" || name.startsWith("pathlib.")) return args.map(String).join("/");
    if (name === `${MODULE}._MEM_FORMAT_ENCODING`) return args[0];
    // A class called as a function: the same as NEWOBJ with its args as fields (positional).
    const object = new PyObject(name);
    object.tupleState = args;
    return object;
  },
  newObject(cls) {
    return new PyObject(cls.toString());
  },
  build(object, state) {
    if (!(object instanceof PyObject)) throw new CheckpointError(`BUILD of a ${typeName(object)}`);
    // A dataclass's state is its __dict__, or (None, slots) / (__dict__, slots); TensorProperties' is a tuple.
    const dicts = state instanceof Map ? [state] : state instanceof PyTuple && state.items.length === 2 && state.items.every((x) => x === null || x instanceof Map) ? (state.items.filter((x) => x !== null) as Map<unknown, unknown>[]) : undefined;
    if (dicts !== undefined) {
      for (const d of dicts) for (const [k, v] of d) object.fields.set(String(k), v);
    } else if (state instanceof PyTuple) object.tupleState = state.items;
    else throw new CheckpointError(`BUILD of a ${object.cls} with a ${typeName(state)}`);
  },
};

export interface ChunkMetadata {
  readonly offsets: readonly number[];
  readonly sizes: readonly number[];
}

export type ItemMetadata =
  | { readonly kind: "tensor"; readonly dtype: DType | string; readonly size: readonly number[]; readonly chunks: readonly ChunkMetadata[] }
  | { readonly kind: "bytes" };

export interface StorageInfo {
  readonly file: string;
  readonly offset: number;
  readonly length: number;
}

export interface DcpMetadata {
  /** Flattened key → what it holds, in the file's order. */
  readonly items: ReadonlyMap<string, ItemMetadata>;
  /** `${key}` (a bytes item) or `${key}@${offsets}` (a tensor chunk) → where its bytes are. */
  readonly storage: ReadonlyMap<string, StorageInfo>;
  /** Flattened key → its path in the saved state dict (absent: the key is the path). */
  readonly paths: ReadonlyMap<string, readonly (string | number)[]>;
}

/** A chunk's key in DcpMetadata.storage. */
export function chunkKey(key: string, offsets: readonly number[]): string {
  return `${key}@${offsets.join(",")}`;
}

function bad(message: string): never {
  throw new CheckpointError(`.metadata: ${message}`);
}

/** A field of an object of class `cls`; a dataclass field left at its default is not pickled, so `fallback` stands for it where there is one. */
function field(o: unknown, cls: string, name: string, fallback?: { readonly value: unknown }): unknown {
  if (!(o instanceof PyObject) || (o.cls !== `${MODULE}.${cls}` && o.cls !== cls)) bad(`expected a ${cls}, found a ${o instanceof PyObject ? o.cls : typeName(o)}`);
  const obj = o as PyObject;
  if (obj.fields.has(name)) return obj.fields.get(name);
  if (fallback !== undefined) return fallback.value;
  return bad(`a ${cls} without '${name}'`);
}

function ints(x: unknown, what: string): number[] {
  if (!(x instanceof PyTuple) || x.items.some((d) => typeof d !== "number" || !Number.isSafeInteger(d) || d < 0)) bad(`${what} is a ${typeName(x)}, not a torch.Size`);
  return (x as PyTuple).items as number[];
}

/** The metadata in `bytes` (a .metadata file's content). */
export function readMetadata(bytes: Uint8Array): DcpMetadata {
  const root = unpickle(bytes, {
    persistentLoad: () => bad("a persistent id (a .metadata holds no tensors)"),
    rebuildTensor: () => bad("a tensor (a .metadata holds none)"),
    classes: CLASSES_HOOK,
  }, undefined, ".metadata");
  const stateDictMetadata = field(root, "Metadata", "state_dict_metadata");
  if (!(stateDictMetadata instanceof Map)) bad(`state_dict_metadata is a ${typeName(stateDictMetadata)}, not a dict`);
  const items = new Map<string, ItemMetadata>();
  for (const [key, md] of stateDictMetadata as Map<unknown, unknown>) {
    if (typeof key !== "string") bad(`a key of type ${typeName(key)} in state_dict_metadata`);
    const k = key as string;
    if (md instanceof PyObject && md.cls === `${MODULE}.BytesStorageMetadata`) {
      items.set(k, { kind: "bytes" });
      continue;
    }
    const properties = field(md, "TensorStorageMetadata", "properties");
    if (!(properties instanceof PyObject) || properties.cls !== `${MODULE}.TensorProperties`) bad(`${k}: properties is a ${typeName(properties)}`);
    const dtypeGlobal = (properties as PyObject).tupleState?.[0] ?? (properties as PyObject).fields.get("dtype");
    if (!(dtypeGlobal instanceof PyGlobal)) bad(`${k}: its dtype is a ${typeName(dtypeGlobal)}`);
    const dtypeName = (dtypeGlobal as PyGlobal).name;
    const size = ints(field(md, "TensorStorageMetadata", "size"), `${k}'s size`);
    const chunksValue = field(md, "TensorStorageMetadata", "chunks");
    if (!Array.isArray(chunksValue)) bad(`${k}: chunks is a ${typeName(chunksValue)}, not a list`);
    const chunks = (chunksValue as unknown[]).map((c, i) => ({ offsets: ints(field(c, "ChunkStorageMetadata", "offsets"), `${k}'s chunk ${i} offsets`), sizes: ints(field(c, "ChunkStorageMetadata", "sizes"), `${k}'s chunk ${i} sizes`) }));
    items.set(k, { kind: "tensor", dtype: isDType(dtypeName) ? dtypeName : dtypeName, size, chunks });
  }

  const storage = new Map<string, StorageInfo>();
  const storageData = field(root, "Metadata", "storage_data");
  if (!(storageData instanceof Map)) bad(`storage_data is a ${typeName(storageData)}, not a dict`);
  for (const [index, info] of storageData as Map<unknown, unknown>) {
    const fqn = field(index, "MetadataIndex", "fqn");
    const offset = field(index, "MetadataIndex", "offset", { value: null });
    if (typeof fqn !== "string") bad(`a MetadataIndex whose fqn is a ${typeName(fqn)}`);
    const where = { file: field(info, STORAGE_INFO, "relative_path"), offset: field(info, STORAGE_INFO, "offset"), length: field(info, STORAGE_INFO, "length") };
    if (typeof where.file !== "string" || typeof where.offset !== "number" || typeof where.length !== "number" || !Number.isSafeInteger(where.offset) || !Number.isSafeInteger(where.length) || where.offset < 0 || where.length < 0) {
      bad(`${fqn as string}: a storage location that is not (file name, offset, length)`);
    }
    const key = offset === null ? (fqn as string) : chunkKey(fqn as string, ints(offset, `${fqn as string}'s chunk offsets`));
    if (storage.has(key)) bad(`${fqn as string}: two storage locations for one item`);
    storage.set(key, where as StorageInfo);
  }

  const paths = new Map<string, (string | number)[]>();
  const planner = (root as PyObject).fields.get("planner_data");
  if (planner instanceof Map) {
    for (const [key, path] of planner) {
      if (typeof key !== "string" || !(path instanceof PyTuple) || path.items.some((p) => typeof p !== "string" && typeof p !== "number")) continue; // another planner's data: keys are then paths
      paths.set(key, path.items as (string | number)[]);
    }
  }
  return { items, storage, paths };
}
