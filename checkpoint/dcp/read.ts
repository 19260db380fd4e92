/**
 * A torch.distributed.checkpoint (DCP) folder read as one logical state dict:
 * `.metadata` (metadata.ts) says where each tensor's chunks lie in the
 * `__<rank>_<n>.distcp` files, each chunk (and each non-tensor value) a
 * torch.save'd item at a byte range of one of them. Before anything is
 * trusted: every file a chunk names exists, every item's range lies inside
 * its file, every item is a tensor of its chunk's dtype and sizes, and the
 * chunks of each tensor tile it exactly (no gap, no overlap). Then the saved
 * dict is rebuilt from the planner's paths and its optimizer state dict
 * found in it, as in a single file; its tensors stay where they lie and are
 * read, in row-major order, chunk range by chunk range.
 */
import { join } from "node:path";
import { DTYPES, isDType, type DType } from "../../spec/float/dtype.ts";
import { LazyTensor, type Skeleton } from "../lazy.ts";
import { CheckpointError } from "../pt/errors.ts";
import { FileSource, sliceSource } from "../pt/source.ts";
import { DEFAULT_READ_LIMITS, findOptimizerStateDict, openTorchFile, optimizerSkeleton, StoredTensor, type Loss } from "../pt/torch-file.ts";
import { typeName } from "../pt/unpickle.ts";
import { pointer, type Problem } from "../validate.ts";
import { chunkKey, readMetadata, type ChunkMetadata, type StorageInfo } from "./metadata.ts";

/** Largest .metadata read (it is read whole: about 1 KB a tensor chunk). */
export const MAX_METADATA_BYTES = 2 ** 28;
/** Most row-major pieces one tensor's chunks make (a chunk sharded on an inner dim is a piece per row). */
export const MAX_PIECES = 2 ** 24;

/** One chunk of a sharded tensor: where it sits in the tensor, and the item holding it. */
interface Chunk extends ChunkMetadata {
  readonly numel: number;
  readonly tensor: StoredTensor;
  /** The item, in messages: file, byte range, tensor and chunk. */
  readonly where: string;
}

function describeChunk(key: string, c: ChunkMetadata): string {
  return c.offsets.length === 0 ? key : `${key}, chunk at offsets [${c.offsets.join(", ")}]`;
}

function itemWhere(info: StorageInfo, what: string): string {
  return `${info.file} bytes ${info.offset}-${info.offset + info.length} (${what})`;
}

/** A DCP tensor: its chunks, each read from its own item, in the tensor's row-major order. */
export class ShardedTensor extends LazyTensor {
  constructor(
    readonly key: string,
    dtype: DType,
    shape: readonly number[],
    readonly chunks: readonly Chunk[],
  ) {
    super(dtype, shape);
  }

  get where(): string {
    return `${this.key} (${this.chunks.length} chunk${this.chunks.length === 1 ? "" : "s"})`;
  }

  read(visit: (bytes: Uint8Array) => void, chunkBytes: number): void {
    for (const piece of rowMajorPieces(this.key, this.shape, this.chunks)) {
      try {
        piece.chunk.tensor.readRange(visit, chunkBytes, piece.local, piece.local + piece.length);
      } catch (error) {
        if (error instanceof CheckpointError) throw new CheckpointError(`${piece.chunk.where}: ${error.message}`);
        throw error;
      }
    }
  }

  override verify(chunkBytes: number): void {
    for (const chunk of this.chunks) {
      try {
        chunk.tensor.verify(chunkBytes);
      } catch (error) {
        if (error instanceof CheckpointError) throw new CheckpointError(`${chunk.where}: ${error.message}`);
        throw error;
      }
    }
  }
}

/** A run of elements contiguous both in a chunk (from `local`) and in the whole tensor (from `global`), row-major. */
interface Piece<C> {
  readonly chunk: C;
  readonly local: number;
  readonly global: number;
  readonly length: number;
}

/**
 * The chunks' elements as runs contiguous in both the chunk and the tensor,
 * in the tensor's row-major order. A chunk spanning the whole of every dim
 * after j is one run per index of the dims before j (a Shard(0) chunk is one
 * run; a Shard(1) chunk of a matrix, one per row). Chunks must lie inside the tensor.
 */
