/**
 * `nadam check`, `nadam list`, `nadam record`: the conformance suite's commands.
 *
 *   nadam check [--port P]... [--offline DIR]... [--builtin] [filters] [--policy exact|default]
 *               [--expectations FILE] [--report DIR]
 *   nadam list [filters]
 *   nadam record --port P --out DIR [filters]
 *
 * A port P is `builtin:spec` or `builtin:<backend>` (builtin.ts), a .ts/.js/.mjs
 * module exporting createPort(), or a command line speaking nadam-port/1 on stdin/stdout.
 * Filters: --id PATTERN (substring, or glob with *), --tag T, --dtype D,
 * --path forloop|foreach, --profile default|vectorized (each may repeat).
 */
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { selectCases, type CaseFilter } from "./cases.ts";
import { offlinePort, recordingPort } from "./offline.ts";
import { POLICIES } from "./policy.ts";
import type { Port } from "./port.ts";
import { failures, matrix } from "./report/console.ts";
import { writeReports } from "./report/write.ts";
import { BUILTIN_PORTS, builtinPort } from "./builtin.ts";
import { parseCommand, subprocessPort } from "./subprocess.ts";
import { conformant, loadExpectations, runSuite, type Expectations } from "./suite.ts";
import type { CodePath, RoundingProfile } from "../spec/nadam/types.ts";
import type { DType } from "../spec/float/dtype.ts";


interface Args {
  readonly flags: Map<string, string[]>;
  readonly switches: Set<string>;
}

function parse(argv: readonly string[]): Args {
  const flags = new Map<string, string[]>();
  const switches = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${JSON.stringify(a)}`);
    const [name, inline] = a.slice(2).split(/=(.*)/s) as [string, string | undefined];
    if (["builtin", "help"].includes(name)) switches.add(name);
    else {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new Error(`--${name} needs a value`);
      flags.set(name, [...(flags.get(name) ?? []), value]);
    }
  }
  return { flags, switches };
}

function filterOf(args: Args): CaseFilter {
  return {
    ids: args.flags.get("id"),
    tags: args.flags.get("tag"),
    dtypes: args.flags.get("dtype") as DType[] | undefined,
    paths: args.flags.get("path") as CodePath[] | undefined,
    profiles: args.flags.get("profile") as RoundingProfile[] | undefined,
  };
}

export async function portFrom(spec: string): Promise<Port> {
  if (spec.startsWith("builtin:")) return builtinPort(spec);
  if (/\.(ts|js|mjs)$/.test(spec) && !spec.includes(" ")) {
    const module = (await import(pathToFileURL(isAbsolute(spec) ? spec : resolve(spec)).href)) as { createPort?: () => Port | Promise<Port> };
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

export async function check(argv: readonly string[], out: (line: string) => void): Promise<number> {
  const args = parse(argv);
  const policy = POLICIES[args.flags.get("policy")?.[0] ?? "default"];
  if (!policy) throw new Error(`--policy must be one of ${Object.keys(POLICIES).join(", ")}`);
  const specs = [...(args.switches.has("builtin") ? BUILTIN_PORTS : []), ...(args.flags.get("port") ?? [])];
  const ports = [...(await Promise.all(specs.map(portFrom))), ...(args.flags.get("offline") ?? []).map(offlinePort)];
  if (ports.length === 0) throw new Error("name a port: --port P, --offline DIR or --builtin");
  const expectations = new Map<string, Expectations>();
  for (const file of args.flags.get("expectations") ?? []) {
    const e = loadExpectations(file);
    expectations.set(e.port ?? "*", e);
  }
  const report = await runSuite(ports, { filter: filterOf(args), policy, expectations, onProgress: progress(out) });
  out(matrix(report));
  const failed = failures(report);
  if (failed) out(failed);
  const dir = args.flags.get("report")?.[0];
  if (dir) out(`reports: ${writeReports(report, dir).join(", ")}`);
  const ok = conformant(report);
  out(`${ok ? "conformant" : "NOT conformant"} under the ${policy.name} policy (${report.seconds.toFixed(1)} s)`);
  return ok ? 0 : 1;
}

export function list(argv: readonly string[], out: (line: string) => void): number {
  const cases = selectCases(filterOf(parse(argv)));
  for (const c of cases) out(`${c.id} [${c.profile}] ${c.tags.join(",")}${c.features.length ? ` (needs ${c.features.join(", ")})` : ""}`);
  out(`${cases.length} cases`);
  return 0;
}

export async function record(argv: readonly string[], out: (line: string) => void): Promise<number> {
  const args = parse(argv);
  const [spec] = args.flags.get("port") ?? [];
  const [dir] = args.flags.get("out") ?? [];
  if (!spec || !dir) throw new Error("usage: nadam record --port P --out DIR [filters]");
  const port = recordingPort(await portFrom(spec), dir);
  const report = await runSuite([port], { filter: filterOf(args), policy: POLICIES.default!, onProgress: progress(out) });
  out(`recorded ${report.ports[0]!.results.filter((r) => r.status !== "skip").length} cases of ${port.name} into ${dir}`);
  return 0;
}
