/**
 * State dict files on disk: .json (nadam-state-dict/1), .pt (torch.save) or a
 * torch.distributed.checkpoint folder, told apart by content, checked, and
 * written. A .pt or a folder is read where it lies, tensor by tensor, in
 * pieces of a chunk size: memory is bounded by that, never by the file.
 */
import { constants as bufferConstants } from "node:buffer";
import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, lstatSync, openSync, readSync, renameSync, rmSync, statSync, writeSync, type Stats } from "node:fs";
import { basename, dirname, extname, join } from "node:path";
import type { StateDict } from "../tensor/state-dict.ts";
import { checkValues, type DeepReport } from "./deep.ts";
import { openDcp } from "./dcp/read.ts";
import { skeletonToJson, stateDictFromJson, type JsonStateDict } from "./json.ts";
import { eachLazyTensor, LazyTensor, materialize, skeletonOf, type Skeleton } from "./lazy.ts";
import { CheckpointError } from "./pt/errors.ts";
import { FileSource, fileType, memorySource, openRegularFile, type ByteSource } from "./pt/source.ts";
import { openPt, writePtTo, type Loss } from "./pt/torch-file.ts";
import { DEFAULT_CHUNK_BYTES, type ZipSink } from "./pt/zip.ts";
import { validateStateDict, type Problem } from "./validate.ts";

export { DEFAULT_CHUNK_BYTES };

const MAX_STRING_LENGTH = bufferConstants.MAX_STRING_LENGTH;

/** Deepest JSON nesting read (a NAdam state dict nests 5 levels). */
export const MAX_JSON_DEPTH = 64;
/**
 * Most objects and arrays, and most values in all, a JSON state dict may hold
 * (counted before parsing: an object costs the parser tens of bytes for each
 * of the text's 3). A state dict of 100,000 params holds about a million
 * containers and a few million values.
 */
export const MAX_JSON_CONTAINERS = 2_000_000;
export const MAX_JSON_VALUES = 20_000_000;

/** A JSON state dict, a torch.save file, or a torch.distributed.checkpoint folder. */
export type FileKind = "json" | "pt" | "dcp";

export function kindOf(path: string, bytes: Uint8Array): FileKind {
  const ext = extname(path).toLowerCase();
  if (ext === ".json") return "json";
  if (ext === ".pt" || ext === ".pth") return "pt";
  // A zip, or a pickle (torch < 1.6's format, refused as such by the .pt reader).
  return (bytes[0] === 0x50 && bytes[1] === 0x4b) || bytes[0] === 0x80 ? "pt" : "json";
}

/**
 * What JSON.parse would not say about a text, found before parsing it: nesting
 * deeper than `limit` (refused before the parser recurses), more objects,
 * arrays or values than a state dict holds (refused before the parser's memory
 * grows tens of times the text's), and a key repeated
 * in one object (JSON.parse keeps the last silently; which one a reader keeps
 * differs between readers, so neither is trusted). Strings are skipped as
 * they are; keys are compared decoded ("a" and "\u0061" are one key).
 */
function scanJson(text: string, limit: number): string | undefined {
  const objects: ({ keys: Set<string>; expectKey: boolean } | { index: number })[] = [];
  const path: string[] = [];
  let containers = 0;
  let values = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      const start = i;
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
      const top = objects.at(-1);
      if (top && "keys" in top && top.expectKey) {
        let key: string;
        try {
          key = JSON.parse(text.slice(start, i + 1)) as string;
        } catch {
          return undefined; // not JSON: the parser says where
        }
        if (top.keys.has(key)) return `the key ${JSON.stringify(key)} appears twice in the object at ${path.slice(0, objects.length - 1).join("") || "/"}; a state dict has each key once`;
        top.keys.add(key);
        top.expectKey = false;
        path[objects.length - 1] = `/${key}`;
      }
    } else if (c === 0x7b || c === 0x5b) {
      if (objects.length >= limit) return `JSON nests deeper than ${limit} levels`;
      if (++containers > MAX_JSON_CONTAINERS) return `JSON holds more than ${MAX_JSON_CONTAINERS} objects and arrays; a state dict of 100,000 params holds about a million`;
      objects.push(c === 0x7b ? { keys: new Set(), expectKey: true } : { index: 0 });
      path[objects.length - 1] = c === 0x7b ? "" : "/0";
    } else if (c === 0x7d || c === 0x5d) {
      objects.pop();
      path.length = objects.length;
    } else if (c === 0x2c) {
      if (++values > MAX_JSON_VALUES) return `JSON holds more than ${MAX_JSON_VALUES} values; a state dict of 100,000 params holds a few million`;
      const top = objects.at(-1);
      if (top && "keys" in top) top.expectKey = true;
      else if (top) path[objects.length - 1] = `/${++top.index}`;
    }
  }
  return undefined;
}

