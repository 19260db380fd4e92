/**
 * The NAdam API's behaviour, case by case as PyTorch's own optimizer tests
 * check it (test/test_optim.py, common_optimizers.py's NAdam error inputs).
 */
import { afterEach, describe, expect, test, vi } from "vitest";
import { NAdam, registerOptimizerStepPostHook, registerOptimizerStepPreHook, Tensor, type RemovableHandle, type StateDict } from "../index.ts";
import { deepCopy } from "../../tensor/state-dict.ts";

const weight = () => Tensor.from([1, -2, 3, 0.5, -0.25, 2], "float32", [2, 3]);
const bias = () => Tensor.from([0.1, 0.2, 0.3], "float32", [3]);

function withGrads(...params: Tensor[]): void {
  for (const p of params) p.grad = Tensor.from(p.toArray().map((x, i) => 0.1 * x - 0.01 * i), p.dtype, p.shape);
}

const handles: RemovableHandle[] = [];
afterEach(() => {
  handles.splice(0).forEach((h) => h.remove());
  vi.restoreAllMocks();
});

describe("constructor", () => {
  test.each([
    ["lr NaN", { lr: NaN }, "ValueError", "Invalid learning rate: nan"],
    ["negative lr", { lr: -1 }, "ValueError", "Invalid learning rate: -1.0"],
    ["tensor lr of 2 elements", { lr: Tensor.from([0.001, 0.001]) }, "ValueError", "Tensor lr must be 1-element"],
    ["negative tensor lr", { lr: Tensor.scalar(-1e-3) }, "ValueError", "Invalid learning rate: -0.0010000000474974513"],
    ["negative eps", { eps: -1e-8 }, "ValueError", "Invalid epsilon value: -1e-08"],
    ["beta1 = 1", { lr: 1e-2, betas: [1.0, 0.0] }, "ValueError", "Invalid beta parameter at index 0: 1.0"],
    ["beta2 NaN", { betas: [0.9, NaN] }, "ValueError", "Invalid beta parameter at index 1: nan"],
    ["one beta", { betas: [0.9] }, "IndexError", "tuple index out of range"],
    ["negative weight_decay", { weight_decay: -0.1 }, "ValueError", "Invalid weight_decay value: -0.1"],
    ["negative momentum_decay", { lr: 1e-2, momentum_decay: -0.2 }, "ValueError", "Invalid momentum_decay value: -0.2"],
  ])("%s is rejected with PyTorch's message", (_what, options, name, message) => {
    const attempt = () => new NAdam([weight()], options);
    expect(attempt).toThrow(message);
    try {
      attempt();
    } catch (error) {
      expect((error as Error).name).toBe(name);
      expect((error as Error).message).toBe(message);
    }
  });

  test.each([
    ["a single tensor", () => weight() as never, "TypeError", "params argument given to the optimizer should be an iterable of Tensors or dicts, but got torch.FloatTensor"],
    ["an empty list", () => [], "ValueError", "optimizer got an empty parameter list"],
    ["a param in two groups", () => { const w = weight(); return [{ params: w }, { params: w }]; }, "ValueError", "some parameters appear in more than one parameter group"],
    ["named and unnamed params mixed", () => [["weight", weight()], bias()] as never, "ValueError", "all optimizer params should be with/without names. Some param names are missing"],
    ["named and unnamed groups mixed", () => [{ params: [weight()], lr: 1e-2 }, { params: [["weight", bias()]] }] as never, "ValueError", "all optimizer param groups should be with/without names. cannot add param group with names to the optimizer"],
    ["a set of params", () => [{ params: new Set([weight()]) }] as never, "TypeError", "optimizer parameters need to be organized in ordered collections, but the ordering of tensors in sets will change between runs. Please use a list instead."],
    ["a number among params", () => [weight(), 3] as never, "TypeError", "optimizer can only optimize Tensors, but one of the params is int"],
  ])("params given as %s are rejected", (_what, params, name, message) => {
    expect(() => new NAdam(params())).toThrow(message);
    try {
      new NAdam(params());
    } catch (error) {
      expect((error as Error).name).toBe(name);
    }
  });

  test("duplicate params in a group only warn", () => {
    const warn = vi.spyOn(process, "emitWarning").mockImplementation(() => undefined);
    const w = weight();
    new NAdam([w, w]);
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/a parameter group with duplicate parameters/), "UserWarning");
  });

  test("defaults and group keys come in PyTorch's order; group options win and are not validated", () => {
    const optimizer = new NAdam([{ params: [weight()], lr: -5, eps: 1e-6 }]);
    expect(Object.keys(optimizer.defaults)).toEqual(["lr", "betas", "eps", "weight_decay", "momentum_decay", "decoupled_weight_decay", "maximize", "foreach", "capturable", "differentiable"]);
    expect(Object.keys(optimizer.paramGroups[0]!)).toEqual(["params", "lr", "eps", "betas", "weight_decay", "momentum_decay", "decoupled_weight_decay", "maximize", "foreach", "capturable", "differentiable"]);
    expect(optimizer.paramGroups[0]!.lr).toBe(-5);
  });

  test("named params record param_names", () => {
    const optimizer = new NAdam([["weight", weight()], ["bias", bias()]]);
    expect(optimizer.paramGroups[0]!.param_names).toEqual(["weight", "bias"]);
    expect(Object.keys(optimizer.paramGroups[0]!).slice(0, 2)).toEqual(["params", "param_names"]);
  });

  test("addParamGroup fills defaults and rejects a non-object", () => {
    const optimizer = new NAdam([weight()], { lr: 0.01 });
    optimizer.addParamGroup({ params: bias(), momentum_decay: 0 });
    expect(optimizer.paramGroups[1]!.lr).toBe(0.01);
    expect(optimizer.paramGroups[1]!.params).toHaveLength(1);
    expect(() => optimizer.addParamGroup(3 as never)).toThrow("param_group must be a dict, but got <class 'int'>");
    expect(() => optimizer.addParamGroup({} as never)).toThrow("'params'");
  });

  test("repr lists each group's keys sorted, params excluded", () => {
    const text = new NAdam([weight()]).toString();
    expect(text.startsWith("NAdam (\nParameter Group 0\n    betas: (0.9, 0.999)\n    capturable: False\n")).toBe(true);
    expect(text).toContain("    lr: 0.002\n");
    expect(text.endsWith("    weight_decay: 0.0\n)")).toBe(true);
  });
});