function rowMajorPieces<C extends ChunkMetadata>(key: string, shape: readonly number[], chunks: readonly C[]): Piece<C>[] {
  const rank = shape.length;
  const stride = shape.map((_, k) => shape.slice(k + 1).reduce((a, b) => a * b, 1));
  const out: Piece<C>[] = [];
  for (const chunk of chunks) {
    const numel = chunk.sizes.reduce((a, b) => a * b, 1);
    if (numel === 0) continue;
    let j = rank - 1;
    while (j >= 0 && chunk.sizes[j] === shape[j]) j--;
    if (j < 0) {
      out.push({ chunk, local: 0, global: 0, length: numel });
      continue;
    }
    const length = chunk.sizes[j]! * stride[j]!;
    const count = numel / length;
    if (out.length + count > MAX_PIECES) throw new CheckpointError(`${key}: its chunks make more than ${MAX_PIECES} row-major pieces; not read`);
    const index = new Array<number>(j).fill(0);
    for (let r = 0; r < count; r++) {
      let global = chunk.offsets[j]! * stride[j]!;
      for (let k = 0; k < j; k++) global += (chunk.offsets[k]! + index[k]!) * stride[k]!;
      out.push({ chunk, local: r * length, global, length });
      for (let k = j - 1; k >= 0; k--) {
        if (++index[k]! < chunk.sizes[k]!) break;
        index[k] = 0;
      }
    }
  }
  return out.sort((a, b) => a.global - b.global);
}

/**
 * Where chunks overlap, leave a gap or reach past the tensor, said; undefined
 * when they tile it exactly: their row-major pieces, sorted, must follow one
 * another from element 0 to the last.
 */
export function tilingProblem(key: string, shape: readonly number[], chunks: readonly ChunkMetadata[]): string | undefined {
  const numel = shape.reduce((a, b) => a * b, 1);
  for (const c of chunks) {
    if (c.offsets.length !== shape.length || c.sizes.length !== shape.length) return `${describeChunk(key, c)}: ${c.sizes.length} sizes and ${c.offsets.length} offsets for a tensor of ${shape.length} dims`;
    const out = c.offsets.findIndex((o, k) => o + c.sizes[k]! > shape[k]!);
    if (out >= 0) return `${describeChunk(key, c)} of sizes [${c.sizes.join(", ")}] reaches past the tensor's size [${shape.join(", ")}] in dim ${out}`;
  }
  let pieces: Piece<ChunkMetadata>[];
  try {
    pieces = rowMajorPieces(key, shape, chunks);
  } catch (error) {
    if (error instanceof CheckpointError) return error.message;
    throw error;
  }
  let end = 0;
  let last: Piece<ChunkMetadata> | undefined;
  for (const p of pieces) {
    if (p.global < end) {
      const [a, b] = [last!.chunk, p.chunk];
      return `${describeChunk(key, a)} (sizes [${a.sizes.join(", ")}]) and the chunk at offsets [${b.offsets.join(", ")}] (sizes [${b.sizes.join(", ")}]) overlap`;
    }
    end = p.global + p.length;
    last = p;
  }
  const covered = chunks.reduce((sum, c) => sum + c.sizes.reduce((x, y) => x * y, 1), 0);
  if (covered !== numel || end !== numel) return `${key}: its chunks cover ${covered} of its ${numel} elements (size [${shape.join(", ")}]): a gap, a missing rank's chunk`;
  return undefined;
}

/** Items that share bytes of a file, said: DCP packs items end to end, and shared bytes would let one stored tensor stand for many. */
export function sharedBytes(ranges: readonly { readonly file: string; readonly from: number; readonly to: number; readonly what: string }[]): string[] {
  const sorted = [...ranges].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.from - b.from));
  const out: string[] = [];
  for (let i = 1; i < sorted.length; i++) {
    const [a, b] = [sorted[i - 1]!, sorted[i]!];
    if (a.file === b.file && b.from < a.to) out.push(`${a.file} bytes ${b.from}-${Math.min(a.to, b.to)} belong to two items, ${a.what} and ${b.what}: items of a checkpoint do not share bytes`);
  }
  return out;
}

export interface DcpOptions {
  readonly chunkBytes: number;
  readonly losses: Loss[];
}

export interface OpenedDcp {
  readonly skeleton: Skeleton;
  readonly at?: string;
  readonly problems: Problem[];
  close(): void;
}

