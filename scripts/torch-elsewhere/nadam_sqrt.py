"""How often the square roots inside NAdam's steps are not correctly rounded: every
Tensor.sqrt (for-loop path) and torch._foreach_sqrt (foreach path) result of the
long/2000-steps cases, float32 and float64, against Python's math.sqrt (rounded to
float32 for float32).

    python3 nadam_sqrt.py
"""
import math
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden"))
import torch  # noqa: E402
import generate as G  # noqa: E402

CASES = ["long/2000-steps/float64/forloop", "long/2000-steps/float64/foreach", "long/2000-steps/float32/forloop", "long/2000-steps/float32/foreach"]
counts = {}


def to_float32(v):
    return struct.unpack("f", struct.pack("f", v))[0]


def note(kind, tensor, result):
    count = counts.setdefault("%s %s" % (kind, tensor.dtype), [0, 0])
    for a, b in zip(tensor.reshape(-1).tolist(), result.reshape(-1).tolist()):
        want = math.sqrt(a) if tensor.dtype == torch.float64 else to_float32(math.sqrt(a))
        count[0] += 1
        count[1] += b != want


tensor_sqrt = torch.Tensor.sqrt
foreach_sqrt = torch._foreach_sqrt


def checked_tensor_sqrt(self):
    result = tensor_sqrt(self)
    note("Tensor.sqrt", self, result)
    return result


def checked_foreach_sqrt(tensors):
    results = foreach_sqrt(tensors)
    for t, r in zip(tensors, results):
        note("_foreach_sqrt", t, r)
    return results


torch.Tensor.sqrt = checked_tensor_sqrt
torch._foreach_sqrt = checked_foreach_sqrt
print(torch.__version__, torch.backends.cpu.get_cpu_capability())
for case in G.catalog():
    if case["id"] in CASES:
        counts.clear()
        G.run_case(case)
        print(case["id"], {k: "%d of %d differ" % (v[1], v[0]) for k, v in counts.items()})
