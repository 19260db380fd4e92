/**
 * The NAdam API on the typed-array backend, as an in-process port for the
 * conformance suite (conformance/port.ts): `nadam check --port impl/conformance-port.ts`.
 */
import { stateDictFromJson, stateDictToJson, decodeValue, encodeValue, type JsonTensor } from "../checkpoint/json.ts";
import type { OpenRequest, Port, PortOptions, PortParam, PortSession, PortState, StepReply } from "../conformance/port.ts";
import type { RoundingProfile } from "../spec/nadam/types.ts";
import { NAdam, Tensor, typedArrayBackend } from "./index.ts";

function tensor(t: JsonTensor): Tensor {
  return decodeValue(t) as Tensor;
}

function options(o: PortOptions): Record<string, unknown> {
  return decodeValue(o) as Record<string, unknown>;
}

export function createPort(config: { profile?: RoundingProfile } = {}): Port {
  return {
    name: `typed-array${config.profile ? ` (${config.profile})` : ""}`,
    async capabilities() {
      return {
        dtypes: ["float64", "float32", "float16", "bfloat16"],
        paths: ["forloop", "foreach"],
        profiles: config.profile ? [config.profile] : ["vectorized", "default"],
        features: ["tensor-lr", "differentiable", "state-dict", "add-param-group"],
      };
    },
    async open(request: OpenRequest): Promise<PortSession> {
      const backend = typedArrayBackend({ profile: config.profile ?? request.profile });
      const params = request.params.map((p) => tensor(p.value));
      const groups = request.param_groups.map((g) => ({ params: g.params.map((id) => params[id]!), ...options(g.options) }));
      const optimizer = new NAdam(groups, { foreach: request.foreach }, { backend, defaultDtype: request.default_dtype });
      const reply = (): StepReply => ({
        params: params.map((p) => encodeValue(p) as JsonTensor),
        state: params.map((p) => {
          const s = optimizer.state.get(p);
          return s === undefined ? null : (encodeValue(s) as unknown as PortState);
        }),
      });
      return {
        async step(grads) {
          params.forEach((p, i) => (p.grad = grads[i] ? tensor(grads[i]!) : null));
          optimizer.step();
          return reply();
        },
        async set(group, key, value) {
          (optimizer.paramGroups[group] as Record<string, unknown>)[key] = value;
        },
        async addParamGroup(groupOptions, newParams: readonly PortParam[]) {
          const added = newParams.map((p) => tensor(p.value));
          params.push(...added);
          optimizer.addParamGroup({ params: added, ...options(groupOptions) });
        },
        async stateDict() {
          return stateDictToJson(optimizer.stateDict());
        },
        async loadStateDict(sd) {
          optimizer.loadStateDict(stateDictFromJson(sd));
        },
        async close() {},
      };
    },
  };
}
