import { NAdam, Tensor, type StateDict } from "nadam-reference";
import { stateDictToJson } from "nadam-reference/checkpoint";

const w: Tensor = Tensor.from([1, -2, 3, -4], "float32", [2, 2]);
const optimizer = new NAdam([["w", w]], { lr: 0.01, decoupled_weight_decay: true, weight_decay: 0.1 });
for (let step = 0; step < 10; step++) {
  w.grad = Tensor.from(w.toArray().map(Math.sign), "float32", [2, 2]);
  optimizer.step();
}
const saved: StateDict = optimizer.stateDict();
console.log(saved.param_groups[0]!.param_names, stateDictToJson(saved).state[0]!["step"]); // [ 'w' ] { dtype: 'float32', shape: [], data: 'AAAgQQ==' }