export interface CheckOptions {
  /** Value checks of every exp_avg and exp_avg_sq, streamed (deep.ts). */
  readonly deep?: boolean;
  /** Bytes read at once from where a tensor lies; memory is bounded by it. Default 4 MiB. */
  readonly chunkBytes?: number;
}

export interface CheckedFile {
  readonly kind: FileKind;
  readonly problems: Problem[];
  /** The valid state dict, its tensors lazy (where they lie in the file; a .json's in memory). */
  readonly skeleton?: Skeleton;
  /** Where in the file's value the optimizer state dict was, when not at its root (dcp_to_torch_save's 'optim'). */
  readonly at?: string;
  /** What the read value cannot keep of a .pt's Python values (written out again, they come back different). */
  readonly losses?: readonly Loss[];
  /** The value checks' counts, with --deep. */
  readonly deep?: DeepReport;
  /** Bytes of tensor data the state dict holds. */
  readonly tensorBytes?: number;
}

/** A checked state dict whose tensors stay readable until it is closed. */
export interface OpenedStateDict extends CheckedFile {
  close(): void;
}

/** A regular file's bytes (openRegularFile), at most `max` of them. */
export function readRegularFile(path: string, max: number, options: { readonly followLinks?: boolean } = {}): Buffer {
  const { fd, size } = openRegularFile(path, options);
  try {
    if (size > max) throw new CheckpointError(`${size} bytes; files over ${max} bytes are not read`);
    // Read what stat promised, and one byte more to notice a file that grew meanwhile.
    const bytes = Buffer.alloc(size + 1);
    let length = 0;
    for (let n; length < bytes.length && (n = readSync(fd, bytes, length, bytes.length - length, null)) > 0; ) length += n;
    if (length > size) throw new CheckpointError(`grew past its ${size} bytes while being read`);
    return bytes.subarray(0, length);
  } finally {
    closeSync(fd);
  }
}

/** The message of a read that failed: a CheckpointError's own, or the system's. */
function readFailure(error: unknown): string {
  if (error instanceof CheckpointError) return error.message;
  return `cannot read: ${(error as Error).message}`;
}

/**
 * Open and check a state dict (.json, .pt, or a torch.distributed.checkpoint
 * folder): every problem found, none thrown. A valid one's tensors can be
 * read from `skeleton` until `close()`.
 */
export function openStateDict(path: string, options: CheckOptions = {}): OpenedStateDict {
  let isFolder = false;
  try {
    isFolder = statSync(path).isDirectory();
  } catch {
    isFolder = false; // FileSource says why
  }
  if (isFolder) {
    const losses: Loss[] = [];
    try {
      const opened = openDcp(path, { chunkBytes: options.chunkBytes ?? DEFAULT_CHUNK_BYTES, losses });
      if (opened.problems.length > 0) return { kind: "dcp", problems: opened.problems, close: opened.close };
      return { ...checkSkeleton("dcp", opened.skeleton, losses, opened.at, options), close: opened.close };
    } catch (error) {
      if (error instanceof CheckpointError) return { kind: "dcp", problems: [{ path: "", message: error.message }], close: () => undefined };
      throw error;
    }
  }
  let source: FileSource;
  try {
    source = new FileSource(path);
  } catch (error) {
    return { kind: extname(path).toLowerCase() === ".json" ? "json" : "pt", problems: [{ path: "", message: readFailure(error) }], close: () => undefined };
  }
  if (kindOf(path, source.read(0, Math.min(2, source.size))) === "pt") {
    const checked = checkPtSource(source, options);
    if (checked.skeleton === undefined) source.close();
    return { ...checked, close: () => source.close() };
  }
  // JSON is parsed whole: at most what one string holds (a crash, not a refusal, if more were tried).
  const size = source.size;
  source.close();
  if (size > MAX_STRING_LENGTH) return { kind: "json", problems: [{ path: "", message: tooLongForJson(size) }], close: () => undefined };
  let bytes: Buffer;
  try {
    bytes = readRegularFile(path, MAX_STRING_LENGTH);
  } catch (error) {
    return { kind: "json", problems: [{ path: "", message: readFailure(error) }], close: () => undefined };
  }
  return { ...checkBytes(path, bytes, options), close: () => undefined };
}

