/**
 * `npx nadam <command>`:
 *   check ...          the conformance suite over ports (conformance/cli.ts); exit 0 only if conformant
 *   list ...           the conformance cases
 *   record ...         a port's answers, written for offline judging
 *   validate FILE...   each .json or .pt state dict: valid, or every problem found; exit 0 only if all are valid
 *   convert IN OUT     between .pt and .json (by extension), refusing an invalid input
 */
import { checkFile, loadStateDictFile, saveStateDictFile } from "../checkpoint/files.ts";
import { CheckpointError } from "../checkpoint/pt/errors.ts";
import { check, list, record } from "../conformance/cli.ts";

const USAGE = `usage: nadam check [--builtin] [--port P]... [--offline DIR]... [--id PATTERN] [--tag T] [--dtype D]
                   [--path forloop|foreach] [--profile default|vectorized] [--policy exact|default]
                   [--expectations FILE] [--report DIR]
       nadam list [filters]
       nadam record --port P --out DIR [filters]
       nadam validate FILE...
       nadam convert IN OUT      (.pt <-> .json, by extension)
A port P: builtin:spec, builtin:<backend> (see --builtin), a module exporting createPort(), or a command speaking nadam-port/1.`;

function describe(json: NonNullable<ReturnType<typeof checkFile>["json"]>): string {
  const params = json.param_groups.reduce((n, g) => n + (g.params as unknown[]).length, 0);
  const withState = Object.keys(json.state).length;
  return `${params} params in ${json.param_groups.length} group${json.param_groups.length === 1 ? "" : "s"}, ${withState} with state`;
}

function validate(files: string[], out: (line: string) => void): number {
  if (files.length === 0) {
    out(USAGE);
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

function convert(args: string[], out: (line: string) => void): number {
  if (args.length !== 2) {
    out(USAGE);
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

export async function main(argv: string[], out: (line: string) => void = (line) => console.log(line)): Promise<number> {
  const [command, ...rest] = argv;
  if (command === "validate") return validate(rest, out);
  if (command === "convert") return convert(rest, out);
  const suite = { check, list, record }[command as "check" | "list" | "record"];
  if (suite) {
    try {
      return await suite(rest, out);
    } catch (error) {
      out(`nadam ${command}: ${(error as Error).message}`);
      return 2;
    }
  }
  out(USAGE);
  return command === undefined || command === "help" || command === "--help" ? 0 : 2;
}
