#!/usr/bin/env python3
"""An example NAdam port in plain Python (standard library only), speaking the
suite's subprocess protocol, nadam-port/2 (conformance/protocol.schema.json and
conformance/INTERPRETING.md):

    nadam-reference check --port "python3 conformance/examples/python-port/nadam_port.py"

float32 and float64, both code paths, a tensor lr, state dicts and added
groups. Its arithmetic is PyTorch's non-vectorized CPU profile: float32 results
rounded after every operation (struct), Python floats for the host-side scalars
(CPython's ** is the C library's pow, as in PyTorch). On glibc it is bit-exact
to torch 2.6 under ATEN_CPU_CAPABILITY=default. `--mistake NAME` turns on one
known porting mistake (for the suite's own tests of its diagnosis).
"""

import base64
import json
import math
import struct
import sys

MISTAKE = sys.argv[sys.argv.index("--mistake") + 1] if "--mistake" in sys.argv else None


def broken(name):
    return MISTAKE == name


def f32(x):
    """Round to the nearest float32 (IEEE: overflow gives inf)."""
    try:
        return struct.unpack("<f", struct.pack("<f", x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def f64(x):
    return x


def round_to(dtype):
    return f32 if dtype == "float32" else f64


def div(a, b):
    """IEEE division (Python raises on a zero divisor)."""
    if b == 0:
        if a == 0 or a != a:
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


FORMATS = {"float32": ("f", 4), "float64": ("d", 8)}


def decode(t):
    code, size = FORMATS[t["dtype"]]
    raw = base64.b64decode(t["data"])
    return {"dtype": t["dtype"], "shape": t["shape"], "values": list(struct.unpack("<%d%s" % (len(raw) // size, code), raw))}


def encode(dtype, shape, values):
    code, _ = FORMATS[dtype]
    return {"dtype": dtype, "shape": shape, "data": base64.b64encode(struct.pack("<%d%s" % (len(values), code), *values)).decode()}


DEFAULTS = {"lr": 2e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0, "momentum_decay": 4e-3, "decoupled_weight_decay": False, "maximize": False, "foreach": None, "capturable": False, "differentiable": False}


class NAdam:
    def __init__(self, request):
        self.params = [decode(p["value"]) for p in request["params"]]
        self.foreach = request["foreach"]
        self.scalar_dtype = request["default_dtype"]
        self.groups = [self.group(g["options"], g["params"]) for g in request["param_groups"]]
        self.state = {}  # param id -> dict

    def group(self, options, ids):
        g = dict(DEFAULTS)
        g.update({k: v for k, v in options.items() if k != "params"})
        g["params"] = list(ids)
        if isinstance(g["lr"], dict):  # a 0-d float32 tensor lr
            g["lr"] = {"tensor": decode(g["lr"])["values"][0]}
        return g

    def step(self, grads):
        for g in self.groups:
            for i in g["params"]:
                if grads[i] is not None:
                    self.update(i, decode(grads[i])["values"], g)

    def update(self, pid, grad_values, g):
        """One param, PyTorch's _single_tensor_nadam / _multi_tensor_nadam, non-vectorized profile."""
        p = self.params[pid]
        r = round_to(p["dtype"])
        s = self.state.get(pid)
        if s is None:
            mp_dtype = "float64" if broken("mu-product-in-float64") else self.scalar_dtype
            s = self.state[pid] = {"step": 0.0, "step_dtype": self.scalar_dtype, "mu_product": 1.0, "mu_product_dtype": mp_dtype, "exp_avg": [0.0] * len(p["values"]), "exp_avg_sq": [0.0] * len(p["values"])}
        beta1, beta2 = g["betas"]
        tensor_lr = isinstance(g["lr"], dict)
        lr = g["lr"]["tensor"] if tensor_lr else g["lr"]
        maximize = (not g["maximize"]) if broken("maximize-sign") else g["maximize"]
        decoupled = (not g["decoupled_weight_decay"]) if broken("weight-decay-mode-swapped") else g["decoupled_weight_decay"]
        foreach = (not self.foreach) if broken("paths-swapped") else self.foreach
        rs, rmp = round_to(s["step_dtype"]), round_to(s["mu_product_dtype"])

        s["step"] = rs(s["step"] + 1)
        t = s["step"] - 1 if broken("step-counted-from-zero") else s["step"]
        bc2 = 1 - beta2 ** (t + 1 if broken("bias-correction-off-by-one") else t)
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (t * g["momentum_decay"])))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((t + 1) * g["momentum_decay"])))
        s["mu_product"] = rmp(s["mu_product"] * rmp(mu))
        mp = s["mu_product"]
        mp_next = f32(f32(mp * f32(mu)) * f32(mu_next)) if broken("old-mu-product-next") else mp * mu_next
        s1 = div(-lr * (1.0 - mu), 1.0 - mp)
        s2 = div(-lr * mu_next, 1.0 - mp_next)
        if tensor_lr and not foreach:
            s1 = f32(div(f32(-lr * f32(1.0 - mu)), f32(1.0 - mp)))
            s2 = f32(div(f32(-lr * f32(mu_next)), f32(1.0 - mp_next)))
        decay = f32(1 - f32(lr * f32(g["weight_decay"]))) if tensor_lr else 1 - lr * g["weight_decay"]
        w = r(1 - beta1)

        values = []
        for i, x in enumerate(p["values"]):
            grad = -grad_values[i] if maximize else grad_values[i]
            if g["weight_decay"] != 0:
                if decoupled:
                    x = r(x * r(decay))
                else:
                    grad = r(grad + r(r(g["weight_decay"]) * x))
            m = s["exp_avg"][i]
            d = r(grad - m)
            if broken("exp-avg-mul-add-instead-of-lerp"):
                m = r(r(m * r(beta1)) + r(r(1 - beta1) * grad))
            else:
                m = r(m + r(w * d)) if abs(w) < 0.5 else r(grad - r(d * r(1 - w)))
            v = r(s["exp_avg_sq"][i] * r(beta2))
            v = r(v + r(r(r(1 - beta2) * grad) * grad))
            if broken("eps-inside-sqrt"):
                den = r(math.sqrt(r(r(div(v, r(bc2))) + r(g["eps"]))))
            elif foreach:
                den = r(r(div(r(math.sqrt(v)), r(bc2 ** 0.5))) + r(g["eps"]))
            else:
                den = r(r(math.sqrt(r(div(v, r(bc2))))) + r(g["eps"]))
            if broken("keras-optax-formula"):
                m_hat = div(beta1 * m, 1 - beta1 ** (t + 1)) + div((1 - beta1) * grad, 1 - beta1 ** t)
                x = r(x - r(div(lr * m_hat, den)))
            else:
                x = r(x + r(div(r(r(s1) * grad), den)))
                x = r(x + r(div(r(r(s2) * m), den)))
            s["exp_avg"][i] = m
            s["exp_avg_sq"][i] = v
            values.append(x)
        p["values"] = values

    def encoded_state(self, pid):
        s = self.state.get(pid)
        if s is None:
            return None
        p = self.params[pid]
        return {"step": encode(s["step_dtype"], [], [s["step"]]), "mu_product": encode(s["mu_product_dtype"], [], [s["mu_product"]]), "exp_avg": encode(p["dtype"], p["shape"], s["exp_avg"]), "exp_avg_sq": encode(p["dtype"], p["shape"], s["exp_avg_sq"])}

    def reply(self):
        return {"params": [encode(p["dtype"], p["shape"], p["values"]) for p in self.params], "state": [self.encoded_state(i) for i in range(len(self.params))]}

    def state_dict(self):
        groups = []
        for g in self.groups:
            packed = {k: v for k, v in g.items() if k != "params"}
            if isinstance(packed["lr"], dict):
                packed["lr"] = encode("float32", [], [packed["lr"]["tensor"]])
            packed["params"] = g["params"]
            groups.append(packed)
        return {"state": {str(i): self.encoded_state(i) for i in sorted(self.state)}, "param_groups": groups}

    def load_state_dict(self, sd):
        """Hyper-parameters from the saved groups; mu_product takes the param's dtype, step keeps its own."""
        self.groups = [self.group(g, g["params"]) for g in sd["param_groups"]]
        self.state = {}
        for key, s in sd["state"].items():
            p = self.params[int(key)]
            step = decode(s["step"])
            self.state[int(key)] = {"step": step["values"][0], "step_dtype": step["dtype"], "mu_product": round_to(p["dtype"])(decode(s["mu_product"])["values"][0]), "mu_product_dtype": p["dtype"], "exp_avg": decode(s["exp_avg"])["values"], "exp_avg_sq": decode(s["exp_avg_sq"])["values"]}


def main():
    sessions = {}
    next_session = [1]

    def hello(m):
        name = "plain Python example" + (" (with mistake %s)" % MISTAKE if MISTAKE else "")
        # Its arithmetic rounds every operation: PyTorch's NO AVX ("default") profile.
        profiles = ["vectorized"] if broken("profiles-swapped") else ["default"]
        return {"protocol": "nadam-port/2", "name": name, "capabilities": {"dtypes": ["float32", "float64"], "paths": ["forloop", "foreach"], "profiles": profiles, "features": ["tensor-lr", "state-dict", "add-param-group"]}}

    def open_(m):
        sessions[next_session[0]] = NAdam(m["request"])
        next_session[0] += 1
        return {"session": next_session[0] - 1}

    def step(m):
        opt = sessions[m["session"]]
        opt.step(m["grads"])
        return opt.reply()

    def set_(m):
        sessions[m["session"]].groups[m["group"]][m["key"]] = m["value"]
        return {}

    def add_param_group(m):
        opt = sessions[m["session"]]
        first = len(opt.params)
        opt.params.extend(decode(p["value"]) for p in m["params"])
        opt.groups.append(opt.group(m["options"], range(first, first + len(m["params"]))))
        return {}

    def load(m):
        sessions[m["session"]].load_state_dict(m["state_dict"])
        return {}

    def close(m):
        sessions.pop(m["session"], None)
        return {}

    handlers = {"hello": hello, "open": open_, "step": step, "set": set_, "add_param_group": add_param_group, "state_dict": lambda m: {"state_dict": sessions[m["session"]].state_dict()}, "load_state_dict": load, "close": close, "bye": lambda m: {}}
    for line in sys.stdin:
        message = json.loads(line)
        try:
            handler = handlers.get(message["op"])
            if handler is None:
                raise ValueError("unknown op %s" % message["op"])
            reply = dict(handler(message), id=message["id"], ok=True)
        except Exception as error:  # reported to the suite, which shows it
            reply = {"id": message["id"], "ok": False, "error": {"type": type(error).__name__, "message": str(error)}}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
        if message["op"] == "bye":
            break


if __name__ == "__main__":
    main()