describe("step", () => {
  test("params without grad get no state; a step with no grads changes nothing", () => {
    const [w, b] = [weight(), bias()];
    const optimizer = new NAdam([w, b]);
    optimizer.step();
    expect(optimizer.state.size).toBe(0);
    withGrads(w);
    optimizer.step();
    expect(optimizer.state.has(w)).toBe(true);
    expect(optimizer.state.has(b)).toBe(false);
    expect(Object.keys(optimizer.state.get(w)!)).toEqual(["step", "mu_product", "exp_avg", "exp_avg_sq"]);
  });

  test("step(closure) calls the closure once and returns its loss", () => {
    const w = weight();
    const optimizer = new NAdam([w]);
    const closure = vi.fn(() => {
      withGrads(w);
      return 42;
    });
    expect(optimizer.step(closure)).toBe(42);
    expect(closure).toHaveBeenCalledTimes(1);
    expect((optimizer.state.get(w)!.step as Tensor).item()).toBe(1);
    expect(optimizer.step()).toBeUndefined();
  });

  test("zero grads and no weight decay leave params bit-identical", () => {
    const w = weight();
    const before = w.toArray();
    const optimizer = new NAdam([w]);
    w.grad = Tensor.zeros(w.shape);
    optimizer.step();
    expect(w.toArray()).toEqual(before);
  });

  test("an lr changed in paramGroups is used at the next step (lr = 0 freezes)", () => {
    const w = weight();
    const optimizer = new NAdam([w]);
    optimizer.paramGroups[0]!.lr = 0;
    withGrads(w);
    const before = w.toArray();
    optimizer.step();
    expect(w.toArray()).toEqual(before);
  });

  test("foreach unset runs the for-loop path on CPU, as PyTorch does", () => {
    const run = (foreach: boolean | null) => {
      const w = Tensor.from(Array.from({ length: 64 }, (_, i) => Math.sin(i)), "float32");
      const optimizer = new NAdam([w], { foreach });
      for (let s = 0; s < 20; s++) {
        w.grad = Tensor.from(w.toArray().map((x, i) => Math.cos(x * (s + 1) + i)), "float32");
        optimizer.step();
      }
      return w.toArray();
    };
    expect(run(null)).toEqual(run(false));
    expect(run(null)).not.toEqual(run(true));
  });

  test("a NaN hyper-parameter set on a group is refused before anything changes", () => {
    const [w, b] = [weight(), bias()];
    const optimizer = new NAdam([{ params: [w] }, { params: [b] }]);
    withGrads(w, b);
    optimizer.paramGroups[1]!.eps = NaN;
    const before = w.toArray();
    expect(() => optimizer.step()).toThrow("param_groups[1]: eps is nan, not a number");
    expect(w.toArray()).toEqual(before);
    expect(optimizer.state.size).toBe(0);
  });

  test.each([
    ["shape", () => Tensor.zeros([3, 2]), "param_groups[1].params[0]: grad has shape [3, 2], the param [2, 3]"],
    ["dtype", () => Tensor.zeros([2, 3], "float64"), "param_groups[1].params[0]: grad has dtype float64, the param float32"],
  ])("a grad of the wrong %s is refused before any param changes", (_what, badGrad, message) => {
    const [b, w] = [bias(), weight()];
    const optimizer = new NAdam([{ params: [b] }, { params: [w] }]);
    withGrads(b);
    w.grad = badGrad();
    const before = b.toArray();
    expect(() => optimizer.step()).toThrow(message);
    expect(b.toArray()).toEqual(before);
    expect(optimizer.state.size).toBe(0);
  });

  test("three betas pass the constructor and fail at step", () => {
    const w = weight();
    const optimizer = new NAdam([w], { betas: [0.9, 0.99, 0.5] });
    withGrads(w);
    expect(() => optimizer.step()).toThrow("too many values to unpack (expected 2)");
  });

  test("capturable on CPU fails at step with PyTorch's message; differentiable refuses foreach", () => {
    const w = weight();
    withGrads(w);
    expect(() => new NAdam([w], { capturable: true }).step()).toThrow(/If capturable=True, params, mu_products and state_steps must be on supported devices/);
    expect(() => new NAdam([w], { capturable: true, foreach: true }).step()).toThrow("If capturable=True, params, mu_products, and state_steps must be on supported devices: ['cuda', 'xpu', 'hpu', 'privateuseone'].");
    expect(() => new NAdam([w], { differentiable: true, foreach: true }).step()).toThrow("_foreach ops don't support autograd");
    expect(() => new NAdam([w], { differentiable: true }).step()).not.toThrow();
  });

  // step() checks a group again only when one of its values changed (Object.is), and reuses its last work otherwise
  test.each([
    ["eps set to NaN", (g: Record<string, unknown>) => (g.eps = NaN), "param_groups[0]: eps is nan, not a number"],
    ["a beta changed in place", (g: Record<string, unknown>) => ((g.betas as number[])[1] = NaN), "param_groups[0]: beta2 is nan, not a number"],
    ["a third beta pushed", (g: Record<string, unknown>) => (g.betas as number[]).push(0.5), "too many values to unpack (expected 2)"],
    ["lr deleted", (g: Record<string, unknown>) => delete g.lr, "'lr'"],
    ["foreach with differentiable", (g: Record<string, unknown>) => Object.assign(g, { foreach: true, differentiable: true }), "_foreach ops don't support autograd"],
    ["capturable", (g: Record<string, unknown>) => (g.capturable = true), /If capturable=True/],
  ])("after a good step, %s is refused at the next", (_what, change, message) => {
    const w = weight();
    const optimizer = new NAdam([w]);
    withGrads(w);
    optimizer.step();
    change(optimizer.paramGroups[0]!);
    const before = w.toArray();
    expect(() => optimizer.step()).toThrow(message);
    expect(w.toArray()).toEqual(before);
  });

  test("after a good step, a new grad of the wrong shape, or a state entry emptied or broken, is seen at the next", () => {
    const w = weight();
    const optimizer = new NAdam([w]);
    withGrads(w);
    optimizer.step();
    w.grad = Tensor.zeros([3, 2]);
    expect(() => optimizer.step()).toThrow("param_groups[0].params[0]: grad has shape [3, 2], the param [2, 3]");
    withGrads(w);
    const entry = optimizer.state.get(w)!;
    delete entry.exp_avg_sq;
    expect(() => optimizer.step()).toThrow("'exp_avg_sq'");
    for (const key of Object.keys(entry)) delete entry[key as keyof typeof entry];
    optimizer.step(); // an empty entry is initialised again, as PyTorch does
    expect((optimizer.state.get(w)!.step as Tensor).item()).toBe(1);
  });

  test("the backend is handed the same work while nothing changes, and new work (the old untouched) when something does", () => {
    const [w, b] = [weight(), bias()];
    const seen: { params: readonly Tensor[]; grads: readonly Tensor[]; copy: Tensor[] }[] = [];
    const optimizer = new NAdam([w, b]);
    const stepGroup = optimizer.backend.stepGroup.bind(optimizer.backend);
    (optimizer.backend as { stepGroup: typeof stepGroup }).stepGroup = ((work: Parameters<typeof stepGroup>[0]) => {
      seen.push({ params: work.params, grads: work.grads, copy: [...work.grads] });
      return stepGroup(work);
    }) as typeof stepGroup;
    withGrads(w, b);
    optimizer.step();
    optimizer.step();
    expect(seen[1]!.params).toBe(seen[0]!.params);
    b.grad = null;
    optimizer.step();
    withGrads(b);
    optimizer.step();
    expect(seen.map((s) => s.params.length)).toEqual([2, 2, 1, 2]);
    expect(seen[3]!.grads).not.toBe(seen[0]!.grads);
    for (const s of seen) expect(s.grads).toEqual(s.copy);
  });

  test("a partially filled state entry is a KeyError, as in PyTorch", () => {
    const w = weight();
    const optimizer = new NAdam([w]);
    optimizer.state.set(w, { step: Tensor.scalar(0) });
    withGrads(w);
    expect(() => optimizer.step()).toThrow("'mu_product'");
  });
});

