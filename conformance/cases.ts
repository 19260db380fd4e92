/**
 * The suite's cases: every torch 2.6 golden trajectory, and closed-loop runs on
 * analytic objectives where the suite computes each gradient from the port's
 * own params, so errors compound as they do in training. A case knows no port.
 */
import type { JsonTensor } from "../checkpoint/json.ts";
import type { GoldenCase, GoldenEvent, GoldenOptions } from "../golden/case.ts";
import { loadGoldenCorpus } from "../golden/load.ts";
import { locateCorpus } from "../golden/locate.ts";
import { NADAM_DEFAULTS } from "../spec/nadam/defaults.ts";
import type { CodePath, Feature, RoundingProfile } from "../spec/nadam/types.ts";
import { DTYPE, type DType } from "../spec/float/dtype.ts";
import { hexDigits } from "../spec/float/codec.ts";
import { OBJECTIVES, type Objective } from "./objectives.ts";
import { OPTION_NAMES, type OptionName, type PortOptions } from "./port.ts";

export interface ConformanceCase {
  /** Stable id: the golden id, or closed-loop/<objective>/<dtype>/<path>. */
  readonly id: string;
  readonly description: string;
  readonly tags: readonly string[];
  readonly dtype: DType;
  readonly path: CodePath;
  readonly profile: RoundingProfile;
  readonly default_dtype: "float32" | "float64";
  /** Features a port must have (spec/nadam/types.ts). */
  readonly features: readonly Feature[];
  /** Options the case gives a value other than torch's default, anywhere in its schedule. */
  readonly options: readonly OptionName[];
  readonly source: { readonly kind: "golden"; readonly golden: GoldenCase } | { readonly kind: "closed-loop"; readonly objective: Objective; readonly steps: number };
}

/** Golden hex (big-endian per element; per part of a complex one) to the wire encoding (little-endian bytes, base64). */
export function hexToTensor(dtype: DType, shape: readonly number[], hex: string): JsonTensor {
  const digits = hexDigits(DTYPE[dtype].real);
  const bytes = Buffer.alloc(hex.length / 2);
  for (let e = 0; e * digits < hex.length; e++) {
    const element = Buffer.from(hex.slice(e * digits, (e + 1) * digits), "hex").reverse();
    element.copy(bytes, (e * digits) / 2);
  }
  return { dtype, shape: [...shape], data: bytes.toString("base64") };
}

/** Golden options as the wire carries them (a tensor lr as a 0-d float32 tensor). */
export function wireOptions(options: GoldenOptions): PortOptions {
  const { lr_is_tensor, ...rest } = options;
  const out: PortOptions = { ...(rest as PortOptions) };
  if (lr_is_tensor && options.lr !== undefined) {
    const b = Buffer.alloc(4);
    b.writeFloatLE(options.lr);
    out.lr = { dtype: "float32", shape: [], data: b.toString("base64") };
  }
  if (options.betas) out.betas = [...options.betas];
  return out;
}

function featuresOf(golden: GoldenCase): Feature[] {
  const features = new Set<Feature>();
  const options = [...golden.param_groups.map((g) => g.options), ...golden.steps.flatMap((s) => (s.events ?? []).flatMap((e: GoldenEvent) => (e.kind === "add_param_group" ? [e.options] : [])))];
  if (options.some((o) => o.lr_is_tensor)) features.add("tensor-lr");
  if (options.some((o) => o.differentiable)) features.add("differentiable");
  for (const e of golden.steps.flatMap((s) => s.events ?? [])) {
    if (e.kind === "reload") features.add("state-dict");
    if (e.kind === "add_param_group") features.add("add-param-group");
  }
  return [...features].sort();
}

/** torch's defaults of the options (differentiable: False). */
const DEFAULT_OPTIONS: Readonly<Record<OptionName, unknown>> = { ...NADAM_DEFAULTS, differentiable: false };

function isDefault(key: OptionName, value: unknown): boolean {
  const d = DEFAULT_OPTIONS[key];
  return Array.isArray(d) ? JSON.stringify(d) === JSON.stringify(value) : d === value;
}

/** The options a schedule sets away from torch's defaults: in its groups, added groups and `set` events. */
export function optionsOf(groups: readonly Record<string, unknown>[], sets: readonly { key: string; value: unknown }[] = []): OptionName[] {
  const used = new Set<OptionName>();
  const note = (key: string, value: unknown) => {
    const name = OPTION_NAMES.find((n) => n === key);
    if (name !== undefined && !isDefault(name, value)) used.add(name);
  };
  for (const g of groups) for (const [k, v] of Object.entries(g)) note(k, v);
  for (const e of sets) note(e.key, e.value);
  return OPTION_NAMES.filter((n) => used.has(n));
}

