/**
 * State dict files on disk: .json (nadam-state-dict/1) or .pt (torch.save),
 * told apart by content, read with limits, checked, and written.
 */
import { constants as bufferConstants } from "node:buffer";
import { randomBytes } from "node:crypto";
import { closeSync, constants, fstatSync, fsyncSync, lstatSync, openSync, readSync, renameSync, rmSync, statSync, writeSync, type Stats } from "node:fs";
import { basename, dirname, extname, join } from "node:path";
import type { StateDict } from "../tensor/state-dict.ts";
import { stateDictFromJson, stateDictToJson, type JsonStateDict } from "./json.ts";
import { CheckpointError } from "./pt/errors.ts";
import { readPt, writePt, type Loss } from "./pt/torch-file.ts";
import { validateStateDict, type Problem } from "./validate.ts";

/** Largest file read: what one Node.js Buffer holds. */
export const MAX_FILE_BYTES = 2 ** 31 - 1;
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

export type FileKind = "json" | "pt";

export function kindOf(path: string, bytes: Uint8Array): FileKind {
  const ext = extname(path).toLowerCase();
  if (ext === ".json") return "json";
  if (ext === ".pt" || ext === ".pth") return "pt";
  return bytes[0] === 0x50 && bytes[1] === 0x4b ? "pt" : "json";
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

export interface CheckedFile {
  readonly kind: FileKind;
  readonly problems: Problem[];
  /** The state dict's JSON encoding, when the file could be read. */
  readonly json?: JsonStateDict;
  /** What the read value cannot keep of a .pt's Python values (written out again, they come back different). */
  readonly losses?: readonly Loss[];
}

/** What a path is when it is not a regular file (stat's answer): the size a device or FIFO gives says nothing. */
function fileType(stat: Stats): string | undefined {
  if (stat.isFile()) return undefined;
  if (stat.isDirectory()) return "a directory";
  if (stat.isCharacterDevice()) return "a character device";
  if (stat.isBlockDevice()) return "a block device";
  if (stat.isFIFO()) return "a FIFO (named pipe)";
  if (stat.isSocket()) return "a socket";
  return "not a regular file";
}

/**
 * A regular file's bytes, at most `max` of them; opened without blocking (a
 * FIFO would wait for a writer), checked by the opened file's own stat (a
 * symlink to /dev/zero is a character device; its size 0 bounds nothing).
 */
export function readRegularFile(path: string, max: number, options: { readonly followLinks?: boolean } = {}): Buffer {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | (options.followLinks === false ? constants.O_NOFOLLOW : 0));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ELOOP" && options.followLinks === false) throw new CheckpointError("a symbolic link, which is not followed here");
    throw error;
  }
  try {
    const stat = fstatSync(fd);
    const type = fileType(stat);
    if (type !== undefined) throw new CheckpointError(`${type}, not a regular file`);
    if (stat.size > max) throw new CheckpointError(`${stat.size} bytes; files over ${max} bytes are not read`);
    // Read what stat promised, and one byte more to notice a file that grew meanwhile.
    const bytes = Buffer.alloc(stat.size + 1);
    let length = 0;
    for (let n; length < bytes.length && (n = readSync(fd, bytes, length, bytes.length - length, null)) > 0; ) length += n;
    if (length > stat.size) throw new CheckpointError(`grew past its ${stat.size} bytes while being read`);
    return bytes.subarray(0, length);
  } finally {
    closeSync(fd);
  }
}

/** Read and check a state dict file: every problem found, none thrown. */
export function checkFile(path: string): CheckedFile {
  let bytes: Buffer;
  try {
    bytes = readRegularFile(path, MAX_FILE_BYTES);
  } catch (error) {
    const message = error instanceof CheckpointError ? error.message : `cannot read: ${(error as Error).message}`;
    return { kind: extname(path).toLowerCase() === ".json" ? "json" : "pt", problems: [{ path: "", message }] };
  }
  return checkBytes(path, bytes);
}