function tooLongForJson(bytes: number): string {
  return `a JSON file of ${bytes} bytes; this Node holds text of at most ${MAX_STRING_LENGTH} characters (convert such a state dict as .pt)`;
}

/** Read and check a state dict file or folder: every problem found, none thrown. */
export function checkFile(path: string, options: CheckOptions = {}): CheckedFile {
  const { close, ...checked } = openStateDict(path, options);
  close();
  return checked;
}

/** Check a .pt read through `source`. */
function checkPtSource(source: ByteSource, options: CheckOptions): CheckedFile {
  const losses: Loss[] = [];
  try {
    const opened = openPt(source, undefined, losses);
    return checkSkeleton("pt", opened.skeleton, losses, opened.at, options);
  } catch (error) {
    if (error instanceof CheckpointError) return { kind: "pt", problems: [{ path: "", message: error.message }] };
    throw error;
  }
}

/**
 * A skeleton's checks: its structure and scalars (validate.ts, on its JSON
 * view), then every tensor's bytes where they lie (CRC-32s, each storage
 * once), and with `deep` the moments' values.
 */
function checkSkeleton(kind: FileKind, skeleton: Skeleton, losses: Loss[], at: string | undefined, options: CheckOptions): CheckedFile {
  const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  let problems: Problem[];
  try {
    const { json, sources } = skeletonToJson(skeleton);
    problems = validateStateDict(json, sources);
  } catch (error) {
    if (error instanceof CheckpointError) return { kind, problems: [{ path: "", message: error.message }] };
    throw error;
  }
  if (problems.length > 0) return { kind, problems };
  let deep: DeepReport | undefined;
  if (options.deep) {
    deep = checkValues(skeleton, chunkBytes);
    problems.push(...deep.problems);
  }
  let tensorBytes = 0;
  const unreadable = new Set(deep?.unreadable);
  eachLazyTensor(skeleton, "", (t, path) => {
    tensorBytes += t.byteLength;
    if (unreadable.has(path)) return; // said once, by the value checks
    try {
      t.verify(chunkBytes);
    } catch (error) {
      if (!(error instanceof CheckpointError)) throw error;
      problems.push({ path, message: `${t.where}: ${error.message}` });
    }
  });
  if (problems.length > 0) return { kind, problems, deep };
  return { kind, problems, skeleton, at, losses, deep, tensorBytes };
}

/** Check a state dict held in memory; `name` only tells .json from .pt by extension. */
export function checkBytes(name: string, bytes: Buffer, options: CheckOptions = {}): CheckedFile {
  const kind = kindOf(name, bytes);
  if (kind === "pt") return checkPtSource(memorySource(bytes, name), options);
  if (bytes.length > MAX_STRING_LENGTH) return { kind, problems: [{ path: "", message: tooLongForJson(bytes.length) }] };
  const text = bytes.toString("utf8");
  const refused = scanJson(text, MAX_JSON_DEPTH);
  if (refused !== undefined) return { kind, problems: [{ path: "", message: refused }] };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { kind, problems: [{ path: "", message: `not JSON: ${(error as Error).message}` }] };
  }
  const problems = validateStateDict(json);
  if (problems.length > 0) return { kind, problems };
  return checkSkeleton(kind, skeletonOf(stateDictFromJson(json as JsonStateDict)), [], undefined, options);
}

/** Read a valid state dict into memory, or throw CheckpointError listing its problems. */
export function loadStateDictFile(path: string, losses: Loss[] = []): StateDict {
  const opened = openStateDict(path);
  try {
    losses.push(...(opened.losses ?? []));
    if (opened.skeleton === undefined) {
      throw new CheckpointError(`${path} is not a valid NAdam state_dict:\n${opened.problems.map((p) => `  ${p.path || "/"}: ${p.message}`).join("\n")}`);
    }
    return materialize(opened.skeleton);
  } finally {
    opened.close();
  }
}

/** The archive folder torch.save names after the file. */
function archiveName(path: string): string {
  return basename(path).replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9_.-]/g, "_") || "archive";
}

/**
 * A state dict's JSON encoding, streamed: the structure as
 * JSON.stringify(…, null, 1) writes it, each tensor's base64 written from
 * where the tensor lies, in pieces.
 */
