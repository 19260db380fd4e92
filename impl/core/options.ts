/**
 * torch.optim.NAdam's options: their names (as in state_dict param_groups),
 * defaults in PyTorch's key order, and the constructor's validation with
 * PyTorch's messages (torch 2.6, torch/optim/nadam.py).
 */
import { NADAM_DEFAULTS } from "../../spec/nadam/defaults.ts";
import { Tensor } from "../../tensor/tensor.ts";
import { IndexError, ValueError } from "./errors.ts";
import { pyStr } from "./python.ts";

/** A learning rate: a number, or a one-element tensor (PyTorch's Tensor lr). */
export type LearningRate = number | Tensor;

export interface NadamOptions {
  lr: LearningRate;
  betas: readonly number[];
  eps: number;
  weight_decay: number;
  momentum_decay: number;
  decoupled_weight_decay: boolean;
  maximize: boolean;
  /** null: chosen per step as PyTorch does (single-tensor on CPU). */
  foreach: boolean | null;
  capturable: boolean;
  differentiable: boolean;
}

/** NAdam(params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3, decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False, differentiable=False) */
export function defaultOptions(): NadamOptions {
  // Key order is PyTorch's `defaults` order; param groups inherit it. The values are torch's.
  const d = NADAM_DEFAULTS;
  return {
    lr: d.lr,
    betas: [...d.betas],
    eps: d.eps,
    weight_decay: d.weight_decay,
    momentum_decay: d.momentum_decay,
    decoupled_weight_decay: d.decoupled_weight_decay,
    maximize: d.maximize,
    foreach: null,
    capturable: false,
    differentiable: false,
  };
}

export const OPTION_KEYS = Object.keys(defaultOptions()) as (keyof NadamOptions)[];

/** Python's `not 0.0 <= x`: true for negatives and NaN. */
function notNonNegative(x: number): boolean {
  return !(0 <= x);
}

/** The constructor's checks, in PyTorch's order; the first failure wins. */
export function validateOptions(options: NadamOptions): void {
  const { lr, betas, eps, weight_decay, momentum_decay } = options;
  if (lr instanceof Tensor && lr.numel !== 1) throw new ValueError("Tensor lr must be 1-element");
  const lrValue = lr instanceof Tensor ? lr.item() : lr;
  if (notNonNegative(lrValue)) throw new ValueError(`Invalid learning rate: ${pyStr(lr)}`);
  if (notNonNegative(eps)) throw new ValueError(`Invalid epsilon value: ${pyStr(eps)}`);
  if (betas.length < 1) throw new IndexError("tuple index out of range");
  if (!(0 <= betas[0]! && betas[0]! < 1)) throw new ValueError(`Invalid beta parameter at index 0: ${pyStr(betas[0])}`);
  if (betas.length < 2) throw new IndexError("tuple index out of range");
  if (!(0 <= betas[1]! && betas[1]! < 1)) throw new ValueError(`Invalid beta parameter at index 1: ${pyStr(betas[1])}`);
  if (notNonNegative(weight_decay)) throw new ValueError(`Invalid weight_decay value: ${pyStr(weight_decay)}`);
  if (notNonNegative(momentum_decay)) throw new ValueError(`Invalid momentum_decay value: ${pyStr(momentum_decay)}`);
}