describe("zeroGrad", () => {
  test("sets grads to null by default", () => {
    const w = weight();
    withGrads(w);
    new NAdam([w]).zeroGrad();
    expect(w.grad).toBeNull();
  });

  test("zeroGrad(false) zeroes the same grad tensor in place", () => {
    const w = weight();
    withGrads(w);
    const grad = w.grad!;
    new NAdam([w]).zeroGrad(false);
    expect(w.grad).toBe(grad);
    expect(grad.toArray()).toEqual([0, 0, 0, 0, 0, 0]);
  });
});

describe("hooks", () => {
  test("step hooks run global pre, local pre, local post, global post", () => {
    const order: string[] = [];
    const w = weight();
    const optimizer = new NAdam([w]);
    handles.push(registerOptimizerStepPreHook(() => void order.push("global_pre")));
    handles.push(registerOptimizerStepPostHook(() => void order.push("global_post")));
    handles.push(optimizer.registerStepPreHook(() => void order.push("local_pre")));
    handles.push(optimizer.registerStepPostHook(() => void order.push("local_post")));
    optimizer.step();
    expect(order).toEqual(["global_pre", "local_pre", "local_post", "global_post"]);
  });

  test("a removed hook no longer runs; removing twice is harmless; ids grow", () => {
    const optimizer = new NAdam([weight()]);
    const calls: number[] = [];
    const first = optimizer.registerStepPreHook(() => void calls.push(1));
    const second = optimizer.registerStepPostHook(() => void calls.push(2));
    expect(second.id).toBeGreaterThan(first.id);
    first.remove();
    first.remove();
    optimizer.step();
    expect(calls).toEqual([2]);
    second.remove();
  });

  test("a pre-hook can replace the step's arguments, and args[0] is the optimizer", () => {
    const w = weight();
    const optimizer = new NAdam([w]);
    let seen: unknown[] = [];
    optimizer.registerStepPreHook((opt, args) => {
      seen = args;
      return [[opt, () => "replaced"], {}];
    });
    expect(optimizer.step(() => "original")).toBe("replaced");
    expect(seen[0]).toBe(optimizer);
  });

  test("a pre-hook returning something else is a RuntimeError, and post-hooks do not run", () => {
    const optimizer = new NAdam([weight()]);
    const post = vi.fn();
    optimizer.registerStepPreHook(() => 5 as never);
    optimizer.registerStepPostHook(post);
    expect(() => optimizer.step()).toThrow("<function NAdam.step> must return None or a tuple of (new_args, new_kwargs), but got 5.0.");
    expect(post).not.toHaveBeenCalled();
  });

  test("state_dict hooks: prepend order, and a post-hook's return value replaces the state dict", () => {
    const optimizer = new NAdam([weight()]);
    const order: string[] = [];
    optimizer.registerStateDictPreHook(() => void order.push("pre1"));
    optimizer.registerStateDictPreHook(() => void order.push("pre0"), true);
    optimizer.registerStateDictPostHook((_o, sd) => ({ ...sd, param_groups: [{ ...sd.param_groups[0]!, tag: "first" }] }));
    optimizer.registerStateDictPostHook((_o, sd) => {
      order.push(`post:${String(sd.param_groups[0]!.tag)}`);
    });
    const sd = optimizer.stateDict();
    expect(order).toEqual(["pre0", "pre1", "post:first"]);
    expect(sd.param_groups[0]!.tag).toBe("first");
  });

  test("load_state_dict hooks: a pre-hook may rewrite the dict; post-hooks run after the load", () => {
    const w = weight();
    const optimizer = new NAdam([w]);
    const sd = optimizer.stateDict();
    const order: string[] = [];
    optimizer.registerLoadStateDictPreHook((_o, d) => {
      order.push("pre");
      return { ...d, param_groups: [{ ...d.param_groups[0]!, lr: 0.5 }] };
    });
    optimizer.registerLoadStateDictPreHook(() => void order.push("pre-first"), true);
    optimizer.registerLoadStateDictPostHook((o) => void order.push(`post lr=${String(o.paramGroups[0]!.lr)}`));
    optimizer.loadStateDict(sd);
    expect(order).toEqual(["pre-first", "pre", "post lr=0.5"]);
  });
});

