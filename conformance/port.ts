/**
 * What the suite asks of an implementation under test (a "port"). The same
 * contract three ways: an in-process object (this interface), a subprocess
 * speaking JSON lines (subprocess.ts, protocol.schema.json), or files written
 * beforehand (offline.ts). Tensors travel in the state-dict encoding
 * ({dtype, shape, data}: little-endian bytes, base64).
 */
import type { JsonStateDict, JsonTensor } from "../checkpoint/json.ts";
import type { CodePath, Feature, RoundingProfile } from "../spec/nadam/types.ts";
import type { DType } from "../spec/float/dtype.ts";

/** The protocol the suite speaks. */
export const PROTOCOL_VERSION = "nadam-port/2";
/**
 * The versions it accepts in a port's hello. nadam-port/2 added, all optional
 * for a port: `unsupported_options`, the `unsupported` error type and the
 * complex dtypes; a nadam-port/1 port is judged as before.
 */
export const ACCEPTED_PROTOCOLS: readonly string[] = ["nadam-port/1", PROTOCOL_VERSION];

/** NAdam's options under PyTorch's names (the keys of a param group). */
export type OptionName = "lr" | "betas" | "eps" | "weight_decay" | "momentum_decay" | "decoupled_weight_decay" | "maximize" | "differentiable";
export const OPTION_NAMES: readonly OptionName[] = ["lr", "betas", "eps", "weight_decay", "momentum_decay", "decoupled_weight_decay", "maximize", "differentiable"];

/**
 * Thrown (in process) or answered as `{"ok": false, "error": {"type": "unsupported", ...}}`
 * (subprocess) by a port asked for something it does not have: the case is
 * skipped with the message as its reason, not failed.
 */
export class UnsupportedError extends Error {
  override readonly name = "UnsupportedError";
}

/**
 * Thrown by a port that has been declared dead (it hung, broke the protocol, or
 * wrote more than a line may hold): it is never asked anything again, and the
 * suite reports it once instead of waiting on it for every later case.
 */
export class PortDeadError extends Error {
  override readonly name = "PortDeadError";
}

/** NAdam options as PyTorch names them; lr may be a 0-d float32 tensor. */
export type PortOptions = Record<string, number | boolean | null | number[] | JsonTensor>;

export interface PortParam {
  readonly name: string;
  readonly value: JsonTensor;
}

/** Everything a port needs to build the optimizer of one case. */
export interface OpenRequest {
  /** Which case this is (for logs, and for offline ports that replay recorded answers). */
  readonly case?: { readonly id: string; readonly profile: RoundingProfile };
  /** torch.get_default_dtype(): the dtype of new step / mu_product tensors */
  readonly default_dtype: "float32" | "float64";
  /** NAdam(..., foreach=...) */
  readonly foreach: boolean;
  /** PyTorch's CPU rounding profile the case was recorded under (for ports that offer both) */
  readonly profile: RoundingProfile;
  readonly params: readonly PortParam[];
  readonly param_groups: readonly { readonly options: PortOptions; readonly params: readonly number[] }[];
}

/** step and mu_product as 0-d tensors, the moments in the param's dtype. */
export interface PortState {
  readonly step: JsonTensor;
  readonly mu_product: JsonTensor;
  readonly exp_avg: JsonTensor;
  readonly exp_avg_sq: JsonTensor;
}

export interface StepReply {
  /** Every param, in id order, after the step. */
  readonly params: readonly JsonTensor[];
  /** Every param's state (null: none yet), in id order. */
  readonly state: readonly (PortState | null)[];
}

export interface PortSession {
  /** One optimizer.step() with these grads (null: the param has no grad). */
  step(grads: readonly (JsonTensor | null)[]): Promise<StepReply>;
  /** optimizer.param_groups[group][key] = value */
  set(group: number, key: string, value: number | boolean): Promise<void>;
  /** optimizer.add_param_group({params: new params, **options}); their ids follow the existing ones. */
  addParamGroup(options: PortOptions, params: readonly PortParam[]): Promise<void>;
  stateDict(): Promise<JsonStateDict>;
  loadStateDict(stateDict: JsonStateDict): Promise<void>;
  close(): Promise<void>;
}

export interface PortCapabilities {
  readonly dtypes: readonly DType[];
  readonly paths: readonly CodePath[];
  /** The profiles the port can follow; a port with one fixed arithmetic lists the one it matches best. */
  readonly profiles: readonly RoundingProfile[];
  /** Optional features the port has (spec/nadam/types.ts). */
  readonly features: readonly Feature[];
  /** Options the port lacks (nadam-port/2): a case that gives one a value other than torch's default is skipped. */
  readonly unsupported_options?: readonly OptionName[];
}

/** Whether a port can run on this machine; when not, why. */
export type PortAvailability = { readonly available: true } | { readonly available: false; readonly reason: string };

export interface Port {
  readonly name: string;
  /** Why the port was declared dead, once it was: then it is never asked anything again. */
  readonly dead?: string;
  /** Absent: the port can always run. One that cannot is reported skipped with the reason, never passed. */
  available?(): Promise<PortAvailability>;
  capabilities(): Promise<PortCapabilities>;
  open(request: OpenRequest): Promise<PortSession>;
  /** Ends the port; what it took when the port had to be forced (killed, children left behind), for the report. */
  dispose?(): Promise<string | void>;
}

/** What a port's capabilities must look like (a port may send anything): the problem, or undefined. */
export function capabilitiesProblem(caps: unknown): string | undefined {
  if (typeof caps !== "object" || caps === null || Array.isArray(caps)) return `capabilities ${JSON.stringify(caps) ?? "missing"}; expected {"dtypes", "paths", "profiles", "features"}`;
  const record = caps as Record<string, unknown>;
  for (const key of ["dtypes", "paths", "profiles", "features", "unsupported_options"]) {
    const value = record[key];
    if (value === undefined && key === "unsupported_options") continue;
    if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) return `capabilities.${key} is ${JSON.stringify(value) ?? "missing"}; expected a list of strings`;
  }
  return undefined;
}
