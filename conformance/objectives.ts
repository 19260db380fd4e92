/**
 * Analytic objectives for closed-loop cases: the suite computes each gradient
 * in float64 from the port's current params (then rounds it to the dtype), so
 * a port's errors feed back into its next steps, as in training.
 */
export interface Objective {
  readonly name: string;
  readonly description: string;
  readonly params: readonly { readonly name: string; readonly shape: readonly number[]; readonly init: readonly number[] }[];
  /** NAdam options of the single param group. */
  readonly options: Readonly<Record<string, number | boolean | number[]>>;
  /** Gradients of the loss at these param values (one array per param). */
  grad(values: readonly (readonly number[])[]): number[][];
}

// A small fixed data set for the logistic regression: 8 points in 3 features.
const X = [
  [0.5, -1.2, 0.3], [1.5, 0.2, -0.7], [-0.3, 0.8, 1.1], [2.0, -0.5, 0.4],
  [-1.1, -0.9, 0.2], [0.7, 1.4, -1.3], [-0.6, 0.1, 0.9], [1.2, -1.6, -0.2],
];
const Y = [1, 1, 0, 1, 0, 0, 0, 1];

export const OBJECTIVES: readonly Objective[] = [
  {
    name: "quadratic",
    description: "an ill-conditioned quadratic ½ Σ a_i (θ_i - c_i)²",
    params: [{ name: "theta", shape: [6], init: [1, -2, 0.5, 3, -0.25, 0] }],
    options: { lr: 0.05, weight_decay: 0.01 },
    grad: ([theta]) => [theta!.map((t, i) => [100, 10, 1, 0.1, 5, 0.5][i]! * (t - [0.3, -0.1, 2, 1, -1, 0.7][i]!))],
  },
  {
    name: "rosenbrock",
    description: "the Rosenbrock function (1 - x)² + 100 (y - x²)², from (-1.2, 1)",
    params: [{ name: "xy", shape: [2], init: [-1.2, 1] }],
    options: { lr: 0.01, betas: [0.9, 0.99] },
    grad: ([xy]) => {
      const [x, y] = [xy![0]!, xy![1]!];
      return [[-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)]];
    },
  },
  {
    name: "logistic-regression",
    description: "logistic regression on 8 points (weights and bias, mean log loss), decoupled weight decay",
    params: [
      { name: "weight", shape: [3], init: [0.1, -0.2, 0.05] },
      { name: "bias", shape: [], init: [0] },
    ],
    options: { lr: 0.1, weight_decay: 0.01, decoupled_weight_decay: true },
    grad: ([w, bias]) => {
      const b = bias![0]!;
      const gw = [0, 0, 0];
      let gb = 0;
      X.forEach((x, n) => {
        const z = x.reduce((s, xi, i) => s + xi * w![i]!, b);
        const err = 1 / (1 + Math.exp(-z)) - Y[n]!;
        x.forEach((xi, i) => (gw[i]! += (err * xi) / X.length));
        gb += err / X.length;
      });
      return [gw, [gb]];
    },
  },
];
