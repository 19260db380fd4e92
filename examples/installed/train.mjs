import { NAdam, Tensor } from "nadam-reference";

// Fit y = 3x + 1: two 0-d float32 params, the gradient of the mean squared error by hand.
const xs = [0, 1, 2, 3];
const w = Tensor.scalar(0), b = Tensor.scalar(0);
const optimizer = new NAdam([w, b], { lr: 0.1 });
for (let step = 0; step < 500; step++) {
  const errors = xs.map((x) => w.item() * x + b.item() - (3 * x + 1));
  w.grad = Tensor.scalar(errors.reduce((sum, e, i) => sum + 2 * e * xs[i], 0) / xs.length);
  b.grad = Tensor.scalar(errors.reduce((sum, e) => sum + 2 * e, 0) / xs.length);
  optimizer.step();
}
console.log(w.item().toFixed(3), b.item().toFixed(3)); // 3.000 1.000
