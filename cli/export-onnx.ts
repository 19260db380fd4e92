/**
 * `nadam-reference export-onnx`: writes the ONNX Runtime backend's step graph
 * for one signature to a .onnx file, so that the step can run in any ONNX
 * runtime. The file is written beside the target and renamed over it, so a
 * failed write leaves any previous file as it was.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { ONNX_IR_VERSION, ONNX_OPSET, onnxStepGraph, onnxStepModel, SCALAR_INPUTS, type StepGraphSignature } from "../impl/index.ts";
import { CODE_PATHS, CPU_ROUNDING_PROFILES } from "../spec/nadam/types.ts";

const CHOICES = {
  "--path": CODE_PATHS,
  "--dtype": ["float32", "float64", "float16", "bfloat16"],
  "--profile": CPU_ROUNDING_PROFILES,
  "--weight-decay": ["none", "l2", "decoupled"],
  "--lerp": ["small-weight", "large-weight"],
} as const;

export function exportOnnxUsage(program: string): string {
  return `${program} export-onnx --out FILE.onnx [--path ${CODE_PATHS.join("|")}] [--dtype float32|float64|float16|bfloat16]
    [--profile ${CPU_ROUNDING_PROFILES.join("|")}] [--params N] [--weight-decay none|l2|decoupled] [--maximize]
    [--lerp small-weight|large-weight]
  Writes NAdam's step as an ONNX model (IR ${ONNX_IR_VERSION}, opset ${ONNX_OPSET}): the graph the ONNX Runtime
  backends run, bit-exact to PyTorch's CPU kernels under the profile. Defaults: foreach, float32, default,
  1 param, no weight decay, small-weight lerp (|1 - beta1| < 0.5). Prints its inputs.`;
}

/** Thrown for a usage error (exit 2). */
export class ExportUsageError extends Error {}

function parse(args: readonly string[]): { out: string; sig: StepGraphSignature } {
  const values = new Map<string, string>();
  let maximize = false;
  for (let i = 0; i < args.length; i++) {
    const flag = args[i]!;
    if (flag === "--maximize") {
      maximize = true;
      continue;
    }
    if (!(flag in CHOICES) && flag !== "--out" && flag !== "--params") throw new ExportUsageError(`unknown argument ${JSON.stringify(flag)}`);
    const value = args[++i];
    if (value === undefined) throw new ExportUsageError(`${flag} needs a value`);
    if (values.has(flag)) throw new ExportUsageError(`${flag} given twice`);
    const choices = (CHOICES as Record<string, readonly string[]>)[flag];
    if (choices !== undefined && !choices.includes(value)) throw new ExportUsageError(`${flag} must be one of ${choices.join(", ")}, not ${JSON.stringify(value)}`);
    values.set(flag, value);
  }
  const out = values.get("--out");
  if (out === undefined) throw new ExportUsageError("--out FILE.onnx is required");
  const path = (values.get("--path") ?? "foreach") as StepGraphSignature["path"];
  const paramsText = values.get("--params") ?? "1";
  const params = /^[1-9][0-9]{0,3}$/.test(paramsText) ? Number(paramsText) : NaN;
  if (!(params >= 1 && params <= 4096)) throw new ExportUsageError(`--params must be a whole number from 1 to 4096, not ${JSON.stringify(paramsText)}`);
  if (path === "forloop" && params !== 1) throw new ExportUsageError("the for-loop path updates one param per run: --params 1");
  return {
    out,
    sig: {
      path,
      dtype: (values.get("--dtype") ?? "float32") as StepGraphSignature["dtype"],
      profile: (values.get("--profile") ?? "default") as StepGraphSignature["profile"],
      params,
      maximize,
      weightDecay: (values.get("--weight-decay") ?? "none") as StepGraphSignature["weightDecay"],
      lerp: (values.get("--lerp") ?? "small-weight") as StepGraphSignature["lerp"],
    },
  };
}

/** Writes `bytes` to `file` through a temporary file in the same folder, renamed over it. */
function writeAtomically(file: string, bytes: Uint8Array): void {
  const temporary = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  const fd = openSync(temporary, "wx", 0o644);
  try {
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(temporary, file);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}

export function exportOnnx(args: readonly string[], out: (line: string) => void): number {
  const { out: file, sig } = parse(args);
  const graph = onnxStepGraph(sig);
  const bytes = onnxStepModel(sig);
  try {
    writeAtomically(file, bytes);
  } catch (error) {
    out(`cannot write ${file}: ${(error as Error).message}`);
    return 1;
  }
  out(`${file}: ${bytes.length} bytes, ONNX IR ${ONNX_IR_VERSION}, opset ${ONNX_OPSET}, ${graph.nodes.length} nodes (${graph.name})`);
  const shapes = (v: { shape: readonly (number | string)[] }) => `[${v.shape.join(", ")}]`;
  const carried = sig.dtype === "bfloat16" ? "bfloat16 values as float32 tensors" : `${sig.dtype} tensors`;
  out(`inputs (flattened ${carried} of length n{i}; 0-d scalars in ${sig.dtype === "float64" ? "float64" : "float32"}, one set for all the params):`);
  for (const v of graph.inputs) {
    const doc = (SCALAR_INPUTS as Record<string, string>)[v.name];
    out(`  ${v.name} ${shapes(v)}${doc ? `: ${doc}` : ""}`);
  }
  out(`outputs: ${graph.outputs.map((v) => `${v.name} ${shapes(v)}`).join(", ")}`);
  return 0;
}
