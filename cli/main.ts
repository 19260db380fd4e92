/**
 * `npx nadam <command>`:
 *   validate FILE...   each .json or .pt file: valid, or every problem found; exit 0 only if all are valid
 *   convert IN OUT     between .pt and .json (by extension), refusing an invalid input
 */
import { checkFile, loadStateDictFile, saveStateDictFile } from "../checkpoint/files.ts";
import { CheckpointError } from "../checkpoint/pt/errors.ts";

const USAGE = `usage: nadam validate FILE...
       nadam convert IN OUT      (.pt <-> .json, by extension)`;

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

export function main(argv: string[], out: (line: string) => void = (line) => console.log(line)): number {
  const [command, ...rest] = argv;
  if (command === "validate") return validate(rest, out);
  if (command === "convert") return convert(rest, out);
  out(USAGE);
  return command === undefined || command === "help" || command === "--help" ? 0 : 2;
}
