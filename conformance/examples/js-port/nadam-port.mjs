#!/usr/bin/env node
// An example NAdam port in plain JavaScript (no dependencies), speaking the
// suite's subprocess protocol as first published, nadam-port/1, which the suite
// still accepts (conformance/protocol.schema.json and conformance/INTERPRETING.md):
//   nadam-reference check --port "node conformance/examples/js-port/nadam-port.mjs"
// float32 and float64, both code paths, a tensor lr, state dicts and added
// groups. Its arithmetic is PyTorch's non-vectorized CPU profile, except that
// it uses Math.pow, which is not glibc's pow: it passes the default policy, not
// `exact`. `--mistake NAME` turns on one known porting mistake (for the suite's
// own tests of its diagnosis).
import { createInterface } from "node:readline";

const mistakeIndex = process.argv.indexOf("--mistake");
const MISTAKE = mistakeIndex >= 0 ? process.argv[mistakeIndex + 1] : null;
const broken = (name) => MISTAKE === name;

const f32 = Math.fround;
const id64 = (x) => x;
const roundTo = (dtype) => (dtype === "float32" ? f32 : id64);

function decode(t) {
  const bytes = Buffer.from(t.data, "base64");
  const size = t.dtype === "float64" ? 8 : 4;
  const values = [];
  for (let i = 0; i < bytes.length; i += size) values.push(size === 8 ? bytes.readDoubleLE(i) : bytes.readFloatLE(i));
  return { dtype: t.dtype, shape: t.shape, values };
}

function encode(dtype, shape, values) {
  const size = dtype === "float64" ? 8 : 4;
  const bytes = Buffer.alloc(values.length * size);
  values.forEach((x, i) => (size === 8 ? bytes.writeDoubleLE(x, i * size) : bytes.writeFloatLE(x, i * size)));
  return { dtype, shape, data: bytes.toString("base64") };
}

const DEFAULTS = { lr: 2e-3, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0, momentum_decay: 4e-3, decoupled_weight_decay: false, maximize: false, foreach: null, capturable: false, differentiable: false };

class NAdam {
  constructor(request) {
    this.params = request.params.map((p) => decode(p.value));
    this.foreach = request.foreach;
    this.scalarDtype = request.default_dtype;
    this.groups = request.param_groups.map((g) => this.group(g.options, g.params));
    this.state = new Map(); // param id -> { step, stepDtype, muProduct, muProductDtype, expAvg, expAvgSq }
  }

  group(options, ids) {
    const g = { ...DEFAULTS, ...options, params: [...ids] };
    if (typeof g.lr === "object" && g.lr !== null) g.lr = { tensor: decode(g.lr).values[0] }; // a 0-d float32 tensor lr
    return g;
  }

  step(grads) {
    for (const g of this.groups) {
      for (const id of g.params) if (grads[id]) this.update(id, decode(grads[id]).values, g);
    }
  }

