"""torch.optim.NAdam's step time for `npm run bench`, a worker driven over stdin.

One JSON command a line, one JSON answer a line:
  {"op": "setup", "count": C, "numel": N, "dtype": "float32", "foreach": true, "threads": T}
  {"op": "round", "steps": S}   S back-to-back steps of every configuration (default 1): {"ms": [... per step]}
  {"op": "clear"}
The same options as the JavaScript side: lr 2e-3, weight_decay 0.01 (L2), defaults otherwise.
"""
import gc
import json
import math
import sys
import time

import torch

configs = []


def filled(n, dtype, seed):
    return (torch.arange(n, dtype=torch.float64).add_(seed).mul_(0.37).sin_().mul_(0.1)).to(dtype)


print(json.dumps({"ready": True, "torch": torch.__version__, "max_threads": torch.get_num_threads(), "capability": torch.backends.cpu.get_cpu_capability()}), flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["op"] == "setup":
        dtype = getattr(torch, cmd["dtype"])
        params = [filled(cmd["numel"], dtype, t).requires_grad_() for t in range(cmd["count"])]
        for t, p in enumerate(params):
            p.grad = filled(cmd["numel"], dtype, t + 1)
        optimizer = torch.optim.NAdam(params, lr=2e-3, weight_decay=0.01, foreach=cmd["foreach"])
        configs.append((optimizer, cmd["threads"]))
        print(json.dumps({"ok": True}), flush=True)
    elif cmd["op"] == "round":
        # "steps" back-to-back steps of each configuration, the time per step reported
        steps = cmd.get("steps", 1)
        times = []
        for optimizer, threads in configs:
            torch.set_num_threads(threads)
            t0 = time.perf_counter()
            for _ in range(steps):
                optimizer.step()
            times.append((time.perf_counter() - t0) * 1e3 / steps)
        print(json.dumps({"ms": times}), flush=True)
    elif cmd["op"] == "clear":
        configs.clear()
        gc.collect()
        print(json.dumps({"ok": True}), flush=True)
