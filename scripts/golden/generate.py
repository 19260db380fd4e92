"""Golden NAdam trajectories from real PyTorch.

Run by scripts/golden.mjs (never by the tests) under a python that has torch:
    python3 generate.py OUT_DIR
The environment variable ATEN_CPU_CAPABILITY picks PyTorch's CPU kernels
(`default` for the non-vectorized profile); the capability actually in use is
read back from torch and recorded in every file, so a file can never claim a
profile it was not produced under.

Every case is data: its groups, options, params and a schedule of grads and
events (lr changes, add_param_group, state_dict reload). Inputs come from a
seeded Mersenne Twister using only +, -, * (no libm), so they do not depend on
the platform; they are recorded as bit patterns anyway, so replays never
regenerate them. All values are written as hex bit patterns: NaN, Inf and -0
survive, and the dtype is never in doubt.
"""

import copy
import hashlib
import inspect
import json
import os
import platform
import random
import struct
import sys

import torch

FORMAT = "nadam-golden/1"
STEPS = 12

DTYPES = {
    "float64": torch.float64,
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
# Bits per element of each dtype, as the integer dtype that views it.
BIT_VIEWS = {
    torch.float64: (torch.int64, 16),
    torch.float32: (torch.int32, 8),
    torch.float16: (torch.int16, 4),
    torch.bfloat16: (torch.int16, 4),
}
# Complex params: NAdam steps their view_as_real (real and imaginary parts as a real tensor).
COMPLEX_DTYPES = {
    "complex64": torch.complex64,
    "complex128": torch.complex128,
}
REAL_OF = {torch.complex64: torch.float32, torch.complex128: torch.float64}
DTYPE_NAMES = {v: k for k, v in {**DTYPES, **COMPLEX_DTYPES}.items()}

NADAM_PARAMS = set(inspect.signature(torch.optim.NAdam.__init__).parameters)


# ---------------------------------------------------------------------------
# Encoding


def tensor_hex(t):
    """All elements' bit patterns, big-endian hex, concatenated in row-major order (a complex element: real part, imaginary part)."""
    if t.is_complex():
        t = torch.view_as_real(t)
    int_dtype, digits = BIT_VIEWS[t.dtype]
    flat = t.detach().contiguous().reshape(-1).view(int_dtype).tolist()
    mask = (1 << (4 * digits)) - 1
    return "".join(format(v & mask, "0%dx" % digits) for v in flat)


def encode_tensor(t):
    return {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape), "hex": tensor_hex(t)}


def cpu_capability():
    if hasattr(torch.backends, "cpu") and hasattr(torch.backends.cpu, "get_cpu_capability"):
        return torch.backends.cpu.get_cpu_capability()
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage:" in line:
            return line.split(":", 1)[1].strip()
    raise RuntimeError("cannot tell which CPU capability torch runs with")


def profile_of(capability):
    if capability in ("AVX2", "AVX512"):
        return "vectorized"
    if capability in ("NO AVX", "DEFAULT"):
        return "default"
    raise RuntimeError("unknown CPU capability %r" % capability)


# ---------------------------------------------------------------------------
# Inputs


class Inputs:
    """Deterministic inputs: Mersenne Twister floats, scaled with * only."""

    def __init__(self, seed):
        self.rng = random.Random(seed)

    def values(self, n, scale):
        return [(self.rng.random() * 2.0 - 1.0) * scale for _ in range(n)]


def numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


# ---------------------------------------------------------------------------
# The catalog

DEFAULT_SHAPES = [("weight", [2, 3]), ("bias", [3]), ("scale", [])]