export function writeJsonTo(write: (bytes: Uint8Array) => void, skeleton: Skeleton, chunkBytes = DEFAULT_CHUNK_BYTES): void {
  // Each tensor's data is a marker no state dict can hold by chance, replaced by its base64 as the text is written.
  const nonce = randomBytes(12).toString("hex");
  const tensors: LazyTensor[] = [];
  const { json } = skeletonToJson(skeleton, (t) => `${nonce}:${tensors.push(t) - 1}`);
  const text = JSON.stringify(json, null, 1) + "\n";
  const piece = Math.max(3, chunkBytes - (chunkBytes % 3));
  let last = 0;
  for (const match of text.matchAll(new RegExp(`${nonce}:(\\d+)`, "g"))) {
    write(Buffer.from(text.slice(last, match.index), "utf8"));
    // base64 in whole 3-byte groups, the remainder carried into the next piece.
    let carry = Buffer.alloc(0);
    tensors[Number(match[1])]!.read((bytes) => {
      const joined = carry.length > 0 ? Buffer.concat([carry, bytes]) : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const whole = joined.length - (joined.length % 3);
      if (whole > 0) write(Buffer.from(joined.subarray(0, whole).toString("base64"), "latin1"));
      carry = Buffer.from(joined.subarray(whole));
    }, piece);
    if (carry.length > 0) write(Buffer.from(carry.toString("base64"), "latin1"));
    last = match.index + match[0].length;
  }
  write(Buffer.from(text.slice(last), "utf8"));
}

/** Write a state dict in memory as .json or .pt, chosen by the extension (writeStateDictFile). */
export function saveStateDictFile(path: string, stateDict: StateDict): void {
  writeStateDictFile(path, skeletonOf(stateDict));
}

/**
 * Write a state dict as .json or .pt, chosen by the extension, its tensors
 * streamed from where they lie: into a new file beside the target, flushed,
 * then renamed over it, so that a failing write (a full disk, a file size
 * limit, an input that turns out damaged) or a kill midway leaves the
 * previous file as it was. A symlink, a directory or a device at the target
 * is refused, as is a folder that does not exist.
 */
export function writeStateDictFile(path: string, skeleton: Skeleton, chunkBytes = DEFAULT_CHUNK_BYTES): void {
  const dir = dirname(path);
  let dirStat: Stats;
  try {
    dirStat = statSync(dir);
  } catch {
    throw new CheckpointError(`cannot write ${path}: the folder ${dir} does not exist`);
  }
  if (!dirStat.isDirectory()) throw new CheckpointError(`cannot write ${path}: ${dir} is not a folder`);
  let target: Stats | undefined;
  try {
    target = lstatSync(path);
  } catch {
    target = undefined; // a new file
  }
  if (target?.isSymbolicLink()) throw new CheckpointError(`cannot write ${path}: it is a symbolic link, which is not written through (write to its target, or remove it)`);
  if (target !== undefined && !target.isFile()) throw new CheckpointError(`cannot write ${path}: it is ${fileType(target)}`);
  const unchanged = target !== undefined ? "the file there is unchanged" : "nothing was written";
  try {
    replaceFileWith(path, target !== undefined ? target.mode & 0o777 : 0o666, (sink) => {
      if (extname(path).toLowerCase() === ".json") writeJsonTo((bytes) => sink.write(bytes), skeleton, chunkBytes);
      else writePtTo(sink, skeleton, archiveName(path), chunkBytes);
    });
  } catch (error) {
    if (error instanceof CheckpointError) throw new CheckpointError(`cannot write ${path}: ${error.message}; ${unchanged}`);
    throw new CheckpointError(`cannot write ${path}: ${(error as Error).message}; ${unchanged}`);
  }
}

/**
 * Put what `fill` writes at `path`, whole or not at all: written to a new file
 * beside it, flushed, renamed over it. What was there (a file, or a symlink,
 * which is replaced, never written through) stays as it was if anything fails.
 */
export function replaceFileWith(path: string, mode: number, fill: (sink: ZipSink) => void): void {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const fd = openSync(temporary, "wx", mode);
    try {
      const writeAll = (data: Uint8Array, position: number | null) => {
        for (let at = 0; at < data.length; ) at += writeSync(fd, data, at, data.length - at, position === null ? null : position + at);
      };
      fill({ write: (bytes) => writeAll(bytes, null), rewrite: (position, bytes) => writeAll(bytes, position) });
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}

/** Put `bytes` at `path` whole or not at all (replaceFileWith). */
export function replaceFile(path: string, bytes: Uint8Array | string, mode = 0o666): void {
  const data = typeof bytes === "string" ? Buffer.from(bytes) : bytes;
  replaceFileWith(path, mode, (sink) => sink.write(data));
}
