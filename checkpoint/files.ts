/**
 * State dict files on disk: .json (nadam-state-dict/1) or .pt (torch.save),
 * told apart by content, read with limits, checked, and written.
 */
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, extname } from "node:path";
import type { StateDict } from "../tensor/state-dict.ts";
import { stateDictFromJson, stateDictToJson, type JsonStateDict } from "./json.ts";
import { CheckpointError } from "./pt/errors.ts";
import { readPt, writePt } from "./pt/torch-file.ts";
import { validateStateDict, type Problem } from "./validate.ts";

/** Largest file read: what one Node.js Buffer holds. */
export const MAX_FILE_BYTES = 2 ** 31 - 1;
/** Deepest JSON nesting read (a NAdam state dict nests 5 levels). */
export const MAX_JSON_DEPTH = 64;

export type FileKind = "json" | "pt";

export function kindOf(path: string, bytes: Uint8Array): FileKind {
  const ext = extname(path).toLowerCase();
  if (ext === ".json") return "json";
  if (ext === ".pt" || ext === ".pth") return "pt";
  return bytes[0] === 0x50 && bytes[1] === 0x4b ? "pt" : "json";
}

/** Bracket depth of a JSON text, strings skipped: refused before parsing if too deep. */
function jsonDepth(text: string, limit: number): number {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return depth;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return depth;
}

export interface CheckedFile {
  readonly kind: FileKind;
  readonly problems: Problem[];
  /** The state dict's JSON encoding, when the file could be read. */
  readonly json?: JsonStateDict;
}

/** Read and check a state dict file: every problem found, none thrown. */
export function checkFile(path: string): CheckedFile {
  let bytes: Buffer;
  try {
    const size = statSync(path).size;
    if (size > MAX_FILE_BYTES) return { kind: "pt", problems: [{ path: "", message: `${size} bytes; files over ${MAX_FILE_BYTES} bytes are not read` }] };
    bytes = readFileSync(path);
  } catch (error) {
    return { kind: "json", problems: [{ path: "", message: `cannot read: ${(error as Error).message}` }] };
  }
  return checkBytes(path, bytes);
}

/** Check a state dict held in memory; `name` only tells .json from .pt by extension. */
export function checkBytes(name: string, bytes: Buffer): CheckedFile {
  const kind = kindOf(name, bytes);
  try {
    let json: unknown;
    if (kind === "pt") {
      json = JSON.parse(JSON.stringify(stateDictToJson(readPt(bytes))));
    } else {
      const text = bytes.toString("utf8");
      if (jsonDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) return { kind, problems: [{ path: "", message: `JSON nests deeper than ${MAX_JSON_DEPTH} levels` }] };
      try {
        json = JSON.parse(text);
      } catch (error) {
        return { kind, problems: [{ path: "", message: `not JSON: ${(error as Error).message}` }] };
      }
    }
    const problems = validateStateDict(json);
    return problems.length === 0 ? { kind, problems, json: json as JsonStateDict } : { kind, problems };
  } catch (error) {
    if (error instanceof CheckpointError) return { kind, problems: [{ path: "", message: error.message }] };
    throw error;
  }
}

/** Read a valid state dict, or throw CheckpointError listing its problems. */
export function loadStateDictFile(path: string): StateDict {
  const checked = checkFile(path);
  if (checked.json === undefined) {
    throw new CheckpointError(`${path} is not a valid NAdam state_dict:\n${checked.problems.map((p) => `  ${p.path || "/"}: ${p.message}`).join("\n")}`);
  }
  return stateDictFromJson(checked.json);
}

/** Write a state dict as .json or .pt (torch.save's layout), chosen by the extension. */
export function saveStateDictFile(path: string, stateDict: StateDict): void {
  if (extname(path).toLowerCase() === ".json") {
    writeFileSync(path, JSON.stringify(stateDictToJson(stateDict), null, 1) + "\n");
  } else {
    // torch.save names the archive folder after the file.
    const archive = basename(path).replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9_.-]/g, "_") || "archive";
    writeFileSync(path, writePt(stateDict, archive));
  }
}
