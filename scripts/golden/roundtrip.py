"""PyTorch writes, we read, we write, PyTorch reads and continues the run.

Run by scripts/golden.mjs:  python3 roundtrip.py FIXTURE_DIR REWRITTEN_DIR OUT.json
FIXTURE_DIR holds torch.save's <name>.pt; REWRITTEN_DIR the same files after this
project read them and wrote them again. For each: rebuild the fixture's
optimizer (state_dicts.py's recipe, same steps); load the rewritten file with
torch.load(weights_only=True) and check that it equals the original state dict
(keys, values, dtypes, bytes); load it, and torch's own file, into two fresh
optimizers over copies of the params; run both 3 more steps on the same grads
and check that their params and state stay bit-identical. (Whether a resumed run
equals the uninterrupted one is PyTorch's business: load_state_dict casts
mu_product to the param's dtype, so float64 and float16 runs drift. It is
reported, not required.)
"""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from state_dicts import RECIPES, build, grads_for, needs, run  # noqa: E402


def equal(a, b, path, problems):
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            problems.append("%s: a tensor on one side only" % path)
        elif a.dtype != b.dtype or a.shape != b.shape:
            problems.append("%s: %s%s vs %s%s" % (path, a.dtype, list(a.shape), b.dtype, list(b.shape)))
        elif not torch.equal(a.reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8)):
            problems.append("%s: bytes differ" % path)
    elif isinstance(a, dict) and isinstance(b, dict):
        if list(a.keys()) != list(b.keys()):
            problems.append("%s: keys %s vs %s" % (path, list(a.keys()), list(b.keys())))
        for k in a:
            if k in b:
                equal(a[k], b[k], "%s/%s" % (path, k), problems)
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            problems.append("%s: lengths %d vs %d" % (path, len(a), len(b)))
        for i, (x, y) in enumerate(zip(a, b)):
            equal(x, y, "%s/%d" % (path, i), problems)
    elif a != b:
        problems.append("%s: %r vs %r" % (path, a, b))


def main():
    fixtures, rewritten, out = sys.argv[1], sys.argv[2], sys.argv[3]
    report = {"torch": torch.__version__, "weights_only": not torch.__version__.startswith("1."), "fixtures": {}}
    for name, recipe in RECIPES.items():
        path = os.path.join(rewritten, name + ".pt")
        if not needs(recipe) or not os.path.exists(path):
            continue
        steps = recipe[3]
        tensors, original = run(recipe, steps)
        # torch 1.13's weights_only unpickler cannot read floats (BINFLOAT), not even in
        # files torch 1.13 wrote itself; it loads with its default unpickler.
        weights_only = not torch.__version__.startswith("1.")
        ours = torch.load(path, weights_only=weights_only)
        theirs = torch.load(os.path.join(fixtures, name + ".pt"), weights_only=weights_only)
        problems = []
        equal(original.state_dict(), ours, "loaded state_dict", problems)
        runs = []
        for loaded in (ours, theirs):
            copies, fresh = build(recipe)
            with torch.no_grad():
                for (_, c), (_, t) in zip(copies, tensors):
                    c.copy_(t)
            fresh.load_state_dict(loaded)
            runs.append((copies, fresh))
        for step in range(steps, steps + 3):
            for params, optimizer in [(tensors, original)] + runs:
                grads_for(params, step, recipe[4])
                optimizer.step()
        (ours_params, ours_opt), (theirs_params, theirs_opt) = runs
        for (n, a), (_, b) in zip(ours_params, theirs_params):
            equal(a.detach(), b.detach(), "param %s, 3 steps after loading" % n, problems)
        equal(ours_opt.state_dict()["state"], theirs_opt.state_dict()["state"], "state 3 steps after loading", problems)
        drift = []
        for (n, a), (_, b) in zip(tensors, ours_params):
            equal(a.detach(), b.detach(), "param %s" % n, drift)
        report["fixtures"][name] = {"continued_steps": 3, "problems": problems, "resumed_equals_uninterrupted": not drift}
    with open(out, "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    print(json.dumps({"checked": len(report["fixtures"]), "failed": [n for n, r in report["fixtures"].items() if r["problems"]]}))


if __name__ == "__main__":
    main()
