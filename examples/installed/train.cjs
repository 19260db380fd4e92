const { NAdam, Tensor } = require("nadam-reference");

const w = Tensor.from([0.5, -1.5, 2], "float64");
const optimizer = new NAdam([w], { lr: 0.05, weight_decay: 0.01, foreach: true });
for (let step = 0; step < 200; step++) {
  w.grad = Tensor.from(w.toArray().map((x) => 2 * x), "float64"); // d/dw of |w|²
  optimizer.step();
}
console.log(w.toArray().every((x) => Math.abs(x) < 0.05)); // true