  // One param, PyTorch's _single_tensor_nadam / _multi_tensor_nadam arithmetic, non-vectorized profile.
  update(id, gradValues, g) {
    const p = this.params[id];
    const r = roundTo(p.dtype);
    let s = this.state.get(id);
    if (!s) {
      s = { step: 0, stepDtype: this.scalarDtype, muProduct: 1, muProductDtype: broken("mu-product-in-float64") ? "float64" : this.scalarDtype, expAvg: p.values.map(() => 0), expAvgSq: p.values.map(() => 0) };
      this.state.set(id, s);
    }
    const [beta1, beta2] = g.betas;
    const tensorLr = typeof g.lr === "object";
    const lr = tensorLr ? g.lr.tensor : g.lr;
    const maximize = broken("maximize-sign") ? !g.maximize : g.maximize;
    const decoupled = broken("weight-decay-mode-swapped") ? !g.decoupled_weight_decay : g.decoupled_weight_decay;
    const foreach = broken("paths-swapped") ? !this.foreach : this.foreach;
    const rs = roundTo(s.stepDtype);
    const rmp = roundTo(s.muProductDtype);

    s.step = rs(s.step + 1);
    const t = broken("step-counted-from-zero") ? s.step - 1 : s.step;
    const bc2 = 1 - beta2 ** (broken("bias-correction-off-by-one") ? t + 1 : t);
    const mu = beta1 * (1 - 0.5 * 0.96 ** (t * g.momentum_decay));
    const muNext = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * g.momentum_decay));
    s.muProduct = rmp(s.muProduct * rmp(mu));
    const muProductNext = broken("old-mu-product-next") ? f32(f32(s.muProduct * f32(mu)) * f32(muNext)) : s.muProduct * muNext;
    let s1 = (-lr * (1 - mu)) / (1 - s.muProduct);
    let s2 = (-lr * muNext) / (1 - muProductNext);
    if (tensorLr && !foreach) {
      s1 = f32(f32(-lr * f32(1 - mu)) / f32(1 - s.muProduct));
      s2 = f32(f32(-lr * f32(muNext)) / f32(1 - muProductNext));
    }
    const decay = tensorLr ? f32(1 - f32(lr * f32(g.weight_decay))) : 1 - lr * g.weight_decay;
    const w = r(1 - beta1);

    p.values = p.values.map((x, i) => {
      let grad = maximize ? -gradValues[i] : gradValues[i];
      if (g.weight_decay !== 0) {
        if (decoupled) x = r(x * r(decay));
        else grad = r(grad + r(r(g.weight_decay) * x));
      }
      let m = s.expAvg[i];
      const d = r(grad - m);
      if (broken("exp-avg-mul-add-instead-of-lerp")) m = r(r(m * r(beta1)) + r(r(1 - beta1) * grad));
      else m = Math.abs(w) < 0.5 ? r(m + r(w * d)) : r(grad - r(d * r(1 - w)));
      let v = r(s.expAvgSq[i] * r(beta2));
      v = r(v + r(r(r(1 - beta2) * grad) * grad));
      let den;
      if (broken("eps-inside-sqrt")) den = r(Math.sqrt(r(r(v / r(bc2)) + r(g.eps))));
      else den = r((foreach ? r(r(Math.sqrt(v)) / r(bc2 ** 0.5)) : r(Math.sqrt(r(v / r(bc2))))) + r(g.eps));
      if (broken("keras-optax-formula")) {
        const mHat = (beta1 * m) / (1 - beta1 ** (t + 1)) + ((1 - beta1) * grad) / (1 - beta1 ** t);
        x = r(x - r((lr * mHat) / den));
      } else {
        x = r(x + r(r(r(s1) * grad) / den));
        x = r(x + r(r(r(s2) * m) / den));
      }
      s.expAvg[i] = m;
      s.expAvgSq[i] = v;
      return x;
    });
  }

  reply() {
    return {
      params: this.params.map((p) => encode(p.dtype, p.shape, p.values)),
      state: this.params.map((p, id) => {
        const s = this.state.get(id);
        if (!s) return null;
        return { step: encode(s.stepDtype, [], [s.step]), mu_product: encode(s.muProductDtype, [], [s.muProduct]), exp_avg: encode(p.dtype, p.shape, s.expAvg), exp_avg_sq: encode(p.dtype, p.shape, s.expAvgSq) };
      }),
    };
  }

  stateDict() {
    const state = {};
    for (const [id, s] of [...this.state].sort((a, b) => a[0] - b[0])) state[id] = this.reply().state[id];
    const param_groups = this.groups.map(({ params, lr, ...rest }) => ({ ...rest, lr: typeof lr === "object" ? encode("float32", [], [lr.tensor]) : lr, params }));
    return { state, param_groups };
  }

  // load_state_dict: hyper-parameters from the saved groups; mu_product takes the param's dtype.
  loadStateDict(sd) {
    this.groups = sd.param_groups.map((g) => this.group(g, g.params));
    this.state = new Map(
      Object.entries(sd.state).map(([id, s]) => {
        const p = this.params[Number(id)];
        const step = decode(s.step);
        return [Number(id), { step: step.values[0], stepDtype: step.dtype, muProduct: roundTo(p.dtype)(decode(s.mu_product).values[0]), muProductDtype: p.dtype, expAvg: decode(s.exp_avg).values, expAvgSq: decode(s.exp_avg_sq).values }];
      }),
    );
  }
}

const sessions = new Map();
let nextSession = 1;
const handlers = {
  // Its arithmetic rounds every operation: PyTorch's NO AVX ("default") profile.
  hello: () => ({ protocol: "nadam-port/1", name: `plain JavaScript example${MISTAKE ? ` (with mistake ${MISTAKE})` : ""}`, capabilities: { dtypes: ["float32", "float64"], paths: ["forloop", "foreach"], profiles: broken("profiles-swapped") ? ["vectorized"] : ["default"], features: ["tensor-lr", "state-dict", "add-param-group"] } }),
  open: (m) => {
    sessions.set(nextSession, new NAdam(m.request));
    return { session: nextSession++ };
  },
  step: (m) => {
    const opt = sessions.get(m.session);
    opt.step(m.grads);
    return opt.reply();
  },
  set: (m) => {
    sessions.get(m.session).groups[m.group][m.key] = m.value;
    return {};
  },
  add_param_group: (m) => {
    const opt = sessions.get(m.session);
    const first = opt.params.length;
    opt.params.push(...m.params.map((p) => decode(p.value)));
    opt.groups.push(opt.group(m.options, m.params.map((_, i) => first + i)));
    return {};
  },
  state_dict: (m) => ({ state_dict: sessions.get(m.session).stateDict() }),
  load_state_dict: (m) => {
    sessions.get(m.session).loadStateDict(m.state_dict);
    return {};
  },
  close: (m) => {
    sessions.delete(m.session);
    return {};
  },
  bye: () => {
    setImmediate(() => process.exit(0));
    return {};
  },
};

createInterface({ input: process.stdin }).on("line", (line) => {
  const message = JSON.parse(line);
  let reply;
  try {
    const handler = handlers[message.op];
    if (!handler) throw Object.assign(new Error(`unknown op ${message.op}`), { name: "ValueError" });
    reply = { id: message.id, ok: true, ...handler(message) };
  } catch (error) {
    reply = { id: message.id, ok: false, error: { type: error.name, message: error.message } };
  }
  process.stdout.write(JSON.stringify(reply) + "\n");
});
