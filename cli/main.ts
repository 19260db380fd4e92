/**
 * `npx nadam-reference <command>` (and `npx nadam-conformance <command>`, the
 * same commands with the golden corpus installed beside them):
 *   check ...          the conformance suite over ports (conformance/cli.ts); exit 0 only if conformant
 *   list ...           the conformance cases
 *   record ...         a port's answers, written for offline judging
 *   validate FILE...   each .json or .pt state dict: valid, or every problem found; exit 0 only if all are valid
 *   convert IN OUT     between .pt and .json (by extension), refusing an invalid input
 *   export-onnx ...    NAdam's step as an ONNX model (cli/export-onnx.ts)
 */
import { statSync } from "node:fs";
import { createRequire } from "node:module";
import { checkFile, loadStateDictFile, saveStateDictFile } from "../checkpoint/files.ts";
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
      return `${program} validate FILE...
  Checks each .json or .pt NAdam state dict: valid, or every problem found; exit 0 only if all are valid.`;
    case "convert":
      return `${program} convert IN OUT
  Converts a state dict between .pt and .json (by extension), refusing an invalid input.`;
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

function describe(json: NonNullable<ReturnType<typeof checkFile>["json"]>): string {
  const params = json.param_groups.reduce((n, g) => n + (g.params as unknown[]).length, 0);
  const withState = Object.keys(json.state).length;
  return `${params} params in ${json.param_groups.length} group${json.param_groups.length === 1 ? "" : "s"}, ${withState} with state`;
}

function validate(files: string[], out: (line: string) => void, program: string): number {
  if (files.length === 0) {
    out(`usage: ${commandUsage(program, "validate")}`);
    return 2;
  }
  let invalid = 0;
  for (const file of files) {
    const checked = checkFile(file);
    if (checked.json !== undefined) {
      out(`${file}: valid NAdam state_dict (${checked.kind}; ${describe(checked.json)})`);
      continue;
    }
    invalid++;
    out(`${file}: INVALID`);
    for (const p of checked.problems) out(`  ${p.path || "/"}: ${p.message}`);
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
  if (args.length !== 2) {
    out(`usage: ${commandUsage(program, "convert")}`);
    return 2;
  }
  const [input, output] = args as [string, string];
  const losses: Loss[] = [];
  try {
    if (sameFile(input, output)) throw new CheckpointError(`${input} and ${output} are the same file; convert writes a new one`);
    saveStateDictFile(output, loadStateDictFile(input, losses));
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
