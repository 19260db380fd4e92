#!/usr/bin/env python3
"""A port that wraps real torch.optim.NAdam, speaking the suite's subprocess
protocol, nadam-port/2 (conformance/protocol.schema.json and
conformance/INTERPRETING.md). Its only dependency besides the standard library
is torch:

    nadam-reference check --port "env ATEN_CPU_CAPABILITY=avx2 python3 conformance/examples/torch-port/nadam_port.py"

Everything it claims comes from the torch it runs on: the dtypes that torch's
CPU NAdam steps, both code paths (foreach), the one CPU rounding profile torch
runs (ATEN_CPU_CAPABILITY=default: "default"; AVX2 / AVX512: "vectorized"; the
suite skips the other profile's cases), a Tensor lr on torch >= 2.2,
differentiable groups where NAdam has the option, state dicts and added
groups. The options this torch's NAdam lacks (torch 1.13: maximize,
decoupled_weight_decay, differentiable) are declared up front
(`unsupported_options`), and a request that uses one anyway is answered with
an `unsupported` error naming it: the suite skips such cases, with the reason.
torch 2.6 is bit-exact to the suite's golden corpus; torch 1.13 is not.

NADAM_PORT_DEVICE=cuda (or any torch device) puts the params, grads and state
on that device, to measure how far torch there is from its CPU recordings. No
CPU rounding profile describes a GPU, so such a port claims both: run it under
the default policy, whose report gives each profile's distance.
"""

import base64
import inspect
import itertools
import json
import math
import os
import re
import sys

import torch

NADAM_ARGS = set(inspect.signature(torch.optim.NAdam.__init__).parameters) - {"self", "params"}
# The options a case may set (nadam-port/2's optionName).
OPTION_NAMES = ["lr", "betas", "eps", "weight_decay", "momentum_decay", "decoupled_weight_decay", "maximize", "differentiable"]
VERSION = tuple(int(x) for x in re.match(r"(\d+)\.(\d+)", torch.__version__).groups())
PATHS = ["forloop", "foreach"] if "foreach" in NADAM_ARGS else ["forloop"]
DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "complex64": torch.complex64, "complex128": torch.complex128}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
# Options that are Python floats in PyTorch. JSON has one number type and the suite (JavaScript)
# writes 0.0 as 0, which Python reads as an int: make them floats again, as torch's users pass them.
# Non-finite numbers travel as the strings "inf", "-inf", "nan" (float() reads those too).
FLOAT_KEYS = {"lr", "betas", "eps", "weight_decay", "momentum_decay", "initial_lr"}
DEVICE = torch.device(os.environ.get("NADAM_PORT_DEVICE", "cpu"))


# ---------------------------------------------------------------------------
# Encoding: tensors as {dtype, shape, data: base64 of the little-endian bytes}


def decode(t):
    dtype = DTYPES[t["dtype"]]
    raw = bytearray(base64.b64decode(t["data"]))
    flat = torch.frombuffer(raw, dtype=torch.uint8) if raw else torch.empty(0, dtype=torch.uint8)
    if sys.byteorder == "big":
        flat = flat.reshape(-1, part_size(dtype)).flip(-1).reshape(-1)
    return flat.view(dtype).reshape(t["shape"]).clone()  # clone: own memory, not the buffer's


def part_size(dtype):
    """Bytes per number: a complex element's real and imaginary parts are each little-endian on their own."""
    size = torch.empty((), dtype=dtype).element_size()
    return size // 2 if dtype.is_complex else size


def encode(t):
    """Any tensor, 0-d included, with its bit pattern (NaN payloads, -0) intact."""
    t = t.detach().cpu().contiguous()
    raw = t.reshape(-1).view(torch.uint8)
    if sys.byteorder == "big":
        raw = raw.reshape(-1, part_size(t.dtype)).flip(-1).reshape(-1)
    return {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape), "data": base64.b64encode(bytes(raw.tolist())).decode()}


def is_tensor(value):
    return isinstance(value, dict) and set(value) == {"dtype", "shape", "data"}


