/**
 * `npx nadam-reference <command>` (and `npx nadam-conformance <command>`, the
 * same commands with the golden corpus installed beside them):
 *   check ...          the conformance suite over ports (conformance/cli.ts); exit 0 only if conformant
 *   list ...           the conformance cases
 *   record ...         a port's answers, written for offline judging
 *   validate PATH...   each .json or .pt state dict, or torch.distributed.checkpoint folder: valid, or every problem found; exit 0 only if all are valid
 *   convert IN OUT     a .pt, .json or DCP folder to .pt or .json (by extension), refusing an invalid input
 *   export-onnx ...    NAdam's step as an ONNX model (cli/export-onnx.ts)
 */
import { statSync } from "node:fs";
import { createRequire } from "node:module";
import { DEFAULT_CHUNK_BYTES, openStateDict, writeStateDictFile, type CheckedFile, type CheckOptions } from "../checkpoint/files.ts";
import { CheckpointError } from "../checkpoint/pt/errors.ts";
import type { Loss } from "../checkpoint/pt/torch-file.ts";
import { BUILTIN_PORTS } from "../conformance/builtin.ts";
import { check, DEFAULT_RANDOM_CASES, HelpRequested, list, record, type CommandOptions } from "../conformance/cli.ts";
import { DEFAULT_CASE_SECONDS, DEFAULT_RUN_SECONDS } from "../conformance/suite.ts";
import { DTYPES } from "../spec/float/dtype.ts";
import { exportOnnx, exportOnnxUsage, ExportUsageError } from "./export-onnx.ts";
import { CODE_PATHS, ROUNDING_PROFILES } from "../spec/nadam/types.ts";

type Command = "check" | "list" | "record" | "validate" | "convert" | "export-onnx";

/** Each command's usage line(s). */
function commandUsage(program: string, command: Command): string {
  const pad = "    ";
  switch (command) {
    case "check":
      return `${program} check [--builtin] [--port P]... [--offline DIR]... [filters] [--policy exact|default]
${pad}[--expectations FILE] [--report DIR] [--corpus DIR] [--random N] [--seed S]
${pad}[--case-seconds S] [--run-seconds S]
  Runs the conformance suite over the ports; exit 0 only if conformant, 1 if not, 2 on a usage error.
  Besides the selected cases, N (default ${DEFAULT_RANDOM_CASES}) random ones made from a fresh seed, printed (--seed repeats them).
  A port is declared dead when a case takes over --case-seconds (default ${DEFAULT_CASE_SECONDS}); the run stops at --run-seconds (default ${DEFAULT_RUN_SECONDS}).
  --expectations FILE: waivers; its "port" must be a --port value exactly as given (or absent: every port).
  A port P: ${BUILTIN_PORTS.join(", ")} (--builtin: all of them), a .js/.mjs/.cjs/.ts/.mts/.cts module
  exporting createPort(), or a command speaking nadam-port/2 (or /1) on stdin/stdout.
  filters: --id PATTERN (substring, or glob with *), --tag T, --dtype ${DTYPES.join("|")},
           --path ${CODE_PATHS.join("|")}, --profile ${ROUNDING_PROFILES.join("|")} (each may repeat).`;
    case "list":
      return `${program} list [filters] [--corpus DIR]
  Lists the cases the filters select (the filters of check).`;
    case "record":
      return `${program} record --port P --out DIR [filters] [--corpus DIR]
  Writes a port's answers into DIR, to be judged later with check --offline DIR.`;
    case "validate":
      return `${program} validate [--deep] [--chunk-size BYTES] PATH...
  Checks each NAdam state dict: a .json, a .pt (torch.save; also dcp_to_torch_save's and
  get_optimizer_state_dict's, keyed by param name) or a torch.distributed.checkpoint folder
  (.metadata and its .distcp shards, as one logical state dict): valid, or every problem found.
  Tensors are read where they lie, BYTES at a time (default ${DEFAULT_CHUNK_BYTES / 2 ** 20}M; K, M, G suffixes): memory is bounded by that.
  --deep: also every exp_avg element finite and every exp_avg_sq element >= 0 and not NaN, counted.
  Exit 0 only if all are valid, 1 if not, 2 on a usage error.`;
    case "convert":
      return `${program} convert [--chunk-size BYTES] IN OUT
  Converts a state dict (.pt, .json or a torch.distributed.checkpoint folder, consolidated) to .pt
  or .json (by OUT's extension), streamed; refuses an invalid input and leaves OUT as it was.`;
    case "export-onnx":
      return exportOnnxUsage(program);
  }
}