function goldenOptionsOf(golden: GoldenCase): OptionName[] {
  const events = golden.steps.flatMap((s) => s.events ?? []);
  const groups = [...golden.param_groups.map((g) => g.options), ...events.flatMap((e: GoldenEvent) => (e.kind === "add_param_group" ? [e.options] : []))];
  const sets = events.flatMap((e: GoldenEvent) => (e.kind === "set" ? [{ key: e.key, value: e.value }] : []));
  return optionsOf(groups as Record<string, unknown>[], sets);
}

const loaded = new Map<string, ConformanceCase[]>();

/**
 * Every case, for both CPU profiles: the torch 2.x golden cases of a corpus folder
 * (golden/locate.ts), one recording per case and profile — the AVX512 CPU run
 * repeats AVX2's bits (golden/corpus.test.ts checks it) and is left to the spec's
 * replay; a `cuda` run (golden/cuda) counts whatever CPU it had — then the
 * closed-loop runs.
 */
export function allCases(corpusDir: string = locateCorpus()): ConformanceCase[] {
  const cached = loaded.get(corpusDir);
  if (cached) return cached;
  const golden: ConformanceCase[] = loadGoldenCorpus(corpusDir)
    .filter(({ golden: g }) => g.torch.version.startsWith("2.") && (g.torch.profile === "cuda" || g.torch.cpu_capability !== "AVX512"))
    .map(({ golden: g }) => ({
      id: g.id,
      description: g.description,
      tags: g.tags,
      dtype: g.dtype,
      path: g.foreach ? "foreach" : "forloop",
      profile: g.torch.profile,
      default_dtype: g.default_dtype,
      features: featuresOf(g),
      options: goldenOptionsOf(g),
      source: { kind: "golden", golden: g },
    }));
  const closed: ConformanceCase[] = [];
  for (const objective of OBJECTIVES) {
    for (const dtype of ["float32", "float64"] as const) {
      for (const path of ["forloop", "foreach"] as const) {
        for (const profile of ["vectorized", "default"] as const) {
          closed.push({
            id: `closed-loop/${objective.name}/${dtype}/${path}`,
            description: `${objective.description}: 200 steps, each grad computed from the port's own params`,
            tags: ["closed-loop", objective.name],
            dtype,
            path,
            profile,
            default_dtype: "float32",
            features: [],
            options: optionsOf([objective.options]),
            source: { kind: "closed-loop", objective, steps: 200 },
          });
        }
      }
    }
  }
  const cases = [...golden, ...closed];
  loaded.set(corpusDir, cases);
  return cases;
}

export interface CaseFilter {
  /** Substrings or globs (`*`) of the id; a case matches any. */
  readonly ids?: readonly string[];
  readonly tags?: readonly string[];
  readonly dtypes?: readonly DType[];
  readonly paths?: readonly CodePath[];
  readonly profiles?: readonly RoundingProfile[];
}

/** A whole-id glob (`*` matches anything). */
/**
 * Whether `id` matches a glob whose only wildcard is `*` (any run of characters).
 * Matched without a regular expression: `.*` repeated backtracks exponentially
 * (a pattern like `**********Q` took minutes), this takes at most
 * pattern × id steps.
 */
export function globMatches(pattern: string, id: string): boolean {
  let p = 0;
  let i = 0;
  let star = -1; // the pattern position after the last `*` seen
  let resume = 0; // where in `id` that `*` stops matching, next time
  while (i < id.length) {
    if (p < pattern.length && pattern[p] === "*") {
      star = ++p;
      resume = i;
    } else if (p < pattern.length && pattern[p] === id[i]) {
      p++;
      i++;
    } else if (star >= 0) {
      p = star;
      i = ++resume;
    } else return false;
  }
  while (p < pattern.length && pattern[p] === "*") p++;
  return p === pattern.length;
}

/** A filter pattern: a substring, or a glob when it has a `*`. */
function matchesId(id: string, pattern: string): boolean {
  return pattern.includes("*") ? globMatches(pattern, id) : id.includes(pattern);
}

export function selectCases(filter: CaseFilter = {}, corpusDir?: string): ConformanceCase[] {
  return allCases(corpusDir).filter(
    (c) =>
      (!filter.ids?.length || filter.ids.some((p) => matchesId(c.id, p))) &&
      (!filter.tags?.length || filter.tags.some((t) => c.tags.includes(t) || c.id.startsWith(`${t}/`))) &&
      (!filter.dtypes?.length || filter.dtypes.includes(c.dtype)) &&
      (!filter.paths?.length || filter.paths.includes(c.path)) &&
      (!filter.profiles?.length || filter.profiles.includes(c.profile)),
  );
}