/** Put `value` at `path` in a tree of dicts (Maps) and lists, made as needed. */
function place(root: Map<unknown, unknown>, path: readonly (string | number)[], value: unknown, key: string): void {
  let node: Map<unknown, unknown> | unknown[] = root;
  const get = (n: Map<unknown, unknown> | unknown[], k: string | number): unknown => (n instanceof Map ? n.get(k) : typeof k === "number" ? n[k] : undefined);
  const set = (n: Map<unknown, unknown> | unknown[], k: string | number, v: unknown): void => {
    if (n instanceof Map) n.set(k, v);
    else if (typeof k === "number" && Number.isSafeInteger(k) && k >= 0 && k < 1_000_000) n[k] = v;
    else throw new CheckpointError(`.metadata: ${key}'s path ${pointer(...path)} indexes a list by ${JSON.stringify(k)}`);
  };
  for (let i = 0; i < path.length - 1; i++) {
    let child = get(node, path[i]!);
    if (child === undefined) {
      child = typeof path[i + 1] === "number" ? [] : new Map();
      set(node, path[i]!, child);
    }
    if (!(child instanceof Map) && !Array.isArray(child)) throw new CheckpointError(`.metadata: ${key}'s path ${pointer(...path)} runs through a value`);
    node = child;
  }
  if (get(node, path.at(-1)!) !== undefined) throw new CheckpointError(`.metadata: two items at ${pointer(...path)}`);
  set(node, path.at(-1)!, value);
}

/** Every list in the tree dense (a missing param group's items would leave a hole). */
function checkDense(value: unknown, path: string): void {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (!(i in value)) throw new CheckpointError(`.metadata: nothing is saved at ${path}/${i}, between the items saved around it`);
      checkDense(value[i], `${path}/${i}`);
    }
  } else if (value instanceof Map) for (const [k, v] of value) checkDense(v, `${path}/${String(k)}`);
}

/** Open a DCP folder: its structure checked; problems found in its items listed (not thrown) with file, tensor and range. */
export function openDcp(dir: string, options: DcpOptions): OpenedDcp {
  const files = new Map<string, FileSource>();
  const close = () => files.forEach((f) => f.close());
  try {
    return openDcpFiles(dir, options, files, close);
  } catch (error) {
    close();
    throw error;
  }
}