const COMMANDS: readonly Command[] = ["check", "list", "record", "validate", "convert", "export-onnx"];

function usage(program: string): string {
  return `usage:\n${COMMANDS.map((c) => `  ${commandUsage(program, c).replace(/\n/g, "\n  ")}`).join("\n")}\n  ${program} --version`;
}

/** This package's version, from its package.json (found through the package's own exports). */
function version(): string {
  return (createRequire(import.meta.url)("nadam-reference/package.json") as { version: string }).version;
}

function describe(checked: CheckedFile): string {
  const sd = checked.skeleton!;
  const params = sd.param_groups.reduce((n, g) => n + (g.params as unknown[]).length, 0);
  const withState = Object.keys(sd.state).length;
  const at = checked.at === undefined ? "" : ` at '${checked.at}'`;
  return `${checked.kind}${at}; ${params} param${params === 1 ? "" : "s"} in ${sd.param_groups.length} group${sd.param_groups.length === 1 ? "" : "s"}, ${withState} with state, ${bytesText(checked.tensorBytes ?? 0)} of tensors`;
}

function bytesText(n: number): string {
  if (n < 2 ** 10) return `${n} B`;
  const [unit, size] = n < 2 ** 20 ? ["KiB", 2 ** 10] : n < 2 ** 30 ? ["MiB", 2 ** 20] : ["GiB", 2 ** 30];
  return `${(n / (size as number)).toFixed(1)} ${unit}`;
}

class UsageError extends Error {}

/** --chunk-size's value: bytes, with an optional K, M or G (binary) suffix. */
function parseBytes(text: string | undefined): number {
  const m = /^(\d+)([KMG]i?B?)?$/i.exec(text ?? "");
  if (!m) throw new UsageError(`--chunk-size needs a size in bytes (e.g. 4M), not ${JSON.stringify(text ?? "")}`);
  const n = Number(m[1]) * 2 ** (10 * " KMG".indexOf((m[2] ?? " ")[0]!.toUpperCase()));
  if (!(n >= 16 && n <= 2 ** 30)) throw new UsageError(`--chunk-size ${text}: between 16 bytes and 1G`);
  return n;
}

/** A command's flags (--deep, --chunk-size) and its other arguments. */
function parseArgs(args: string[], flags: readonly string[]): { options: CheckOptions & { chunkBytes: number }; rest: string[] } {
  let deep = false;
  let chunkBytes = DEFAULT_CHUNK_BYTES;
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") {
      rest.push(...args.slice(i + 1));
      break;
    }
    if (!a.startsWith("--")) rest.push(a);
    else if (a === "--deep" && flags.includes(a)) deep = true;
    else if (a === "--chunk-size" && flags.includes(a)) chunkBytes = parseBytes(args[++i]);
    else if (a.startsWith("--chunk-size=") && flags.includes("--chunk-size")) chunkBytes = parseBytes(a.slice("--chunk-size=".length));
    else throw new UsageError(`unknown option ${JSON.stringify(a)}`);
  }
  return { options: { deep, chunkBytes }, rest };
}

