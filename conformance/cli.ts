/**
 * `check`, `list`, `record`: the conformance suite's commands.
 *
 *   check [--port P]... [--offline DIR]... [--builtin] [filters] [--policy exact|default]
 *         [--expectations FILE] [--report DIR] [--corpus DIR] [--case-seconds S] [--run-seconds S]
 *         [--random N] [--seed S]
 * check adds N (default 8) random cases made from a fresh seed (printed; --seed repeats them).
 *   list [filters] [--corpus DIR]
 *   record --port P --out DIR [filters] [--corpus DIR]
 *
 * A port P is `builtin:spec` or `builtin:<backend>` (builtin.ts), a
 * .js/.mjs/.cjs/.ts/.mts/.cts module exporting createPort(), or a command line
 * speaking nadam-port/2 (or /1) on stdin/stdout.
 * Filters: --id PATTERN (substring, or glob with *), --tag T, --dtype D,
 * --path forloop|foreach, --profile default|vectorized (each may repeat).
 * --corpus: the golden corpus folder (default: golden/locate.ts's search).
 */
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { locateCorpus } from "../golden/locate.ts";
import { allCases, selectCases, type CaseFilter, type ConformanceCase } from "./cases.ts";
import { offlinePort, recordingPort } from "./offline.ts";
import { POLICIES } from "./policy.ts";
import { freshSeed, randomCases } from "./random.ts";
import type { Port } from "./port.ts";
import { failures, matrix } from "./report/console.ts";
import { writeReports } from "./report/write.ts";
import { BUILTIN_PORTS, builtinPort } from "./builtin.ts";
import { parseCommand, subprocessPort } from "./subprocess.ts";
import { conformant, loadExpectations, runSuite, type Expectations, type NamedPort } from "./suite.ts";
import { CODE_PATHS, ROUNDING_PROFILES, type CodePath, type RoundingProfile } from "../spec/nadam/types.ts";
import { DTYPES, type DType } from "../spec/float/dtype.ts";

interface Args {
  readonly flags: Map<string, string[]>;
  readonly switches: Set<string>;
}

const FILTER_FLAGS = ["id", "tag", "dtype", "path", "profile", "corpus"];
/** The flags each command takes (the rest are refused by name). */
const FLAGS: Readonly<Record<"check" | "list" | "record", readonly string[]>> = {
  check: ["port", "offline", "policy", "expectations", "report", "case-seconds", "run-seconds", "random", "seed", ...FILTER_FLAGS],
  list: FILTER_FLAGS,
  record: ["port", "out", ...FILTER_FLAGS],
};
const SWITCHES = ["builtin"];

/** Thrown for --help / -h: the caller prints the command's usage and exits 0. */
export class HelpRequested extends Error {
  override readonly name = "HelpRequested";
}