def from_json(value, key=None):
    """Options and state dicts as torch takes them: tensors decoded, float options floats, betas a tuple."""
    if is_tensor(value):
        return decode(value)
    if isinstance(value, dict):
        return {k: from_json(v, k) for k, v in value.items()}
    if isinstance(value, list):
        items = [from_json(v, key if key == "betas" else None) for v in value]
        return tuple(items) if key == "betas" else items
    if key in FLOAT_KEYS and not isinstance(value, bool):
        return float(value)
    return value


def to_json(value):
    """A state dict as nadam-state-dict/1 (spec/state-dict/schema.json); json.dumps would write Infinity / NaN, which is not JSON."""
    if torch.is_tensor(value):
        return encode(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if value != value else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}  # state is keyed by param id: "0", "1", ...
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


# ---------------------------------------------------------------------------
# What this torch offers


def cpu_capability():
    if hasattr(torch.backends, "cpu") and hasattr(torch.backends.cpu, "get_cpu_capability"):
        return torch.backends.cpu.get_cpu_capability()
    match = re.search(r"CPU capability usage: (.*)", torch.__config__.show())  # torch 1.x
    return match.group(1).strip() if match else "unknown"


PROFILES = {"NO AVX": "default", "DEFAULT": "default", "AVX2": "vectorized", "AVX512": "vectorized"}


def steps_in(dtype):
    """Whether torch's CPU NAdam steps this dtype on every path (torch 1.13 has no float16 addcmul).
    Complex params only from torch 2: the suite's corpus models torch 2's complex NAdam."""
    if dtype.is_complex and VERSION < (2, 0):
        return False
    try:
        for path in PATHS:
            p = torch.ones(3, dtype=dtype, device=DEVICE, requires_grad=True)
            p.grad = torch.ones(3, dtype=dtype, device=DEVICE)
            torch.optim.NAdam([p], weight_decay=0.1, **constructor(path == "foreach")).step()
        return True
    except RuntimeError:
        return False


def constructor(foreach):
    return {"foreach": foreach} if "foreach" in NADAM_ARGS else {}


def capabilities():
    capability = cpu_capability() if DEVICE.type == "cpu" else "%s: %s" % (DEVICE, torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else DEVICE.type)
    if DEVICE.type == "cpu" and capability not in PROFILES:
        raise RuntimeError("torch runs with CPU capability %r, which is neither of the suite's profiles" % capability)
    features = ["state-dict", "add-param-group"]
    if VERSION >= (2, 2):
        features.append("tensor-lr")
    if "differentiable" in NADAM_ARGS:
        features.append("differentiable")
    unsupported = sorted(o for o in OPTION_NAMES if o not in NADAM_ARGS)
    return {
        "name": "torch %s NAdam (%s)" % (torch.__version__, capability),
        "capabilities": {"dtypes": [n for n, d in DTYPES.items() if steps_in(d)], "paths": PATHS, "profiles": [PROFILES[capability]] if DEVICE.type == "cpu" else ["default", "vectorized"], "features": features, "unsupported_options": unsupported},
    }


class Unsupported(Exception):
    """Answered as {"type": "unsupported"}: the suite skips the case instead of failing it."""


def options(raw):
    """A group's options for torch; refuses those this torch's NAdam lacks (it would ignore them silently)."""
    opts = from_json(raw)
    for key, value in opts.items():
        if key not in NADAM_ARGS:
            raise Unsupported("torch %s's NAdam has no %r option" % (torch.__version__, key))
        if key == "lr" and torch.is_tensor(value) and VERSION < (2, 2):
            raise Unsupported("torch %s's NAdam takes no Tensor lr (torch >= 2.2 does)" % torch.__version__)
    return opts


# ---------------------------------------------------------------------------
# A session: one torch.optim.NAdam


