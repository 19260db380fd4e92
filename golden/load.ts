/**
 * Loading the golden corpus: every file checked against golden/schema.json
 * (compiled to schema.validate.js) and against what a schema cannot say (hex lengths against dtype and
 * shape, per-step list lengths, ids), with errors that name the file and the
 * JSON path.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { hexDigits } from "../spec/float/codec.ts";
import type { DType } from "../spec/float/dtype.ts";
import type { GoldenCase } from "./case.ts";
import validateSchema, { type SchemaError } from "./schema.validate.js";

export const GOLDEN_DIR = dirname(fileURLToPath(import.meta.url));
export const GOLDEN_DATA_DIR = join(GOLDEN_DIR, "data");
/** Real PyTorch on CUDA (golden/cuda.test.ts): replayed by the spec; the suite's corpus only when named (check --corpus golden/cuda). */
export const GOLDEN_CUDA_DIR = join(GOLDEN_DIR, "cuda");

export interface GoldenRun {
  readonly dir: string;
  readonly torch: GoldenCase["torch"];
  readonly written: number;
  readonly skipped: readonly { readonly id: string; readonly reason: string }[];
}

export interface GoldenManifest {
  readonly format: "nadam-golden-manifest/1";
  readonly generator: { readonly path: string; readonly sha256: string };
  readonly runs: readonly GoldenRun[];
  /** Path relative to golden/data → sha256 of the file. */
  readonly files: Readonly<Record<string, string>>;
}


export class GoldenFormatError extends Error {
  override readonly name = "GoldenFormatError";
}

function describe(errors: readonly SchemaError[]): string {
  return errors.map((e) => `${e.instancePath || "/"} ${e.message ?? "is invalid"}`).join("; ");
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The checks a JSON Schema cannot express; returns the problems found. */
export function semanticProblems(c: GoldenCase): string[] {
  const problems: string[] = [];
  const hexLength = (dtype: DType, count: number): number => hexDigits(dtype) * count;
  const sizes = c.params.map((p, id) => {
    const n = numel(p.init.shape);
    if (p.init.dtype !== c.dtype) problems.push(`/params/${id}/init/dtype is ${p.init.dtype}, the case's dtype is ${c.dtype}`);
    if (p.init.hex.length !== hexLength(p.init.dtype, n)) {
      problems.push(`/params/${id}/init/hex has ${p.init.hex.length} hex digits, shape ${JSON.stringify(p.init.shape)} of ${p.init.dtype} needs ${hexLength(p.init.dtype, n)}`);
    }
    return n;
  });
  const grouped = new Set<number>();
  const addGroup = (ids: readonly number[], where: string): void => {
    for (const id of ids) {
      if (id >= c.params.length) problems.push(`${where} names param ${id}, but there are ${c.params.length}`);
      if (grouped.has(id)) problems.push(`${where}: param ${id} is already in a group`);
      grouped.add(id);
    }
  };
  c.param_groups.forEach((g, i) => addGroup(g.params, `/param_groups/${i}/params`));
  c.steps.forEach((step, s) => {
    step.events?.forEach((e, k) => {
      if (e.kind === "add_param_group") addGroup(e.params, `/steps/${s}/events/${k}/params`);
      if (e.kind === "set" && e.group >= c.param_groups.length + s) problems.push(`/steps/${s}/events/${k}/group ${e.group} does not exist`);
    });
    const existing = step.params.length;
    if (step.grads.length !== existing || step.state.length !== existing) {
      problems.push(`/steps/${s}: ${step.grads.length} grads, ${existing} params, ${step.state.length} states; they must agree`);
    }
    step.params.forEach((hex, id) => {
      const expected = hexLength(c.dtype, sizes[id] ?? 0);
      if (hex.length !== expected) problems.push(`/steps/${s}/params/${id} has ${hex.length} hex digits, expected ${expected}`);
      const grad = step.grads[id];
      if (grad != null && grad.length !== expected) problems.push(`/steps/${s}/grads/${id} has ${grad.length} hex digits, expected ${expected}`);
      const state = step.state[id];
      if (state) {
        for (const key of ["exp_avg", "exp_avg_sq"] as const) {
          if (state[key].length !== expected) problems.push(`/steps/${s}/state/${id}/${key} has ${state[key].length} hex digits, expected ${expected}`);
        }
        for (const key of ["step", "mu_product"] as const) {
          const [dtype, hex] = state[key];
          if (hex.length !== hexDigits(dtype)) problems.push(`/steps/${s}/state/${id}/${key} is not one ${dtype} value`);
        }
      }
    });
  });
  return problems;
}

/** Parse and check one golden file; throws GoldenFormatError naming the file and path. */
export function parseGoldenCase(text: string, file: string): GoldenCase {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new GoldenFormatError(`${file}: not JSON: ${(error as Error).message}`);
  }
  if (!validateSchema(data)) throw new GoldenFormatError(`${file}: does not match golden/schema.json: ${describe(validateSchema.errors ?? [])}`);
  const golden = data as GoldenCase; // what the schema accepts is a GoldenCase (case.ts types it)
  const problems = semanticProblems(golden);
  if (problems.length > 0) throw new GoldenFormatError(`${file}: ${problems.join("; ")}`);
  return golden;
}

export function loadManifest(dataDir = GOLDEN_DATA_DIR): GoldenManifest {
  return JSON.parse(readFileSync(join(dataDir, "manifest.json"), "utf8")) as GoldenManifest;
}

/**
 * Every golden case listed in the manifest, in manifest order: each file's
 * sha256 checked against the manifest (a damaged or edited corpus is refused),
 * then its schema and what a schema cannot say.
 */
export function loadGoldenCorpus(dataDir = GOLDEN_DATA_DIR): { file: string; golden: GoldenCase }[] {
  const manifest = loadManifest(dataDir);
  return Object.entries(manifest.files).map(([file, sha256]) => {
    const bytes = readFileSync(join(dataDir, file));
    const actual = createHash("sha256").update(bytes).digest("hex");
    if (actual !== sha256) throw new GoldenFormatError(`${join(dataDir, file)}: sha256 ${actual} is not the manifest's ${sha256}: the corpus was changed or damaged`);
    return { file, golden: parseGoldenCase(bytes.toString("utf8"), file) };
  });
}

/** Every case the spec replays: the CPU corpus, then golden/cuda. */
export function loadReplayedCases(): { file: string; golden: GoldenCase }[] {
  return [...loadGoldenCorpus(), ...loadGoldenCorpus(GOLDEN_CUDA_DIR)];
}
