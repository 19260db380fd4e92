// PyTorch's NAdam in TensorFlow.js: fit y = 2x - 1 with plain variables, then with a tf.layers model.
import * as tf from "@tensorflow/tfjs"; // tfjs-core, its gradients, tf.layers and the cpu backend
import { nadam } from "../impl/backends/tfjs/optimizer.ts";

const xs = tf.tensor2d([-1, -0.5, 0, 0.5, 1, 1.5], [6, 1]);
const ys = tf.tensor2d([-3, -2, -1, 0, 1, 2], [6, 1]);

export async function trainVariables(steps = 300): Promise<{ loss: number; weight: number; bias: number }> {
  const weight = tf.variable(tf.zeros([1, 1]));
  const bias = tf.variable(tf.zeros([1]));
  const optimizer = nadam({ learningRate: 0.05 }); // torch.optim.NAdam(params, lr=0.05), foreach path
  const loss = () => tf.losses.meanSquaredError(ys, tf.add(tf.matMul(xs, weight), bias)) as tf.Scalar;
  for (let step = 0; step < steps; step++) optimizer.minimize(loss);
  const final = loss();
  const result = { loss: (await final.data())[0]!, weight: (await weight.data())[0]!, bias: (await bias.data())[0]! };
  tf.dispose([final, weight, bias]);
  optimizer.dispose();
  return result;
}

export async function trainLayers(epochs = 300): Promise<{ loss: number; prediction: number }> {
  // zeros, as above: the same start every run (an unseeded random kernel ended 1 run in 10 above 1e-8 after 300 epochs)
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1], kernelInitializer: "zeros" })] });
  model.compile({ optimizer: nadam({ learningRate: 0.05 }), loss: "meanSquaredError" });
  const history = await model.fit(xs, ys, { epochs, batchSize: 6, verbose: 0 });
  const prediction = model.predict(tf.tensor2d([3], [1, 1])) as tf.Tensor;
  return { loss: history.history.loss!.at(-1) as number, prediction: (await prediction.data())[0]! };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const v = await trainVariables();
  const l = await trainLayers();
  console.log(`variables: loss ${v.loss.toExponential(1)}, weight ${v.weight.toFixed(3)}, bias ${v.bias.toFixed(3)}; tf.layers: loss ${l.loss.toExponential(1)}, f(3) = ${l.prediction.toFixed(3)}`);
}
