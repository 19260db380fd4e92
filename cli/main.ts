/**
 * `npx nadam-reference <command>` (and `npx nadam-conformance <command>`, the
 * same commands with the golden corpus installed beside them):
 *   check ...          the conformance suite over ports (conformance/cli.ts); exit 0 only if conformant
 *   list ...           the conformance cases
 *   record ...         a port's answers, written for offline judging
 *   validate FILE...   each .json or .pt state dict: valid, or every problem found; exit 0 only if all are valid
 *   convert IN OUT     between .pt and .json (by extension), refusing an invalid input
 */
import { checkFile, loadStateDictFile, saveStateDictFile } from "../checkpoint/files.ts";
import { CheckpointError } from "../checkpoint/pt/errors.ts";
import { BUILTIN_PORTS } from "../conformance/builtin.ts";
import { check, list, record, type CommandOptions } from "../conformance/cli.ts";

function usage(program: string): string {
  const pad = " ".repeat(program.length);
  return `usage: ${program} check [--builtin] [--port P]... [--offline DIR]... [--id PATTERN] [--tag T] [--dtype D]
       ${pad}       [--path forloop|foreach] [--profile default|vectorized] [--policy exact|default]
       ${pad}       [--expectations FILE] [--report DIR] [--corpus DIR]
       ${program} list [filters] [--corpus DIR]
       ${program} record --port P --out DIR [filters] [--corpus DIR]
       ${program} validate FILE...
       ${program} convert IN OUT      (.pt <-> .json, by extension)
A port P: ${BUILTIN_PORTS.join(", ")}, a module exporting createPort(), or a command speaking nadam-port/1.`;
}

function describe(json: NonNullable<ReturnType<typeof checkFile>["json"]>): string {
  const params = json.param_groups.reduce((n, g) => n + (g.params as unknown[]).length, 0);
  const withState = Object.keys(json.state).length;
  return `${params} params in ${json.param_groups.length} group${json.param_groups.length === 1 ? "" : "s"}, ${withState} with state`;
}

function validate(files: string[], out: (line: string) => void, program: string): number {
  if (files.length === 0) {
    out(usage(program));
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

function convert(args: string[], out: (line: string) => void, program: string): number {
  if (args.length !== 2) {
    out(usage(program));
    return 2;
  }
  const [input, output] = args as [string, string];
  try {
    saveStateDictFile(output, loadStateDictFile(input));
  } catch (error) {
    if (!(error instanceof CheckpointError)) throw error;
    out(error.message);
    return 1;
  }
  out(`${input} -> ${output}`);
  return 0;
}

export interface MainOptions extends CommandOptions {
  /** The command's name in messages. Default "nadam-reference". */
  readonly program?: string;
}

export async function main(argv: string[], out: (line: string) => void = (line) => console.log(line), options: MainOptions = {}): Promise<number> {
  const program = options.program ?? "nadam-reference";
  const [command, ...rest] = argv;
  if (command === "validate") return validate(rest, out, program);
  if (command === "convert") return convert(rest, out, program);
  const suite = { check, list, record }[command as "check" | "list" | "record"];
  if (suite) {
    try {
      return await suite(rest, out, options);
    } catch (error) {
      out(`${program} ${command}: ${(error as Error).message}`);
      return 2;
    }
  }
  if (command !== undefined && command !== "help" && command !== "--help") out(`${program}: unknown command ${JSON.stringify(command)}`);
  out(usage(program));
  return command === undefined || command === "help" || command === "--help" ? 0 : 2;
}