function validate(args: string[], out: (line: string) => void, program: string): number {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs(args, ["--deep", "--chunk-size"]);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    out(`${program} validate: ${error.message}`);
    out(`usage: ${commandUsage(program, "validate")}`);
    return 2;
  }
  const files = parsed.rest;
  if (files.length === 0) {
    out(`usage: ${commandUsage(program, "validate")}`);
    return 2;
  }
  let invalid = 0;
  for (const file of files) {
    const { close, ...checked } = openStateDict(file, parsed.options);
    close();
    if (checked.skeleton !== undefined) {
      out(`${file}: valid NAdam state_dict (${describe(checked)})`);
      if (checked.deep) out(`  values: ${checked.deep.components} in ${checked.deep.tensors} tensors (${bytesText(checked.deep.bytes)}) read: every exp_avg finite, every exp_avg_sq >= 0 and not NaN`);
      continue;
    }
    invalid++;
    out(`${file}: INVALID`);
    for (const p of checked.problems) out(`  ${p.path || "/"}: ${p.message}`);
    if (checked.deep) out(`  values: ${checked.deep.components} in ${checked.deep.tensors} tensors (${bytesText(checked.deep.bytes)}) read`);
  }
  out(`${files.length - invalid} valid, ${invalid} invalid`);
  return invalid === 0 ? 0 : 1;
}

/** Whether two paths name one file (through links too); false when either does not exist. */
function sameFile(a: string, b: string): boolean {
  try {
    const [x, y] = [statSync(a), statSync(b)];
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}

function convert(args: string[], out: (line: string) => void, program: string): number {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs(args, ["--chunk-size"]);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    out(`${program} convert: ${error.message}`);
    out(`usage: ${commandUsage(program, "convert")}`);
    return 2;
  }
  if (parsed.rest.length !== 2) {
    out(`usage: ${commandUsage(program, "convert")}`);
    return 2;
  }
  const [input, output] = parsed.rest as [string, string];
  let losses: readonly Loss[] = [];
  try {
    if (sameFile(input, output)) throw new CheckpointError(`${input} and ${output} are the same file; convert writes a new one`);
    const opened = openStateDict(input, parsed.options);
    try {
      if (opened.skeleton === undefined) {
        throw new CheckpointError(`${input} is not a valid NAdam state_dict:\n${opened.problems.map((p) => `  ${p.path || "/"}: ${p.message}`).join("\n")}`);
      }
      losses = opened.losses ?? [];
      writeStateDictFile(output, opened.skeleton, parsed.options.chunkBytes);
    } finally {
      opened.close();
    }
  } catch (error) {
    if (!(error instanceof CheckpointError)) throw error;
    out(error.message);
    return 1;
  }
  out(`${input} -> ${output}`);
  // Said, not hidden: what the output cannot keep of the input's Python values.
  for (const loss of losses.slice(0, 20)) out(`  note: ${loss.path}: ${loss.what}`);
  if (losses.length > 20) out(`  note: and ${losses.length - 20} more such values`);
  return 0;
}

export interface MainOptions extends CommandOptions {
  /** The command's name in messages. Default "nadam-reference". */
  readonly program?: string;
}

export async function main(argv: string[], out: (line: string) => void = (line) => console.log(line), options: MainOptions = {}): Promise<number> {
  const program = options.program ?? "nadam-reference";
  const [command, ...rest] = argv;
  if (command === "--version" || command === "-V") {
    out(`${program} ${version()}`);
    return 0;
  }
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    out(usage(program));
    return 0;
  }
  if (!(COMMANDS as readonly string[]).includes(command)) {
    out(`${program}: unknown command ${JSON.stringify(command)}`);
    out(usage(program));
    return 2;
  }
  const name = command as Command;
  if (rest.includes("--help") || rest.includes("-h")) {
    out(`usage: ${commandUsage(program, name)}`);
    return 0;
  }
  if (name === "validate") return validate(rest, out, program);
  if (name === "convert") return convert(rest, out, program);
  if (name === "export-onnx") {
    try {
      return exportOnnx(rest, out);
    } catch (error) {
      if (!(error instanceof ExportUsageError)) throw error;
      out(`${program} export-onnx: ${error.message}`);
      out(`usage: ${commandUsage(program, name)}`);
      return 2;
    }
  }
  try {
    return await { check, list, record }[name](rest, out, options);
  } catch (error) {
    if (error instanceof HelpRequested) {
      out(`usage: ${commandUsage(program, name)}`);
      return 0;
    }
    out(`${program} ${command}: ${(error as Error).message}`);
    return 2;
  }
}