function parse(argv: readonly string[], command: keyof typeof FLAGS): Args {
  const flags = new Map<string, string[]>();
  const switches = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--help" || a === "-h") throw new HelpRequested(command);
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${JSON.stringify(a)}`);
    const [name, inline] = a.slice(2).split(/=(.*)/s) as [string, string | undefined];
    const known = FLAGS[command];
    if (command === "check" && SWITCHES.includes(name)) switches.add(name);
    else if (!known.includes(name)) throw new Error(`unknown flag --${name}: ${command} takes ${[...known, ...(command === "check" ? SWITCHES : [])].map((f) => `--${f}`).join(", ")}`);
    else {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new Error(`--${name} needs a value`);
      flags.set(name, [...(flags.get(name) ?? []), value]);
    }
  }
  return { flags, switches };
}

/** A flag's values, each one of a closed vocabulary (a typo would select nothing and pass). */
function oneOf<T extends string>(args: Args, flag: string, allowed: readonly T[]): T[] | undefined {
  const values = args.flags.get(flag);
  for (const v of values ?? []) if (!(allowed as readonly string[]).includes(v)) throw new Error(`--${flag} ${JSON.stringify(v)}: one of ${allowed.join(", ")}`);
  return values as T[] | undefined;
}

/**
 * The cases the filters select; refused when a tag names nothing in the corpus
 * or when nothing at all is selected (a run that judges nothing is not a pass).
 */
function selected(args: Args, corpus: string): ConformanceCase[] {
  const filter: CaseFilter = {
    ids: args.flags.get("id"),
    tags: args.flags.get("tag"),
    dtypes: oneOf<DType>(args, "dtype", DTYPES),
    paths: oneOf<CodePath>(args, "path", CODE_PATHS),
    profiles: oneOf<RoundingProfile>(args, "profile", ROUNDING_PROFILES),
  };
  const all = allCases(corpus);
  const known = [...new Set(all.flatMap((c) => [...c.tags, c.id.split("/")[0]!]))].sort();
  for (const tag of filter.tags ?? []) if (!known.includes(tag)) throw new Error(`--tag ${JSON.stringify(tag)}: one of ${known.join(", ")}`);
  const cases = selectCases(filter, corpus);
  if (cases.length === 0) throw new Error(`no case matches the filters (${argsText(args)}); the corpus has ${all.length}`);
  return cases;
}

function argsText(args: Args): string {
  return [...args.flags].filter(([k]) => k !== "corpus").flatMap(([k, vs]) => vs.map((v) => `--${k} ${v}`)).join(" ");
}

/** Random cases a check adds when --random is not given. */
export const DEFAULT_RANDOM_CASES = 8;

/** A flag's last value as a whole number >= 0, if given. */
function wholeNumber(args: Args, flag: string): number | undefined {
  const value = args.flags.get(flag)?.at(-1);
  if (value === undefined) return undefined;
  if (!/^\d{1,10}$/.test(value)) throw new Error(`--${flag} ${JSON.stringify(value)}: a whole number`);
  return Number(value);
}

/** A port module's file: JavaScript or TypeScript, ESM or CommonJS. */
const MODULE = /\.(js|mjs|cjs|ts|mts|cts)$/;

/** The port `spec` names, carrying `spec` (what its expectations are tied to). */
export async function portFrom(spec: string): Promise<NamedPort> {
  return Object.assign(await portOf(spec), { spec });
}

async function portOf(spec: string): Promise<Port> {
  if (spec.startsWith("builtin:")) return builtinPort(spec);
  if (MODULE.test(spec) && !spec.includes(" ")) {
    let module: { createPort?: () => Port | Promise<Port> };
    try {
      module = (await import(pathToFileURL(isAbsolute(spec) ? spec : resolve(spec)).href)) as typeof module;
    } catch (error) {
      if ((error as { code?: string }).code === "ERR_UNKNOWN_FILE_EXTENSION") {
        throw new Error(`${spec}: this Node (${process.version}) cannot load TypeScript; use Node >= 22.18, compile the port to .js, or run the command through a loader (node --import tsx …)`);
      }
      throw error;
    }
    if (typeof module.createPort !== "function") throw new Error(`${spec} does not export createPort()`);
    return module.createPort();
  }
  return subprocessPort(parseCommand(spec));
}

/** A progress bar on a terminal, plain lines elsewhere (CI logs). */
function progress(out: (line: string) => void): (port: string, done: number, total: number) => void {
  const tty = process.stdout.isTTY === true;
  let lastLine = "";
  return (port, done, total) => {
    if (tty) {
      const width = 30;
      const filled = Math.round((done / total) * width);
      process.stdout.write(`\r${port.slice(0, 40).padEnd(40)} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${total}${done === total ? "\n" : ""}`);
    } else if (done === total || done % 100 === 0) {
      const line = `${port}: ${done}/${total} cases`;
      if (line !== lastLine) out(line);
      lastLine = line;
    }
  };
}

/** The corpus a command runs on: --corpus, else the caller's default, else golden/locate.ts's search. */
function corpusOf(args: Args, fallback: string | undefined): string {
  return locateCorpus(args.flags.get("corpus")?.at(-1) ?? fallback);
}

export interface CommandOptions {
  /** The golden corpus folder when --corpus is not given (the nadam-conformance package passes its own). */
  readonly corpus?: string;
}

export async function check(argv: readonly string[], out: (line: string) => void, options: CommandOptions = {}): Promise<number> {
  const args = parse(argv, "check");
  const corpus = corpusOf(args, options.corpus);
  const policy = POLICIES[args.flags.get("policy")?.[0] ?? "default"];
  if (!policy) throw new Error(`--policy must be one of ${Object.keys(POLICIES).join(", ")}`);
  const specs = [...(args.switches.has("builtin") ? BUILTIN_PORTS : []), ...(args.flags.get("port") ?? [])];
  const ports: NamedPort[] = [...(await Promise.all(specs.map(portFrom))), ...(args.flags.get("offline") ?? []).map((dir) => Object.assign(offlinePort(dir), { spec: `--offline ${dir}` }))];
  if (ports.length === 0) throw new Error("name a port: --port P, --offline DIR or --builtin");
  // Waivers are tied to a port as the user named it here (--port, builtin:…), never to the name a port gives itself.
  const named = ports.map((p) => p.spec).filter((s): s is string => s !== undefined);
  const expectations = new Map<string, Expectations>();
  for (const file of args.flags.get("expectations") ?? []) {
    const e = loadExpectations(file);
    if (e.port !== undefined && !named.includes(e.port)) {
      throw new Error(`${file} waives failures of the port ${JSON.stringify(e.port)}, which is not one this run names (${named.map((n) => JSON.stringify(n)).join(", ") || "none"}); "port" must be a --port value exactly as given, or absent for every port`);
    }
    expectations.set(e.port ?? "*", e);
  }
  const seconds = (flag: string): number | undefined => {
    const value = args.flags.get(flag)?.at(-1);
    if (value === undefined) return undefined;
    const x = Number(value);
    if (!(x > 0 && Number.isFinite(x))) throw new Error(`--${flag} ${JSON.stringify(value)}: a number of seconds > 0`);
    return x;
  };
  // Cases made now from a fresh seed, which no port can have looked up: every run judges them too.
  const count = wholeNumber(args, "random") ?? DEFAULT_RANDOM_CASES;
  const seed = wholeNumber(args, "seed") ?? freshSeed();
  const dtypes = (oneOf<DType>(args, "dtype", DTYPES) ?? ["float32", "float64"]).filter((d): d is "float32" | "float64" => d === "float32" || d === "float64");
  const random = randomCases(seed, dtypes.length > 0 ? count : 0, { dtypes, paths: oneOf<CodePath>(args, "path", CODE_PATHS), profiles: oneOf<RoundingProfile>(args, "profile", ROUNDING_PROFILES) });
  out(`random cases: ${random.length} from seed ${seed} (to repeat them: --seed ${seed})`);
  const cases = [...selected(args, corpus), ...random];
  const report = await runSuite(ports, { cases, policy, expectations, caseSeconds: seconds("case-seconds"), runSeconds: seconds("run-seconds"), onProgress: progress(out) });
  out(matrix(report));
  const failed = failures(report);
  if (failed) out(failed);
  const dir = args.flags.get("report")?.[0];
  if (dir) out(`reports: ${writeReports(report, dir).join(", ")}`);
  const ok = conformant(report);
  out(`${ok ? "conformant" : "NOT conformant"} under the ${policy.name} policy (${report.seconds.toFixed(1)} s)`);
  return ok ? 0 : 1;
}

export function list(argv: readonly string[], out: (line: string) => void, options: CommandOptions = {}): number {
  const args = parse(argv, "list");
  const cases = selected(args, corpusOf(args, options.corpus));
  for (const c of cases) out(`${c.id} [${c.profile}] ${c.tags.join(",")}${c.features.length ? ` (needs ${c.features.join(", ")})` : ""}`);
  out(`${cases.length} cases`);
  return 0;
}

export async function record(argv: readonly string[], out: (line: string) => void, options: CommandOptions = {}): Promise<number> {
  const args = parse(argv, "record");
  const corpus = corpusOf(args, options.corpus);
  const [spec] = args.flags.get("port") ?? [];
  const [dir] = args.flags.get("out") ?? [];
  if (!spec || !dir) throw new Error("usage: record --port P --out DIR [filters]");
  const port = recordingPort(await portFrom(spec), dir);
  const report = await runSuite([port], { cases: selected(args, corpus), policy: POLICIES.default!, onProgress: progress(out) });
  out(`recorded ${report.ports[0]!.results.filter((r) => r.status !== "skip").length} cases of ${port.name} into ${dir}`);
  return 0;
}