OPTION_CONFIGS = [
    # (name, NAdam kwargs, description)
    ("defaults", {}, "every option at its default"),
    ("lr-1e-3", {"lr": 1e-3}, "a non-default lr"),
    ("momentum-decay-6e-3", {"momentum_decay": 6e-3}, "a non-default momentum_decay"),
    ("weight-decay", {"weight_decay": 0.1}, "L2 weight decay added to the grad"),
    ("weight-decay-momentum-decay", {"weight_decay": 0.1, "momentum_decay": 6e-3}, "L2 weight decay and momentum_decay"),
    ("decoupled-weight-decay", {"weight_decay": 0.1, "momentum_decay": 6e-3, "decoupled_weight_decay": True}, "NAdamW: the param shrinks before the update"),
    ("maximize-weight-decay", {"weight_decay": 0.1, "maximize": True}, "maximize with L2 weight decay"),
    ("maximize", {"maximize": True}, "maximize alone"),
    ("maximize-decoupled", {"weight_decay": 0.05, "decoupled_weight_decay": True, "maximize": True}, "maximize with decoupled weight decay"),
    ("betas-0.3-0.9", {"betas": (0.3, 0.9)}, "beta1 < 0.5: lerp weight 1 - beta1 > 0.5 takes lerp's second form"),
    ("betas-0.5-0.99", {"betas": (0.5, 0.99)}, "beta1 = 0.5: lerp weight exactly 0.5"),
    ("beta1-zero", {"betas": (0.0, 0.999)}, "beta1 = 0: mu = 0, exp_avg = grad"),
    ("beta2-zero", {"betas": (0.9, 0.0)}, "beta2 = 0: bias_correction2 = 1, exp_avg_sq = grad^2"),
    ("eps-1e-3", {"eps": 1e-3}, "a large eps"),
    ("momentum-decay-zero", {"momentum_decay": 0.0}, "momentum_decay = 0: mu = beta1/2 at every step"),
    ("tensor-lr", {"lr": ("tensor", 1e-3)}, "lr given as a 0-d float32 tensor"),
    ("tensor-lr-decoupled", {"lr": ("tensor", 2e-3), "weight_decay": 0.1, "decoupled_weight_decay": True}, "tensor lr with decoupled weight decay"),
    ("large-lr-weight-decay", {"lr": 0.1, "weight_decay": 0.01}, "a large lr with L2 weight decay"),
    ("everything", {"lr": 5e-3, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.05, "momentum_decay": 5e-3, "decoupled_weight_decay": True, "maximize": True}, "every option away from its default"),
    ("lr-zero", {"lr": 0.0}, "lr = 0: params unchanged, state advances"),
]


def base_case(case_id, description, tags, dtype, foreach):
    return {
        "id": case_id,
        "description": description,
        "tags": tags,
        "dtype": dtype,
        "foreach": foreach,
        "default_dtype": "float32",
        "steps": STEPS,
        "seed": int(hashlib.sha256(case_id.encode()).hexdigest()[:8], 16),
        "groups": [{"options": {}, "params": list(DEFAULT_SHAPES)}],
        "grad_scale": 0.5,
        "param_scale": 1.0,
        # schedule: step index (0-based) -> list of events applied before that step
        "events": {},
        # grads: "random", or a special pattern name handled in make_grad
        "grad_pattern": "random",
    }


def path_name(foreach):
    return "foreach" if foreach else "forloop"


