"""Checkpoint files at training scale, written by real torch, for `npm run bench -- checkpoints`.

python3 checkpoint_files.py NUMEL OUT_DIR
python3 checkpoint_files.py --compare A.pt B.pt   (torch.load both, memory-mapped: same state tensors?)
Writes OUT_DIR/torch.pt (torch.save of a NAdam optimizer's state_dict) and
OUT_DIR/torch-dcp/ (torch.distributed.checkpoint.save of get_optimizer_state_dict,
single process, as `dcp.save` writes one without a process group) for one param of
NUMEL float32 elements after one step: two moments of 4 * NUMEL bytes each.
Prints one JSON line: the files and the seconds each took to write.
"""

import json
import os
import sys
import time
import warnings

import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

if sys.argv[1] == "--compare":
    # Memory-mapped: files over 4 GiB are compared without being held whole.
    a, b = (torch.load(p, weights_only=True, mmap=True) for p in sys.argv[2:4])
    same = a["state"].keys() == b["state"].keys() and all(torch.equal(a["state"][i][k], b["state"][i][k]) for i in a["state"] for k in a["state"][i])
    print(json.dumps({"equal": same}))
    sys.exit(0 if same else 1)

numel, out = int(sys.argv[1]), sys.argv[2]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
model = torch.nn.Module()
model.weight = torch.nn.Parameter(torch.rand(numel))
opt = torch.optim.NAdam(model.parameters(), lr=1e-3, foreach=False)
model.weight.grad = torch.rand(numel) - 0.5
opt.step()
model.weight.grad = None

times = {}
t0 = time.perf_counter()
torch.save(opt.state_dict(), os.path.join(out, "torch.pt"))
times["torch.pt"] = time.perf_counter() - t0

with warnings.catch_warnings():
    # dcp.save without a process group warns that it saves as a single process: that is the point.
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    dcp.save({"optim": get_optimizer_state_dict(model, opt)}, checkpoint_id=os.path.join(out, "torch-dcp"))
    times["torch-dcp"] = time.perf_counter() - t0
print(json.dumps({"torch": torch.__version__, "numel": numel, "seconds": times}))
