// Fit y = 2x - 1 with a weight and a bias, a hand-written loss and gradient, and NAdam.
import { NAdam, Tensor } from "../impl/index.ts";

export function train(steps = 300): { losses: number[]; weight: number; bias: number } {
  const xs = [-1, -0.5, 0, 0.5, 1, 1.5];
  const ys = xs.map((x) => 2 * x - 1);
  const weight = Tensor.scalar(0); // 0-d float32 tensors
  const bias = Tensor.scalar(0);
  const optimizer = new NAdam([["weight", weight], ["bias", bias]], { lr: 0.05 });

  // loss = mean((w·x + b - y)²); its gradient is written out by hand.
  const closure = (): number => {
    optimizer.zeroGrad();
    const [w, b] = [weight.item(), bias.item()];
    const errors = xs.map((x, i) => w * x + b - ys[i]!);
    weight.grad = Tensor.scalar((2 / xs.length) * errors.reduce((s, e, i) => s + e * xs[i]!, 0));
    bias.grad = Tensor.scalar((2 / xs.length) * errors.reduce((s, e) => s + e, 0));
    return errors.reduce((s, e) => s + e * e, 0) / xs.length;
  };

  const losses: number[] = [];
  for (let step = 0; step < steps; step++) losses.push(optimizer.step(closure) as number);
  return { losses, weight: weight.item(), bias: bias.item() };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { losses, weight, bias } = train();
  console.log(`loss ${losses[0]!.toFixed(4)} -> ${losses.at(-1)!.toFixed(6)}; weight ${weight.toFixed(4)}, bias ${bias.toFixed(4)}`);
}