/** Check a state dict held in memory; `name` only tells .json from .pt by extension. */
export function checkBytes(name: string, bytes: Buffer): CheckedFile {
  const kind = kindOf(name, bytes);
  try {
    let json: unknown;
    const losses: Loss[] = [];
    if (kind === "pt") {
      json = JSON.parse(JSON.stringify(stateDictToJson(readPt(bytes, undefined, losses))));
    } else {
      // Past V8's longest string the text cannot even be held (a crash, not a refusal, if it were tried).
      if (bytes.length > MAX_STRING_LENGTH) return { kind, problems: [{ path: "", message: `a JSON file of ${bytes.length} bytes; this Node holds text of at most ${MAX_STRING_LENGTH} characters (convert such a state dict as .pt)` }] };
      const text = bytes.toString("utf8");
      const refused = scanJson(text, MAX_JSON_DEPTH);
      if (refused !== undefined) return { kind, problems: [{ path: "", message: refused }] };
      try {
        json = JSON.parse(text);
      } catch (error) {
        return { kind, problems: [{ path: "", message: `not JSON: ${(error as Error).message}` }] };
      }
    }
    const problems = validateStateDict(json);
    return problems.length === 0 ? { kind, problems, json: json as JsonStateDict, losses } : { kind, problems };
  } catch (error) {
    if (error instanceof CheckpointError) return { kind, problems: [{ path: "", message: error.message }] };
    throw error;
  }
}

/** Read a valid state dict, or throw CheckpointError listing its problems. */
export function loadStateDictFile(path: string, losses: Loss[] = []): StateDict {
  const checked = checkFile(path);
  losses.push(...(checked.losses ?? []));
  if (checked.json === undefined) {
    throw new CheckpointError(`${path} is not a valid NAdam state_dict:\n${checked.problems.map((p) => `  ${p.path || "/"}: ${p.message}`).join("\n")}`);
  }
  return stateDictFromJson(checked.json);
}

/** A state dict as the bytes of a .json or .pt file (torch.save's layout), chosen by the path's extension. */
export function stateDictFileBytes(path: string, stateDict: StateDict): Buffer {
  if (extname(path).toLowerCase() === ".json") return Buffer.from(JSON.stringify(stateDictToJson(stateDict), null, 1) + "\n");
  // torch.save names the archive folder after the file.
  const archive = basename(path).replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9_.-]/g, "_") || "archive";
  return writePt(stateDict, archive);
}

/**
 * Write a state dict as .json or .pt, chosen by the extension: into a new
 * file beside the target, flushed, then renamed over it, so that a failing
 * write (a full disk, a file size limit) or a kill midway leaves the previous
 * file as it was. A symlink, a directory or a device at the target is refused,
 * as is a folder that does not exist.
 */
export function saveStateDictFile(path: string, stateDict: StateDict): void {
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
  const bytes = stateDictFileBytes(path, stateDict); // built first: a state dict that cannot be written touches nothing
  try {
    replaceFile(path, bytes, target !== undefined ? target.mode & 0o777 : 0o666);
  } catch (error) {
    throw new CheckpointError(`cannot write ${path}: ${(error as Error).message}; ${target !== undefined ? "the file there is unchanged" : "nothing was written"}`);
  }
}

/**
 * Put `bytes` at `path` whole or not at all: written to a new file beside it,
 * flushed, renamed over it. What was there (a file, or a symlink, which is
 * replaced, never written through) stays as it was if anything fails.
 */
export function replaceFile(path: string, bytes: Uint8Array | string, mode = 0o666): void {
  const data = typeof bytes === "string" ? Buffer.from(bytes) : bytes;
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const fd = openSync(temporary, "wx", mode);
    try {
      for (let at = 0; at < data.length; ) at += writeSync(fd, data, at, data.length - at);
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
