"""Every torch._foreach_* call that NAdam's foreach path makes on float64 tensors,
recomputed element by element in Python double with the formulas of ATen's CPU
kernels without FMA (so run it with ATEN_CPU_CAPABILITY=default); prints each element
whose result differs, with its input. Against Debian's torch 2.6 it prints none.

    ATEN_CPU_CAPABILITY=default python3 foreach_ops.py [CASE_ID ...]
"""
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden"))
import torch  # noqa: E402
import generate as G  # noqa: E402

CASES = [
    "options/defaults/float64/foreach",
    "options/weight-decay/float64/foreach",
    "long/mu-next-1200-steps/float64/foreach",
    "long/2000-steps/float64/foreach",
    "structure/lr-change/float64/foreach",
    "complex/defaults/complex128/foreach",
]
SHOWN = 500
where = {"case": None, "step": 0}
totals = {"calls": 0, "checked": 0, "differ": 0}


def values(t):
    return t.detach().reshape(-1).tolist()


def scalar_at(s, i):
    v = s[i] if isinstance(s, (list, tuple)) else s
    return v.item() if isinstance(v, torch.Tensor) else v


def lerp(a, b, w):
    return a + w * (b - a) if abs(w) < 0.5 else b - (b - a) * (1 - w)


def expected(name, args, kwargs, i, k, a, other, t1, t2):
    """ATen's CPU result for element k of tensor i, from its inputs."""
    if name in ("_foreach_add_", "_foreach_add"):
        if other is not None:
            return a + kwargs.get("alpha", 1) * other[i][k] if "alpha" in kwargs else a + other[i][k]
        return a + scalar_at(args[1], i)
    if name in ("_foreach_mul_", "_foreach_mul"):
        return a * (other[i][k] if other is not None else scalar_at(args[1], i))
    if name == "_foreach_div_":
        return a / scalar_at(args[1], i)
    if name == "_foreach_sqrt":
        return math.sqrt(a) if a >= 0 else math.nan
    if name == "_foreach_neg":
        return -a
    if name == "_foreach_addcdiv_":
        return a + (scalar_at(args[3], i) * t1[i][k]) / t2[i][k]
    if name == "_foreach_addcmul_":
        return a + (scalar_at(args[3], i) * t1[i][k]) * t2[i][k]
    if name == "_foreach_lerp_":
        return lerp(a, other[i][k], scalar_at(args[2], i))
    raise ValueError(name)


def same(x, y):
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return x == y and math.copysign(1, x) == math.copysign(1, y)


def checked(name):
    original = getattr(torch, name)

    def call(*args, **kwargs):
        totals["calls"] += 1
        tensors = args[0]
        before = [values(t) for t in tensors]
        second = args[1] if len(args) > 1 else None
        # A list of tensors shaped like the first: elementwise; else scalars (or 0-d tensors used as scalars).
        other = None
        if isinstance(second, (list, tuple)) and len(second) and isinstance(second[0], torch.Tensor):
            if all(o.numel() == t.numel() for o, t in zip(second, tensors)):
                other = [values(o) for o in second]
        t1 = [values(o) for o in args[1]] if name in ("_foreach_addcdiv_", "_foreach_addcmul_") else None
        t2 = [values(o) for o in args[2]] if name in ("_foreach_addcdiv_", "_foreach_addcmul_") else None
        result = original(*args, **kwargs)
        outputs = tensors if name.endswith("_") else result
        for i, t in enumerate(tensors):
            if t.dtype != torch.float64:
                continue
            for k, got in enumerate(values(outputs[i])):
                totals["checked"] += 1
                want = expected(name, args, kwargs, i, k, before[i][k], other, t1, t2)
                if not same(got, want):
                    totals["differ"] += 1
                    if totals["differ"] <= SHOWN:
                        print("DIFFERS %s step %d %s tensor %d[%d]: got %r want %r from %r" % (where["case"], where["step"], name, i, k, got, want, before[i][k]))
        return result

    setattr(torch, name, call)


for op in ("_foreach_add_", "_foreach_add", "_foreach_mul_", "_foreach_mul", "_foreach_div_", "_foreach_sqrt",
           "_foreach_addcdiv_", "_foreach_addcmul_", "_foreach_lerp_", "_foreach_neg"):
    checked(op)
step = torch.optim.NAdam.step


def counted_step(self, *args, **kwargs):
    where["step"] += 1
    return step(self, *args, **kwargs)


torch.optim.NAdam.step = counted_step
ids = sys.argv[1:] or CASES
print(torch.__version__, torch.backends.cpu.get_cpu_capability())
for case in G.catalog():
    if case["id"] in ids:
        where["case"], where["step"] = case["id"], 0
        G.run_case(case)
print(totals)
