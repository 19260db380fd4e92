"""Every elementwise op NAdam runs on CUDA tensors (the foreach ops and the Tensor methods), recorded with
its op, dtype, scalar arguments and every input and output element, for fitting CUDA's formulas (fit_ops.py).

    python3 cuda_ops.py OUT.json CASE_ID ...
"""
import json, os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden"))
import torch
import generate as G
make = G.from_values
G.from_values = lambda values, dtype: make(values, dtype).to("cuda")
records = []
where = {"case": None}

def vals(x):
    if isinstance(x, torch.Tensor):
        return {"t": x.detach().float().reshape(-1).tolist() if x.dtype in (torch.float16, torch.bfloat16) else x.detach().reshape(-1).tolist(), "dtype": str(x.dtype), "dev": x.device.type}
    if isinstance(x, (list, tuple)):
        return [vals(v) for v in x]
    if isinstance(x, (int, float, bool)) or x is None:
        return x
    return str(x)

def hook_fn(owner, name):
    orig = getattr(owner, name)
    def f(*args, **kwargs):
        first = args[0]
        on_cuda = (isinstance(first, torch.Tensor) and first.is_cuda) or (isinstance(first, (list, tuple)) and len(first) and isinstance(first[0], torch.Tensor) and first[0].is_cuda)
        if not on_cuda or len(records) > 400000:
            return orig(*args, **kwargs)
        before = vals(args)
        out = orig(*args, **kwargs)
        after_self = vals(args[0])
        records.append({"case": where["case"], "op": name, "args": before, "kwargs": {k: vals(v) for k, v in kwargs.items()}, "self_after": after_self, "out": vals(out) if out is not args[0] else "self"})
        return out
    setattr(owner, name, f)

for n in ["_foreach_add_", "_foreach_add", "_foreach_mul_", "_foreach_mul", "_foreach_div_", "_foreach_sqrt", "_foreach_addcdiv_", "_foreach_addcmul_", "_foreach_lerp_", "_foreach_neg", "_foreach_neg_", "_foreach_sub_", "_foreach_sub", "_foreach_pow"]:
    if hasattr(torch, n): hook_fn(torch, n)
for n in ["mul_", "add_", "add", "addcmul_", "addcdiv_", "lerp_", "div", "sqrt", "mul", "neg", "div_", "sqrt_", "sub", "sub_"]:
    hook_fn(torch.Tensor, n)
ids = set(sys.argv[2:])
for case in G.catalog():
    if case["id"] in ids:
        where["case"] = case["id"]
        G.run_case(case)
with open(sys.argv[1], "w") as f:
    json.dump(records, f)
print(len(records), "records")
