/**
 * The oracle itself as a port: the suite's sanity row. It must pass `exact`
 * on every case; if it does not, the suite or the corpus is broken, not a port.
 */
import { isJsonTensor, type JsonStateDict } from "../checkpoint/json.ts";
import type { GoldenOptions } from "../golden/case.ts";
import { hyperFrom } from "../golden/simulate.ts";
import { castStateOnLoad } from "../spec/nadam/load-state.ts";
import { nadamStep, type NadamHyperParameters, type NadamParamState } from "../spec/nadam/step.ts";
import { CODE_PATHS, FEATURES, ROUNDING_PROFILES, type Formula, type RoundingProfile } from "../spec/nadam/types.ts";
import { DTYPES, type DType } from "../spec/float/dtype.ts";
import type { OpenRequest, Port, PortOptions, PortParam, PortSession, PortState, StepReply } from "./port.ts";
import { decodeTensor, encodeTensor } from "./wire.ts";

interface Param {
  dtype: DType;
  shape: readonly number[];
  values: number[];
}

/** Wire options (a tensor lr as a 0-d tensor) as the golden files' options, then golden/simulate.ts's reading. */
function hyper(options: PortOptions): NadamHyperParameters {
  const { lr, ...rest } = options as Record<string, unknown>;
  const tensorLr = isJsonTensor(lr);
  return hyperFrom({ ...(rest as GoldenOptions), ...(lr === undefined ? {} : { lr: tensorLr ? decodeTensor(lr)[0]! : (lr as number) }), lr_is_tensor: tensorLr });
}

/** The inverse, for state_dict(). */
function wireOptionsOf(h: NadamHyperParameters): Record<string, unknown> {
  const { lr_is_tensor, lr, ...rest } = h;
  return { ...rest, betas: [...h.betas], lr: lr_is_tensor ? encodeTensor("float32", [], [lr]) : lr };
}

/** Deliberate departures, for the suite's own tests of its policies: another profile, path or formula. */
export interface SpecPortOptions {
  readonly profile?: RoundingProfile;
  readonly path?: "forloop" | "foreach";
  readonly formula?: Formula;
  readonly name?: string;
}

export function specPort(options: SpecPortOptions = {}): Port {
  return {
    name: options.name ?? "spec (the oracle)",
    async capabilities() {
      return { dtypes: DTYPES, paths: CODE_PATHS, profiles: ROUNDING_PROFILES, features: FEATURES };
    },
    async open(request: OpenRequest): Promise<PortSession> {
      const config = { path: options.path ?? (request.foreach ? ("foreach" as const) : ("forloop" as const)), profile: options.profile ?? request.profile, formula: options.formula, scalarStateDtype: request.default_dtype };
      const params: Param[] = request.params.map((p) => ({ dtype: p.value.dtype, shape: p.value.shape, values: decodeTensor(p.value) }));
      let groups = request.param_groups.map((g) => ({ hyper: hyper(g.options), ids: [...g.params] }));
      let state: (NadamParamState | undefined)[] = params.map(() => undefined);
      const encodeState = (s: NadamParamState | undefined, p: Param): PortState | null =>
        s === undefined ? null : { step: encodeTensor(s.step_dtype, [], [s.step]), mu_product: encodeTensor(s.mu_product_dtype, [], [s.mu_product]), exp_avg: encodeTensor(p.dtype, p.shape, s.exp_avg), exp_avg_sq: encodeTensor(p.dtype, p.shape, s.exp_avg_sq) };
      const reply = (): StepReply => ({ params: params.map((p) => encodeTensor(p.dtype, p.shape, p.values)), state: params.map((p, i) => encodeState(state[i], p)) });
      return {
        async step(grads) {
          for (const g of groups) {
            const result = nadamStep(g.ids.map((id) => ({ dtype: params[id]!.dtype, data: params[id]!.values, grad: grads[id] ? decodeTensor(grads[id]!) : null })), g.ids.map((id) => state[id]), g.hyper, config);
            g.ids.forEach((id, k) => {
              params[id]!.values = result.data[k]!;
              state[id] = result.state[k];
            });
          }
          return reply();
        },
        async set(group, key, value) {
          groups[group]!.hyper = { ...groups[group]!.hyper, [key]: value };
        },
        async addParamGroup(options, added: readonly PortParam[]) {
          const first = params.length;
          params.push(...added.map((p) => ({ dtype: p.value.dtype, shape: p.value.shape, values: decodeTensor(p.value) })));
          state.push(...added.map(() => undefined));
          groups.push({ hyper: hyper(options), ids: added.map((_, i) => first + i) });
        },
        async stateDict(): Promise<JsonStateDict> {
          const packed: JsonStateDict["state"] = {};
          state.forEach((s, i) => {
            if (s) packed[i] = encodeState(s, params[i]!) as never;
          });
          return { state: packed, param_groups: groups.map((g) => ({ ...wireOptionsOf(g.hyper), params: g.ids }) as never) };
        },
        async loadStateDict(sd) {
          groups = sd.param_groups.map((g) => ({ hyper: hyper(g as PortOptions), ids: [...(g.params as number[])] }));
          state = params.map((p, i) => {
            const s = sd.state[i] as unknown as PortState | undefined;
            if (!s) return undefined;
            const loaded: NadamParamState = { step: decodeTensor(s.step)[0]!, step_dtype: s.step.dtype, mu_product: decodeTensor(s.mu_product)[0]!, mu_product_dtype: s.mu_product.dtype, exp_avg: decodeTensor(s.exp_avg), exp_avg_sq: decodeTensor(s.exp_avg_sq) };
            return castStateOnLoad(loaded, p.dtype);
          });
        },
        async close() {},
      };
    },
  };
}