def catalog():
    cases = []
    for dtype in DTYPES:
        for foreach in (False, True):
            for name, options, description in OPTION_CONFIGS:
                c = base_case("options/%s/%s/%s" % (name, dtype, path_name(foreach)), description, ["options", name], dtype, foreach)
                c["groups"][0]["options"] = dict(options)
                cases.append(c)

    # differentiable=True set on the group: another for-loop branch (step sizes as 0-d
    # tensors, Python's float / tensor as reciprocal * float). The constructor's flag
    # stays False, so step() runs under no_grad and leaf params may be updated in place.
    differentiable_configs = [
        ("defaults", {}),
        ("weight-decay-momentum-decay", {"weight_decay": 0.1, "momentum_decay": 6e-3}),
        ("decoupled-weight-decay", {"weight_decay": 0.1, "decoupled_weight_decay": True}),
        ("maximize-weight-decay", {"weight_decay": 0.1, "maximize": True}),
        ("tensor-lr", {"lr": ("tensor", 1e-3)}),
        ("tensor-lr-decoupled", {"lr": ("tensor", 2e-3), "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ]
    for dtype in DTYPES:
        for name, options in differentiable_configs:
            c = base_case("differentiable/%s/%s/forloop" % (name, dtype), "differentiable=True on the group: " + name, ["differentiable", name], dtype, False)
            c["groups"][0]["options"] = dict(options, differentiable=True)
            cases.append(c)

    for dtype in DTYPES:
        for foreach in (False, True):
            # Tensors longer than a vector block (16 float32 / 32 float16 elements under
            # AVX2) run PyTorch's vectorized main loop, shorter ones its scalar tail.
            c = base_case("structure/large-params/%s/%s" % (dtype, path_name(foreach)), "params of 65 and 100 elements: vectorized main loop and scalar tail", ["structure", "shapes", "vector-body"], dtype, foreach)
            c["groups"][0]["params"] = [("matrix", [5, 13]), ("vector", [100])]
            c["groups"][0]["options"] = {"weight_decay": 0.1}
            cases.append(c)
    for dtype in ("float16", "bfloat16"):
        for foreach in (False, True):
            # 16-bit add(alpha) takes a float32 fma in the vectorized main loop and dtype
            # arithmetic in the scalar tail, so L2 decay shows where the main loop ends. Sizes
            # whose n mod 64 >= 32 tell a 32-element block (AVX2, and AVX512 if it falls back to
            # the AVX2 kernel) from a 64-element one; a non-power-of-two weight_decay keeps
            # alpha * param inexact. Recorded under AVX512 too where the CPU has it.
            c = base_case("structure/vector-blocks/%s/%s" % (dtype, path_name(foreach)), "params of 32, 33, 63, 96, 100 and 127 elements with L2 decay: where the vectorized main loop of add(alpha) ends", ["structure", "shapes", "vector-blocks"], dtype, foreach)
            c["groups"][0]["params"] = [("n%d" % n, [n]) for n in (32, 33, 63, 96, 100, 127)]
            c["groups"][0]["options"] = {"weight_decay": 0.1}
            cases.append(c)

    for dtype in ("float32", "float64"):
        for foreach in (False, True):
            suffix = "%s/%s" % (dtype, path_name(foreach))

            c = base_case("structure/zero-dim-only/" + suffix, "a single 0-d param", ["structure", "shapes"], dtype, foreach)
            c["groups"][0]["params"] = [("scalar", [])]
            cases.append(c)

            c = base_case("structure/multi-dim/" + suffix, "params of 3 and 4 dimensions", ["structure", "shapes"], dtype, foreach)
            c["groups"][0]["params"] = [("conv", [2, 3, 2]), ("kernel", [1, 2, 2, 2])]
            cases.append(c)

            c = base_case("structure/empty-param/" + suffix, "a zero-element param beside a normal one", ["structure", "shapes"], dtype, foreach)
            c["groups"][0]["params"] = [("empty", [0]), ("bias", [3])]
            cases.append(c)

            c = base_case("structure/two-groups/" + suffix, "two param groups with different options", ["structure", "param-groups"], dtype, foreach)
            c["groups"] = [
                {"options": {}, "params": [("weight", [2, 3]), ("bias", [3])]},
                {"options": {"lr": 1e-2, "weight_decay": 0.1, "betas": (0.8, 0.99)}, "params": [("head", [4])]},
            ]
            cases.append(c)

            c = base_case("structure/three-groups/" + suffix, "three param groups, one with momentum_decay 0", ["structure", "param-groups"], dtype, foreach)
            c["groups"] = [
                {"options": {"eps": 1e-6}, "params": [("a", [3])]},
                {"options": {"momentum_decay": 0.0}, "params": [("b", [2, 2])]},
                {"options": {"lr": 3e-3, "weight_decay": 0.02, "decoupled_weight_decay": True}, "params": [("c", [])]},
            ]
            cases.append(c)

            c = base_case("structure/grad-none/" + suffix, "some params have no grad on some steps: their step counts lag", ["structure", "grad-none"], dtype, foreach)
            c["grad_pattern"] = "some-none"
            cases.append(c)

            c = base_case("structure/lr-change/" + suffix, "lr and weight_decay changed in param_groups between steps", ["structure", "hyper-change"], dtype, foreach)
            c["groups"][0]["options"] = {"weight_decay": 0.01}
            c["events"] = {4: [{"kind": "set", "group": 0, "key": "lr", "value": 1e-2}], 8: [{"kind": "set", "group": 0, "key": "lr", "value": 0.0}, {"kind": "set", "group": 0, "key": "weight_decay", "value": 0.0}]}
            cases.append(c)

            c = base_case("structure/add-param-group/" + suffix, "a param group added with add_param_group after 5 steps", ["structure", "param-groups", "add-param-group"], dtype, foreach)
            c["events"] = {5: [{"kind": "add_param_group", "options": {"lr": 5e-3, "momentum_decay": 6e-3}, "params": [("late", [2, 2])]}]}
            cases.append(c)

            c = base_case("structure/state-dict-reload/" + suffix, "state_dict taken after 6 steps and loaded into a fresh optimizer", ["structure", "state-dict"], dtype, foreach)
            c["groups"][0]["options"] = {"weight_decay": 0.05}
            c["events"] = {6: [{"kind": "reload"}]}
            cases.append(c)

            c = base_case("structure/default-dtype-float64/" + suffix, "torch.set_default_dtype(torch.float64): step and mu_product are float64", ["structure", "default-dtype"], dtype, foreach)
            c["default_dtype"] = "float64"
            cases.append(c)

    edge = [
        ("lr-zero-decoupled", {"lr": 0.0, "weight_decay": 0.1, "decoupled_weight_decay": True}, "random", "lr = 0 with decoupled weight decay: factor 1, params unchanged"),
        ("eps-zero-zero-grad", {"eps": 0.0}, "zero-first", "eps = 0 and a zero grad on the first step: 0/0 gives NaN params"),
        ("zero-grads", {}, "zeros", "all grads zero: params unchanged, state advances"),
        ("zero-grads-weight-decay", {"weight_decay": 0.1}, "zeros", "all grads zero with L2 weight decay: params still move"),
        ("huge-grads", {}, "huge", "grads of 1e30: exp_avg_sq overflows in float32"),
        ("tiny-grads", {}, "tiny", "grads of 1e-30: exp_avg_sq underflows"),
        ("nan-grads", {}, "nan", "a NaN grad element from step 3 on"),
        ("inf-grads", {}, "inf", "+Inf and -Inf grad elements"),
        ("subnormal-grads", {}, "subnormal", "float32-subnormal grads"),
        ("mixed-magnitudes", {"weight_decay": 1e-4}, "mixed", "grads from 1e-20 to 1e20 in one tensor"),
    ]
    for dtype in ("float32", "float64"):
        for foreach in (False, True):
            for name, options, pattern, description in edge:
                c = base_case("edge/%s/%s/%s" % (name, dtype, path_name(foreach)), description, ["edge", name], dtype, foreach)
                c["groups"][0]["options"] = dict(options)
                c["grad_pattern"] = pattern
                cases.append(c)
    for dtype in ("float16", "bfloat16"):
        for foreach in (False, True):
            c = base_case("edge/zero-grad-first/%s/%s" % (dtype, path_name(foreach)), "default eps and a zero grad at step 1: in float16 eps rounds to 0", ["edge", "zero-grad-first"], dtype, foreach)
            c["grad_pattern"] = "zero-first"
            cases.append(c)

    for dtype, foreach in (("float32", False), ("float32", True), ("float64", False), ("float64", True)):
        c = base_case("long/2000-steps/%s/%s" % (dtype, path_name(foreach)), "2,000 steps: mu_product goes subnormal (step 111) then to 0 (step 132) in float32", ["long"], dtype, foreach)
        c["steps"] = 2000
        c["groups"][0]["params"] = [("w", [4])]
        c["groups"][0]["options"] = {"weight_decay": 0.01}
        cases.append(c)
    for dtype in COMPLEX_DTYPES:
        for foreach in (False, True):
            path = path_name(foreach)
            for name, options in (
                ("defaults", {}),
                ("weight-decay", {"weight_decay": 0.1}),
                ("decoupled-weight-decay", {"weight_decay": 0.1, "decoupled_weight_decay": True}),
                ("maximize", {"maximize": True, "weight_decay": 0.05}),
                ("tensor-lr", {"lr": ("tensor", 1e-3)}),
            ):
                c = base_case("complex/%s/%s/%s" % (name, dtype, path), "complex params, stepped as their real and imaginary parts: " + name, ["complex", name], dtype, foreach)
                c["groups"][0]["options"] = dict(options)
                cases.append(c)
            # load_state_dict casts nothing of a complex param's state: mu_product stays float32.
            c = base_case("complex/state-dict-reload/%s/%s" % (dtype, path), "complex params, state_dict taken after 6 steps and loaded into a fresh optimizer", ["complex", "state-dict"], dtype, foreach)
            c["events"] = {6: [{"kind": "reload"}]}
            cases.append(c)
        c = base_case("complex/differentiable/%s/forloop" % dtype, "complex params, differentiable=True on the group", ["complex", "differentiable"], dtype, False)
        c["groups"][0]["options"] = {"differentiable": True}
        cases.append(c)

    for foreach in (False, True):
        # Every bit of mu_{t+1} reaches the params: lr * weight_decay = 1 with decoupled decay
        # zeroes the param before each update, so the param is the update itself. beta1 = 0.5
        # makes lerp exact and beta2 = 0 makes exp_avg_sq = grad**2 and bias_correction2 = 1, so
        # both CPU profiles and both paths give the same bits and no pow but 0.96 ** x is
        # involved; the float32 mu_product is 0 from step ~130, so the exp_avg step size is
        # -lr * mu_{t+1} itself. Python computes mu_{t+1} from (t + 1) * momentum_decay, which
        # differs from t * momentum_decay + momentum_decay from t = 959 on.
        c = base_case("long/mu-next-1200-steps/float64/%s" % path_name(foreach), "1,200 steps whose params show every bit of mu_{t+1} = beta1*(1 - 0.5*0.96**((t+1)*momentum_decay)) at large t", ["long", "mu-next"], "float64", foreach)
        c["steps"] = 1200
        c["groups"][0]["params"] = [("w", [2])]
        c["groups"][0]["options"] = {"lr": 1.0, "betas": (0.5, 0.0), "weight_decay": 1.0, "decoupled_weight_decay": True}
        cases.append(c)
    return cases


# ---------------------------------------------------------------------------
# Running a case


def required_features(case):
    """Constructor arguments a case needs, to skip it on torch versions without them."""
    needed = set()
    groups = case["groups"] + [e for evs in case["events"].values() for e in evs if e["kind"] == "add_param_group"]
    for g in groups:
        for key, value in g["options"].items():
            needed.add(key)
            if key == "lr" and isinstance(value, tuple):
                needed.add("tensor-lr")
    if case["foreach"]:
        needed.add("foreach")
    return needed


def unsupported_reason(case):
    """Why this torch cannot run the case, or None."""
    needed = required_features(case)
    legacy = torch.__version__.startswith("1.")
    if "tensor-lr" in needed and legacy:
        return "a Tensor lr needs torch >= 2.2"
    if legacy and case["dtype"].startswith("complex"):
        return "torch 1.x is not modelled for complex params"
    if legacy and case["dtype"] == "bfloat16":
        # Its bfloat16 CPU kernels round differently from 2.x's; the spec models 2.x only.
        return "torch 1.x bfloat16 kernels are not modelled by the spec"
    missing = sorted(k for k in needed if k != "tensor-lr" and k not in NADAM_PARAMS)
    if missing:
        return "torch.optim.NAdam has no %s argument" % ", ".join(missing)
    return None


def torch_options(options):
    out = {}
    for key, value in options.items():
        if key == "lr" and isinstance(value, tuple):
            out[key] = torch.tensor(value[1])  # 0-d float32 tensor
        else:
            out[key] = value
    return out


def json_options(options):
    out = {}
    for key, value in options.items():
        if key == "lr" and isinstance(value, tuple):
            out["lr"] = float(torch.tensor(value[1]))
            out["lr_is_tensor"] = True
        elif key == "betas":
            out[key] = list(value)
        else:
            out[key] = value
    return out


def from_values(values, dtype):
    """A 1-d tensor of `dtype` from numbers; a complex one from (real, imaginary) pairs."""
    if dtype.is_complex:
        return torch.view_as_complex(torch.tensor(values, dtype=REAL_OF[dtype]).reshape(-1, 2))
    return torch.tensor(values, dtype=dtype)


def make_grad(case, inputs, param_index, step, n, dtype):
    pattern = case["grad_pattern"]
    scale = case["grad_scale"]
    values = inputs.values(n * (2 if dtype.is_complex else 1), scale)
    if pattern == "some-none":
        # param 1 has no grad on odd steps, param 2 only from step 4 on
        if (param_index == 1 and step % 2 == 1) or (param_index == 2 and step < 4):
            return None
    elif pattern == "zeros":
        values = [0.0] * n
    elif pattern == "zero-first":
        if step == 0:
            values = [0.0 if i % 2 == 0 else v for i, v in enumerate(values)]
    elif pattern == "huge":
        values = [v * 2e30 for v in values]
    elif pattern == "tiny":
        values = [v * 2e-30 for v in values]
    elif pattern == "nan":
        if step >= 3 and n > 0:
            values[0] = float("nan")
    elif pattern == "inf":
        if step in (2, 5) and n > 1:
            values[0] = float("inf")
            values[1] = float("-inf")
    elif pattern == "subnormal":
        values = [v * 2e-39 for v in values]
    elif pattern == "mixed":
        values = [v * 10.0 ** (-20 + 40 * (i % 5) // 4) for i, v in enumerate(values)]
    return from_values(values, dtype)


def encode_state(opt, p):
    if p not in opt.state or len(opt.state[p]) == 0:
        return None
    s = opt.state[p]
    # step and mu_product are 0-d tensors whose dtype varies (float32, float64 default
    # dtype, the param dtype after load_state_dict): [dtype, hex]. The moments always
    # have the param's dtype and shape: hex only.
    return {
        "step": [DTYPE_NAMES[s["step"].dtype], tensor_hex(s["step"])],
        "mu_product": [DTYPE_NAMES[s["mu_product"].dtype], tensor_hex(s["mu_product"])],
        "exp_avg": tensor_hex(s["exp_avg"]),
        "exp_avg_sq": tensor_hex(s["exp_avg_sq"]),
    }


def run_case(case):
    torch.set_default_dtype(DTYPES[case["default_dtype"]])
    try:
        return _run_case(case)
    finally:
        torch.set_default_dtype(torch.float32)


def _run_case(case):
    dtype = {**DTYPES, **COMPLEX_DTYPES}[case["dtype"]]
    inputs = Inputs(case["seed"])
    params = []  # (name, tensor) in id order
    record_params = []

    def new_param(name, shape):
        t = from_values(inputs.values(numel(shape) * (2 if dtype.is_complex else 1), case["param_scale"]), dtype).reshape(shape)
        t.requires_grad_(True)
        params.append((name, t))
        record_params.append({"name": name, "init": encode_tensor(t)})
        return t

    def torch_group(group):
        g = {"params": [new_param(n, s) for n, s in group["params"]]}
        g.update(torch_options(group["options"]))
        return g

    groups_json = []
    torch_groups = []
    index = 0
    for group in case["groups"]:
        torch_groups.append(torch_group(group))
        groups_json.append({"options": json_options(group["options"]), "params": list(range(index, index + len(group["params"])))})
        index += len(group["params"])

    ctor = {"foreach": case["foreach"]} if "foreach" in NADAM_PARAMS else {}
    opt = torch.optim.NAdam(torch_groups, **ctor)
    live_groups = [list(g["params"]) for g in torch_groups]

    steps = []
    for step in range(case["steps"]):
        events = []
        for event in case["events"].get(step, []):
            if event["kind"] == "set":
                opt.param_groups[event["group"]][event["key"]] = event["value"]
                events.append(dict(event))
            elif event["kind"] == "add_param_group":
                first = len(params)
                g = torch_group(event)
                opt.add_param_group(g)
                live_groups.append(list(g["params"]))
                events.append({"kind": "add_param_group", "options": json_options(event["options"]), "params": list(range(first, len(params)))})
            elif event["kind"] == "reload":
                saved = copy.deepcopy(opt.state_dict())
                opt = torch.optim.NAdam([{"params": ps} for ps in live_groups], **ctor)
                opt.load_state_dict(saved)
                events.append({"kind": "reload"})
            else:
                raise ValueError(event["kind"])

        grads = []
        for i, (_, p) in enumerate(params):
            g = make_grad(case, inputs, i, step, p.numel(), dtype)
            p.grad = None if g is None else g.reshape(p.shape)
            grads.append(None if g is None else tensor_hex(g))
        opt.step()
        entry = {"grads": grads, "params": [tensor_hex(p) for _, p in params], "state": [encode_state(opt, p) for _, p in params]}
        if events:
            entry = {"events": events, **entry}
        steps.append(entry)

    return {
        "params": record_params,
        "param_groups": groups_json,
        "steps": steps,
    }


def dump(doc):
    """JSON with one line per step, so that diffs of regenerated files stay readable."""
    steps = doc["steps"]
    head = {k: v for k, v in doc.items() if k != "steps"}
    lines = ["{"]
    for key, value in head.items():
        lines.append("%s: %s," % (json.dumps(key), json.dumps(value, separators=(",", ":"), allow_nan=False)))
    lines.append('"steps": [')
    lines.append(",\n".join(json.dumps(s, separators=(",", ":"), allow_nan=False) for s in steps))
    lines.append("]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main():
    out_dir = sys.argv[1]
    only = sys.argv[2] if len(sys.argv) > 2 else None
    capability = cpu_capability()
    provenance = {
        "version": torch.__version__,
        "cpu_capability": capability,
        "profile": profile_of(capability),
        "python": platform.python_version(),
    }
    written = 0
    skipped = []
    for case in catalog():
        if only and not case["id"].startswith(only):
            continue
        reason = unsupported_reason(case)
        if reason is None:
            try:
                result = run_case(case)
            except RuntimeError as error:
                if "not implemented for" not in str(error):
                    raise
                reason = str(error).splitlines()[0]  # e.g. 1.13: "addcmul_cpu_out" not implemented for 'Half'
        if reason is not None:
            skipped.append({"id": case["id"], "reason": reason})
            continue
        doc = {
            "format": FORMAT,
            "id": case["id"],
            "description": case["description"],
            "tags": case["tags"],
            "torch": provenance,
            "dtype": case["dtype"],
            "foreach": case["foreach"],
            "default_dtype": case["default_dtype"],
            **result,
        }
        path = os.path.join(out_dir, *case["id"].split("/")) + ".json"
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(dump(doc))
        written += 1
    print(json.dumps({"torch": provenance, "written": written, "skipped": skipped}))


if __name__ == "__main__":
    main()
