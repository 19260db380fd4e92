"""NAdam state_dict fixtures written by real torch.save, with the same state dicts as JSON.

Run by scripts/golden.mjs:  python3 state_dicts.py OUT_DIR
Writes OUT_DIR/<name>.pt and OUT_DIR/<name>.json (the nadam-state-dict/1 encoding,
made here independently of the TypeScript encoder: little-endian bytes, base64),
plus a few state dicts of other optimizers, which a validator must refuse.
Each fixture's recipe (params, options, steps) is in RECIPES, so that the round-trip
check (roundtrip.py) can rebuild the same optimizer and continue the run.
"""

import base64
import json
import os
import sys

import torch

LEGACY = torch.__version__.startswith("1.")
DTYPE_NAMES = {torch.float64: "float64", torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16", torch.complex64: "complex64", torch.complex128: "complex128"}

# name -> (param specs [(name, shape, dtype)], groups [(param indices, options)], ctor options, steps, extra)
RECIPES = {
    "defaults-float32-forloop": ([("weight", [2, 3], "float32"), ("bias", [3], "float32")], [([0, 1], {})], {"foreach": False}, 3, {}),
    "defaults-float64-foreach": ([("weight", [2, 3], "float64"), ("bias", [3], "float64")], [([0, 1], {})], {"foreach": True}, 3, {}),
    "two-groups-weight-decay": ([("weight", [4, 2], "float32"), ("bias", [2], "float32"), ("head", [], "float32")], [([0, 1], {"weight_decay": 0.1}), ([2], {"lr": 1e-2, "betas": (0.8, 0.99)})], {"foreach": False}, 4, {}),
    "no-steps": ([("weight", [2, 2], "float32")], [([0], {})], {}, 0, {}),
    "named-params": ([("encoder.weight", [3, 2], "float32"), ("encoder.bias", [2], "float32")], [([0, 1], {"momentum_decay": 6e-3})], {"foreach": False}, 2, {"named": True}),
    "decoupled-maximize": ([("w", [5], "float64")], [([0], {"weight_decay": 0.05, "decoupled_weight_decay": True, "maximize": True})], {"foreach": True}, 3, {}),
    "tensor-lr": ([("w", [2, 2], "float32")], [([0], {"lr": ("tensor", 1e-3)})], {"foreach": False}, 2, {}),
    "half-precision": ([("h", [4], "float16"), ("b", [3], "bfloat16")], [([0, 1], {})], {"foreach": False}, 2, {}),
    "scheduler-initial-lr": ([("w", [3], "float32")], [([0], {})], {"foreach": False}, 3, {"scheduler": True}),
    "some-params-without-state": ([("used", [2], "float32"), ("unused", [2], "float32")], [([0, 1], {})], {"foreach": False}, 2, {"grad_only": [0]}),
    "complex-params": ([("z", [2, 2], "complex64"), ("w", [3], "complex128")], [([0, 1], {"weight_decay": 0.1})], {"foreach": True}, 3, {}),
}


def needs(recipe):
    params, groups, ctor, steps, extra = recipe
    keys = set(ctor) | {k for _, opts in groups for k in opts}
    if LEGACY and (extra.get("named") or any(isinstance(o.get("lr"), tuple) for _, o in groups)):
        return False
    if LEGACY and any(d == "float16" for _, _, d in params):
        return False  # torch 1.13 has no float16 addcmul on CPU
    if LEGACY and any(d.startswith("complex") for _, _, d in params):
        return False  # complex params are modelled for torch 2 only
    signature = torch.optim.NAdam.__init__.__code__.co_varnames
    return all(k in signature for k in keys)


def random_tensor(shape, dtype, gen, scale):
    """Uniform values in float64, then the dtype; a complex tensor gets a random real and imaginary part."""
    if dtype.is_complex:
        parts = scale(torch.rand(list(shape) + [2], generator=gen, dtype=torch.float64))
        return torch.view_as_complex(parts).to(dtype)
    return scale(torch.rand(shape, generator=gen, dtype=torch.float64)).to(dtype)


def build(recipe):
    params, groups, ctor, steps, extra = recipe
    gen = torch.Generator().manual_seed(0)
    tensors = []
    for name, shape, dtype in params:
        t = random_tensor(shape, getattr(torch, dtype), gen, lambda r: r * 2 - 1).requires_grad_(True)
        tensors.append((name, t))
    torch_groups = []
    for indices, options in groups:
        opts = {k: (torch.tensor(v[1]) if isinstance(v, tuple) and v and v[0] == "tensor" else v) for k, v in options.items()}
        entries = [tensors[i] if extra.get("named") else tensors[i][1] for i in indices]
        torch_groups.append(dict(params=entries, **opts))
    opt = torch.optim.NAdam(torch_groups, **ctor)
    return tensors, opt


def grads_for(tensors, step, extra):
    gen = torch.Generator().manual_seed(1000 + step)
    for i, (_, t) in enumerate(tensors):
        if "grad_only" in extra and i not in extra["grad_only"]:
            t.grad = None
            continue
        t.grad = random_tensor(t.shape, t.dtype, gen, lambda r: r - 0.5)


def run(recipe, steps):
    tensors, opt = build(recipe)
    extra = recipe[4]
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5) if extra.get("scheduler") else None
    for step in range(steps):
        grads_for(tensors, step, extra)
        opt.step()
        if scheduler is not None:
            scheduler.step()
    return tensors, opt


def encode(value):
    if isinstance(value, torch.Tensor):
        t = value.detach().contiguous()
        raw = t.view(torch.int16).numpy().tobytes() if t.dtype in (torch.float16, torch.bfloat16) else t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()
        return {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape), "data": base64.b64encode(raw).decode()}
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    return value


def other_optimizers(out_dir):
    p = torch.nn.Parameter(torch.ones(3))
    for name, opt in (("other-adam", torch.optim.Adam([p], lr=1e-3)), ("other-sgd", torch.optim.SGD([p], lr=0.1, momentum=0.9))):
        p.grad = torch.ones(3)
        opt.step()
        torch.save(opt.state_dict(), os.path.join(out_dir, name + ".pt"))


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for name, recipe in RECIPES.items():
        if not needs(recipe):
            continue
        _, opt = run(recipe, recipe[3])
        sd = opt.state_dict()
        torch.save(sd, os.path.join(out_dir, name + ".pt"))
        with open(os.path.join(out_dir, name + ".json"), "w") as f:
            json.dump({"format": "nadam-state-dict/1", "state": encode(sd["state"]), "param_groups": encode(sd["param_groups"])}, f, indent=1, sort_keys=False)
            f.write("\n")
        written.append(name)
    other_optimizers(out_dir)
    print(json.dumps({"torch": torch.__version__, "written": written}))


if __name__ == "__main__":
    main()