function openDcpFiles(dir: string, options: DcpOptions, files: Map<string, FileSource>, close: () => void): OpenedDcp {
  let metadataFile: FileSource;
  try {
    metadataFile = new FileSource(join(dir, ".metadata"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new CheckpointError(`${dir}: a folder without a .metadata file, so not a torch.distributed.checkpoint folder`);
    throw new CheckpointError(`${join(dir, ".metadata")}: ${(error as Error).message}`);
  }
  let metadataBytes: Uint8Array;
  try {
    if (metadataFile.size > MAX_METADATA_BYTES) throw new CheckpointError(`.metadata: ${metadataFile.size} bytes; at most ${MAX_METADATA_BYTES} are read`);
    metadataBytes = metadataFile.read(0, metadataFile.size);
  } finally {
    metadataFile.close();
  }
  const metadata = readMetadata(metadataBytes);
  const problems: Problem[] = [];

  /** The shard file `name`, opened once; undefined (and said) when it cannot be. */
  const fileFor = (name: string, what: string, at: string): FileSource | undefined => {
    if (files.has(name)) return files.get(name);
    if (!/^[^/\\\0]+$/.test(name) || name === "." || name === "..") {
      problems.push({ path: at, message: `${what} is in ${JSON.stringify(name)}, which is not a file name in the folder` });
      return undefined;
    }
    try {
      const file = new FileSource(join(dir, name));
      files.set(name, file);
      return file;
    } catch (error) {
      const why = (error as NodeJS.ErrnoException).code === "ENOENT" ? "which is missing from the folder" : `which cannot be read: ${(error as Error).message}`;
      problems.push({ path: at, message: `${what} is in ${name}, ${why}` });
      return undefined;
    }
  };
  const ranges: { file: string; from: number; to: number; what: string }[] = [];
  /** The torch.save'd item at `info`, opened (its pickle read; its storages where they lie). */
  const item = (info: StorageInfo, what: string, at: string): ReturnType<typeof openTorchFile> | undefined => {
    const file = fileFor(info.file, `${what}, at bytes ${info.offset}-${info.offset + info.length},`, at);
    if (file === undefined) return undefined;
    const where = itemWhere(info, what);
    if (info.offset + info.length > file.size) {
      problems.push({ path: at, message: `${where}: past the end of ${info.file}, which has ${file.size} bytes (a truncated shard)` });
      return undefined;
    }
    ranges.push({ file: info.file, from: info.offset, to: info.offset + info.length, what });
    try {
      return openTorchFile(sliceSource(file, info.offset, info.length, where), DEFAULT_READ_LIMITS);
    } catch (error) {
      if (!(error instanceof CheckpointError)) throw error;
      problems.push({ path: at, message: `${where}: ${error.message}` });
      return undefined;
    }
  };

  const root = new Map<unknown, unknown>();
  // planner_data keeps the saved dict's key order (state_dict_metadata does not): the order ids and groups are made in.
  const keys = [...new Set([...[...metadata.paths.keys()].filter((k) => metadata.items.has(k)), ...metadata.items.keys()])];
  for (const key of keys) {
    const md = metadata.items.get(key)!;
    const path = metadata.paths.get(key) ?? [key];
    if (path.length === 0) throw new CheckpointError(`.metadata: ${key} has an empty path`);
    if (md.kind === "bytes") {
      const info = metadata.storage.get(key);
      if (info === undefined) {
        problems.push({ path: pointer(...path), message: `${key}: no storage location in .metadata` });
        continue;
      }
      const opened = item(info, key, pointer(...path));
      if (opened !== undefined) place(root, path, opened.root, key);
      continue;
    }
    if (!isDType(md.dtype)) {
      // Not a NAdam tensor (a model's int64 buffer saved beside it): placed as its description, refused only if the state dict uses it.
      place(root, path, `<a torch.${md.dtype} tensor>`, key);
      continue;
    }
    const tiling = tilingProblem(key, md.size, md.chunks);
    if (tiling !== undefined) {
      problems.push({ path: pointer(...path), message: tiling });
      continue;
    }
    const chunks: Chunk[] = [];
    for (const c of md.chunks) {
      const numel = c.sizes.reduce((a, b) => a * b, 1);
      const info = metadata.storage.get(chunkKey(key, c.offsets));
      if (info === undefined) {
        if (numel === 0) continue; // an empty shard need not be stored
        problems.push({ path: pointer(...path), message: `${describeChunk(key, c)}: no storage location in .metadata` });
        continue;
      }
      const opened = item(info, describeChunk(key, c), pointer(...path));
      if (opened === undefined) continue;
      const where = itemWhere(info, describeChunk(key, c));
      const t = opened.root;
      if (!(t instanceof StoredTensor)) {
        problems.push({ path: pointer(...path), message: `${where}: holds a ${typeName(t)}, not a tensor` });
        continue;
      }
      if (t.dtype !== md.dtype || t.shape.length !== c.sizes.length || t.shape.some((d, k) => d !== c.sizes[k])) {
        problems.push({ path: pointer(...path), message: `${where}: holds a ${t.dtype} tensor of shape [${t.shape.join(", ")}]; .metadata says ${md.dtype} [${c.sizes.join(", ")}]` });
        continue;
      }
      if (!t.contiguous) {
        problems.push({ path: pointer(...path), message: `${where}: holds a non-contiguous tensor, which torch.distributed.checkpoint does not write` });
        continue;
      }
      chunks.push({ ...c, numel, tensor: t, where });
    }
    place(root, path, new ShardedTensor(key, md.dtype, md.size, chunks), key);
  }
  for (const message of sharedBytes(ranges)) problems.push({ path: "", message });
  if (problems.length > 0) return { skeleton: { state: {}, param_groups: [] }, problems, close };
  checkDense(root, "");
  const { stateDict, at } = findOptimizerStateDict(root, options.losses);
  const unbounded = { value: () => undefined, tensor: () => undefined };
  const skeleton = optimizerSkeleton(stateDict, { limits: { maxDepth: DEFAULT_READ_LIMITS.maxDepth }, seen: new Set(), budget: unbounded, losses: options.losses });
  for (const value of Object.values(skeleton.state).flatMap((e) => Object.values(e))) {
    if (typeof value === "string" && value.startsWith("<a torch.")) throw new CheckpointError(`the optimizer state holds ${value.slice(1, -1)}; a NAdam state holds ${DTYPES.join(", ")} only`);
  }
  return { skeleton, at, problems, close };
}