describe("state_dict", () => {
  test("ids run over groups in order, params come last, state is live", () => {
    const [w, b, extra] = [weight(), bias(), Tensor.scalar(2)];
    const optimizer = new NAdam([{ params: [w, b] }, { params: [extra], lr: 0.1 }]);
    withGrads(w, extra);
    optimizer.step();
    const sd = optimizer.stateDict();
    expect(sd.param_groups.map((g) => g.params)).toEqual([[0, 1], [2]]);
    expect(Object.keys(sd.param_groups[1]!).at(-1)).toBe("params");
    expect(Object.keys(sd.state)).toEqual(["0", "2"]);
    expect(sd.state[0]).toBe(optimizer.state.get(w)); // live, as PyTorch's
  });

  test("a param repeated within a group gets the id of its last position", () => {
    vi.spyOn(process, "emitWarning").mockImplementation(() => undefined);
    const [w, b] = [weight(), bias()];
    expect(new NAdam([w, b, w]).stateDict().param_groups[0]!.params).toEqual([2, 1, 2]);
  });

  test("round trip into a fresh optimizer continues bit-identically (float32)", () => {
    const make = () => [weight(), bias()];
    const [a, b] = [make(), make()];
    const first = new NAdam(a, { weight_decay: 0.01 });
    for (let s = 0; s < 3; s++) {
      withGrads(...a);
      first.step();
    }
    b.forEach((p, i) => p.copy_(a[i]!));
    const second = new NAdam(b);
    second.loadStateDict(deepCopy(first.stateDict()));
    for (let s = 0; s < 3; s++) {
      withGrads(...a);
      withGrads(...b);
      first.step();
      second.step();
    }
    expect(b.map((p) => p.toArray())).toEqual(a.map((p) => p.toArray()));
    expect(second.paramGroups[0]!.weight_decay).toBe(0.01);
  });

  test("loading casts mu_product to the param's dtype but not step (float64 params)", () => {
    const w = Tensor.from([1, 2], "float64");
    const optimizer = new NAdam([w]);
    withGrads(w);
    optimizer.step();
    const sd = optimizer.stateDict();
    const fresh = new NAdam([w]);
    fresh.loadStateDict(sd);
    const state = fresh.state.get(w)!;
    expect((state.mu_product as Tensor).dtype).toBe("float64");
    expect((state.step as Tensor).dtype).toBe("float32");
    expect(state.exp_avg).toBe(sd.state[0]!.exp_avg); // same dtype: aliased, as torch's .to() does
  });

  test("old state dicts: missing flags get defaults, numeric step and mu_product become tensors", () => {
    const w = weight();
    const optimizer = new NAdam([w]);
    const old = {
      state: { 0: { step: 3, mu_product: 0.1, exp_avg: Tensor.zeros([2, 3]), exp_avg_sq: Tensor.zeros([2, 3]) } },
      param_groups: [{ lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0, momentum_decay: 4e-3, params: [0] }],
    } as unknown as StateDict;
    optimizer.loadStateDict(old);
    const group = optimizer.paramGroups[0]!;
    expect([group.maximize, group.foreach, group.capturable, group.differentiable, group.decoupled_weight_decay]).toEqual([false, null, false, false, false]);
    const state = optimizer.state.get(w)!;
    expect(state.step).toBeInstanceOf(Tensor);
    expect((state.step as Tensor).dtype).toBe("float32");
    expect((state.mu_product as Tensor).item()).toBe(Math.fround(0.1));
    withGrads(w);
    optimizer.step();
    expect((optimizer.state.get(w)!.step as Tensor).item()).toBe(4);
  });

  test("param_names: the saved names win; a state dict without names keeps the current ones", () => {
    const named = new NAdam([["weight", weight()]]);
    const unnamed = new NAdam([weight()]);
    unnamed.loadStateDict(named.stateDict());
    expect(unnamed.paramGroups[0]!.param_names).toEqual(["weight"]);
    const named2 = new NAdam([["w", weight()]]);
    named2.loadStateDict(new NAdam([weight()]).stateDict());
    expect(named2.paramGroups[0]!.param_names).toEqual(["w"]);
  });

  test.each([
    ["a different number of groups", (sd: StateDict) => ({ ...sd, param_groups: [...sd.param_groups, sd.param_groups[0]!] }), "loaded state dict has a different number of parameter groups"],
    ["a group of another size", (sd: StateDict) => ({ ...sd, param_groups: [{ ...sd.param_groups[0]!, params: [0] }] }), "loaded state dict contains a parameter group that doesn't match the size of optimizer's group"],
    ["no param_groups", (sd: StateDict) => ({ state: sd.state }) as StateDict, "'param_groups'"],
    ["a NaN lr", (sd: StateDict) => ({ ...sd, param_groups: [{ ...sd.param_groups[0]!, lr: NaN }] }), "loaded state dict has param_groups[0].lr = NaN; expected a number"],
    ["an exp_avg of the wrong shape", (sd: StateDict) => ({ ...sd, state: { 0: { ...sd.state[0]!, exp_avg: Tensor.zeros([3, 2]) } } }), "loaded state dict has state[0].exp_avg of shape [3, 2]; its param has shape [2, 3]"],
    ["a step that is not a scalar", (sd: StateDict) => ({ ...sd, state: { 0: { ...sd.state[0]!, step: Tensor.zeros([2]) } } }), "loaded state dict has state[0].step that is neither a number nor a one-element tensor"],
  ])("a state dict with %s is rejected and the optimizer is left exactly as it was", (_what, corrupt, message) => {
    const [w, b] = [weight(), bias()];
    const optimizer = new NAdam([w, b]);
    withGrads(w, b);
    optimizer.step();
    const groups = optimizer.paramGroups;
    const state = optimizer.state;
    const snapshot = JSON.stringify([...state.values()].map((s) => Object.values(s).map((t) => (t as Tensor).toArray())));
    expect(() => optimizer.loadStateDict(corrupt(optimizer.stateDict()))).toThrow(message);
    expect(optimizer.paramGroups).toBe(groups);
    expect(optimizer.state).toBe(state);
    expect(JSON.stringify([...state.values()].map((s) => Object.values(s).map((t) => (t as Tensor).toArray())))).toBe(snapshot);
  });

  test("saved entries whose id matches no param are kept and emitted again", () => {
    const optimizer = new NAdam([weight()]);
    const sd = optimizer.stateDict();
    optimizer.loadStateDict({ ...sd, state: { 7: { note: "legacy" } } });
    expect(optimizer.stateDict().state[7]).toEqual({ note: "legacy" });
  });
});
