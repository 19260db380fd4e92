// One NAdam step of the oracle: float32 params, the for-loop path, PyTorch's AVX2/AVX512 rounding.
import { NADAM_DEFAULTS, nadamStep } from "../spec/index.ts";

export function oneStep() {
  const param = { dtype: "float32" as const, data: [0.5, -1.25].map(Math.fround), grad: [0.1, -0.2].map(Math.fround) };
  const hyper = { ...NADAM_DEFAULTS, lr: 1e-3 };
  const { data, state } = nadamStep([param], [undefined], hyper, { path: "forloop", profile: "vectorized" });
  // data[0]: the param after the step; state[0]: { step, mu_product, exp_avg, exp_avg_sq },
  // to pass back in (in place of undefined) for the next step.
  return { data, state };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { data, state } = oneStep();
  console.log(`param ${data[0]!.join(", ")}; step ${state[0]!.step}, mu_product ${state[0]!.mu_product}`);
}
