/**
 * Every torch 2.6 golden case replayed through the public NAdam API on the
 * typed-array backend — constructor, param groups, hyper-parameter changes,
 * add_param_group, state_dict round trips into a fresh optimizer — compared bit
 * for bit with real PyTorch after every step. (torch 1.13's cases follow its old
 * formula, which this API, a torch 2 API, does not implement; the spec replays them.)
 */
import { describe, expect, test } from "vitest";
import { decodeHex } from "../spec/float/codec.ts";
import type { GoldenCase, GoldenOptions } from "../golden/case.ts";
import { sameValue } from "../golden/compare.ts";
import { loadGoldenCorpus } from "../golden/load.ts";
import { NAdam, Tensor, typedArrayBackend, type ParamGroupInput, type StateDict } from "./index.ts";

function groupOptions(options: GoldenOptions): Record<string, unknown> {
  const { lr_is_tensor, lr, ...rest } = options;
  const out: Record<string, unknown> = { ...rest };
  if (lr !== undefined) out.lr = lr_is_tensor ? Tensor.scalar(lr, "float32") : lr;
  return out;
}

/** deepcopy(state_dict()): tensors cloned, structure kept. */
function deepCopy<T>(value: T): T {
  if (value instanceof Tensor) return value.clone() as T;
  if (Array.isArray(value)) return value.map(deepCopy) as T;
  if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, deepCopy(v)])) as T;
  return value;
}

function replay(golden: GoldenCase): string[] {
  const problems: string[] = [];
  const config = { backend: typedArrayBackend({ profile: golden.torch.profile }), defaultDtype: golden.default_dtype };
  const params = golden.params.map((p) => Tensor.from(decodeHex(p.init.dtype, p.init.hex), p.init.dtype, p.init.shape));
  const groups: ParamGroupInput[] = golden.param_groups.map((g) => ({ params: g.params.map((id) => params[id]!), ...groupOptions(g.options) }));
  let optimizer = new NAdam(groups, { foreach: golden.foreach }, config);

  const compare = (step: number, what: string, dtype: Tensor["dtype"], hex: string, actual: Tensor): void => {
    if (actual.dtype !== dtype) {
      problems.push(`step ${step} ${what}: dtype ${actual.dtype}, torch ${dtype}`);
      return;
    }
    const expected = decodeHex(dtype, hex);
    const values = actual.toArray();
    const bad = expected.findIndex((x, i) => !sameValue(dtype, x, values[i]!));
    if (bad >= 0 || expected.length !== values.length) problems.push(`step ${step} ${what}[${bad}]: ${values[bad]}, torch ${expected[bad]}`);
  };

  golden.steps.forEach((entry, s) => {
    for (const event of entry.events ?? []) {
      if (event.kind === "set") (optimizer.paramGroups[event.group] as Record<string, unknown>)[event.key] = event.value;
      else if (event.kind === "add_param_group") optimizer.addParamGroup({ params: event.params.map((id) => params[id]!), ...groupOptions(event.options) });
      else {
        const saved = deepCopy(optimizer.stateDict()) as StateDict;
        optimizer = new NAdam(optimizer.paramGroups.map((g) => ({ params: g.params })), { foreach: golden.foreach }, config);
        optimizer.loadStateDict(saved);
      }
    }
    entry.grads.forEach((hex, id) => {
      const p = params[id]!;
      p.grad = hex === null ? null : Tensor.from(decodeHex(p.dtype, hex), p.dtype, p.shape);
    });
    optimizer.step();
    entry.params.forEach((hex, id) => compare(s + 1, `param ${id}`, params[id]!.dtype, hex, params[id]!));
    entry.state.forEach((expected, id) => {
      const state = optimizer.state.get(params[id]!);
      if ((expected === null) !== (state === undefined)) problems.push(`step ${s + 1} state ${id}: present ${state !== undefined}, torch ${expected !== null}`);
      if (expected === null || state === undefined) return;
      compare(s + 1, `state ${id} step`, expected.step[0], expected.step[1], state.step as Tensor);
      compare(s + 1, `state ${id} mu_product`, expected.mu_product[0], expected.mu_product[1], state.mu_product as Tensor);
      compare(s + 1, `state ${id} exp_avg`, params[id]!.dtype, expected.exp_avg, state.exp_avg as Tensor);
      compare(s + 1, `state ${id} exp_avg_sq`, params[id]!.dtype, expected.exp_avg_sq, state.exp_avg_sq as Tensor);
    });
  });
  return problems;
}

const corpus = loadGoldenCorpus().filter(({ golden }) => golden.torch.version.startsWith("2."));

describe.each(["vectorized", "default"] as const)("torch 2.6 goldens through the NAdam API, profile %s", (profile) => {
  const cases = corpus.filter(({ golden }) => golden.torch.profile === profile);
  test("covers every torch 2.6 case of the profile", () => {
    expect(cases.length).toBeGreaterThanOrEqual(200);
  });
  test.each(cases.map(({ golden }) => [golden.id, golden] as const))("%s", (_id, golden) => {
    expect(replay(golden).slice(0, 5)).toEqual([]);
  });
});
