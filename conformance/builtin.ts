/**
 * The built-in implementations as ports: the oracle, and the NAdam API over each
 * backend in the registry (impl/backends/index.ts). A backend added there is
 * checked by `npm start`, `check --builtin` and the tests with no edit here.
 */
import { decodeValue, encodeValue, stateDictFromJson, stateDictToJson, type JsonTensor } from "../checkpoint/json.ts";
import type { BackendEntry } from "../impl/backend.ts";
import { BACKENDS } from "../impl/backends/index.ts";
import { NAdam } from "../impl/core/nadam.ts";
import { Tensor } from "../tensor/tensor.ts";
import type { OpenRequest, Port, PortOptions, PortParam, PortSession, PortState, StepReply } from "./port.ts";
import { specPort } from "./spec-port.ts";

function tensor(t: JsonTensor): Tensor {
  return decodeValue(t) as Tensor;
}

function options(o: PortOptions): Record<string, unknown> {
  return decodeValue(o) as Record<string, unknown>;
}

/** The NAdam API over one registry entry, driven through its async methods (which every backend has). */
export function backendPort(entry: BackendEntry): Port {
  return {
    name: entry.id,
    available: () => entry.availability(),
    async capabilities() {
      const { dtypes, paths, profiles, features } = entry.supports;
      return { dtypes, paths, profiles, features: [...features, "state-dict", "add-param-group"] };
    },
    async open(request: OpenRequest): Promise<PortSession> {
      // A backend with one profile runs its own; the default policy judges it on the other's recordings too.
      const profiles = entry.supports.profiles;
      const backend = await entry.create({ profile: profiles.includes(request.profile) ? request.profile : profiles[0] });
      const params = request.params.map((p) => tensor(p.value));
      const groups = request.param_groups.map((g) => ({ params: g.params.map((id) => params[id]!), ...options(g.options) }));
      const optimizer = new NAdam(groups, { foreach: request.foreach }, { backend, defaultDtype: request.default_dtype });
      const reply = async (): Promise<StepReply> => {
        const { state } = await optimizer.stateDictAsync();
        const ids = new Map(optimizer.paramGroups.flatMap((g) => g.params).map((p, i) => [p, i]));
        return {
          params: params.map((p) => encodeValue(p) as JsonTensor),
          state: params.map((p) => {
            const entryOfParam = state[ids.get(p)!];
            return entryOfParam === undefined ? null : (encodeValue(entryOfParam) as unknown as PortState);
          }),
        };
      };
      return {
        async step(grads) {
          params.forEach((p, i) => (p.grad = grads[i] ? tensor(grads[i]!) : null));
          await optimizer.stepAsync();
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
          return stateDictToJson(await optimizer.stateDictAsync());
        },
        async loadStateDict(sd) {
          optimizer.loadStateDict(stateDictFromJson(sd));
        },
        async close() {
          await backend.dispose?.();
        },
      };
    },
  };
}

/** `builtin:<name>` of every built-in port: the oracle, then each registered backend. */
export const BUILTIN_PORTS: readonly string[] = ["builtin:spec", ...BACKENDS.map((entry) => `builtin:${entry.id}`)];

/** A built-in port by its `builtin:<name>`. */
export function builtinPort(name: string): Port {
  if (name === "builtin:spec") return specPort();
  const entry = BACKENDS.find((e) => `builtin:${e.id}` === name);
  if (entry === undefined) throw new Error(`no built-in port ${JSON.stringify(name)}: one of ${BUILTIN_PORTS.join(", ")}`);
  return backendPort(entry);
}