class Session:
    def __init__(self, request):
        self.default_dtype = DTYPES[request["default_dtype"]]
        self.enter()
        # Param ids are positions in `params`; groups list ids. Params require grad, as in training:
        # step() then runs under no_grad unless the constructor's differentiable is set, and the
        # cases set differentiable on the group only (as the golden generator does).
        self.params = [decode(p["value"]).to(DEVICE).requires_grad_(True) for p in request["params"]]
        groups = [dict(options(g["options"]), params=[self.params[i] for i in g["params"]]) for g in request["param_groups"]]
        self.opt = torch.optim.NAdam(groups, **constructor(request["foreach"]))

    def enter(self):
        """torch's default dtype is global, and step / mu_product are made in it on a param's first step."""
        torch.set_default_dtype(self.default_dtype)

    def step(self, grads):
        for p, g in zip(self.params, grads):
            p.grad = None if g is None else decode(g).to(DEVICE)  # null: the param has no grad this step
        self.opt.step()
        return {"params": [encode(p) for p in self.params], "state": [self.state(p) for p in self.params]}

    def state(self, p):
        """step and mu_product in the dtype torch holds them: the default dtype, or after load_state_dict mu_product in the param's."""
        s = self.opt.state.get(p)
        if not s:
            return None  # no grad yet
        return {key: encode(s[key]) for key in ("step", "mu_product", "exp_avg", "exp_avg_sq")}

    def set(self, group, key, value):
        if key not in NADAM_ARGS:
            raise Unsupported("torch %s's NAdam has no %r option" % (torch.__version__, key))
        self.opt.param_groups[group][key] = from_json(value, key)

    def add_param_group(self, opts, params):
        new = [decode(p["value"]).to(DEVICE).requires_grad_(True) for p in params]  # ids follow the existing ones
        self.opt.add_param_group(dict(options(opts), params=new))
        self.params.extend(new)

    def state_dict(self):
        return dict(format="nadam-state-dict/1", **to_json(self.opt.state_dict()))

    def load_state_dict(self, sd):
        # The suite has reopened this session with the same params (current values) and the
        # original options; torch takes the saved groups' options and casts mu_product (not step)
        # to the param's dtype.
        sd = from_json(sd)
        self.opt.load_state_dict({"state": {int(k): v for k, v in sd["state"].items()}, "param_groups": sd["param_groups"]})


def main():
    out = sys.stdout
    sys.stdout = sys.stderr  # stdout carries protocol lines only; anything printed goes to stderr
    sessions = {}
    numbers = itertools.count(1)

    def hello(m):
        if m.get("protocol") != "nadam-port/2":
            raise ValueError("this port speaks nadam-port/2, not %s" % m.get("protocol"))
        return dict(protocol="nadam-port/2", **capabilities())

    def open_(m):
        number = next(numbers)
        sessions[number] = Session(m["request"])
        return {"session": number}

    def session(m):
        s = sessions.get(m["session"])
        if s is None:
            raise KeyError("no open session %r" % m["session"])
        s.enter()
        return s

    def close(m):
        sessions.pop(m["session"], None)
        return {}

    handlers = {
        "hello": hello,
        "open": open_,
        "step": lambda m: session(m).step(m["grads"]),
        "set": lambda m: session(m).set(m["group"], m["key"], m["value"]) or {},
        "add_param_group": lambda m: session(m).add_param_group(m["options"], m["params"]) or {},
        "state_dict": lambda m: {"state_dict": session(m).state_dict()},
        "load_state_dict": lambda m: session(m).load_state_dict(m["state_dict"]) or {},
        "close": close,
        "bye": lambda m: {},
    }
    for line in sys.stdin:
        message = json.loads(line)
        try:
            handler = handlers.get(message["op"])
            if handler is None:
                raise ValueError("unknown op %s" % message["op"])
            reply = dict(handler(message), id=message["id"], ok=True)
        except Exception as error:  # reported to the suite, which shows it (a case errors or is skipped; the run goes on)
            kind = "unsupported" if isinstance(error, Unsupported) else type(error).__name__
            reply = {"id": message["id"], "ok": False, "error": {"type": kind, "message": str(error)}}
        out.write(json.dumps(reply, allow_nan=False) + "\n")  # allow_nan=False: never write non-JSON
        out.flush()
        if message["op"] == "bye":
            break


if __name__ == "__main__":
    main()
