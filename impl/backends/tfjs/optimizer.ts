/**
 * PyTorch's NAdam as a TensorFlow.js optimizer, the one `tf.train` lacks:
 * `nadam(...)` / `new NadamOptimizer(...)` work like `tf.train.adam(...)`
 * (`minimize`, `applyGradients`, `getWeights` / `setWeights`, serialization)
 * on tf.Variables, with torch.optim.NAdam's update bit for bit (the kernel and
 * its parity: kernel.ts, README "TensorFlow.js"), and PyTorch-shaped state
 * dicts in and out.
 *
 * A step reads nothing back from the tfjs backend (PyTorch's `capturable`):
 * the step's scalars come from host copies of each variable's `step` and
 * `mu_product` (spec/nadam/scalars.ts), and the moments and variables are
 * updated in place with `assign`.
 *
 * Import it as `nadam-reference/tfjs`; it needs @tensorflow/tfjs-core (and a
 * tfjs backend) installed beside nadam-reference.
 */
import * as tf from "@tensorflow/tfjs-core";
import { NADAM_DEFAULTS } from "../../../spec/nadam/defaults.ts";
import { stepScalars, type StepScalars } from "../../../spec/nadam/scalars.ts";
import type { NadamHyperParameters } from "../../../spec/nadam/step.ts";
import { CPU_ROUNDING_PROFILES, type CodePath, type RoundingProfile } from "../../../spec/nadam/types.ts";
import { chosenProfile } from "../../backend.ts";
import type { StateDict } from "../../../tensor/state-dict.ts";
import { Tensor } from "../../../tensor/tensor.ts";
import { nadamForeach, type Moments, type ParamStep } from "./kernel.ts";
import { defaultKernel, prepareUpdate, updateFor, type KernelChoice } from "./update.ts";

/** A named tensor, as tf.Optimizer's weights and gradient lists hold them. */
type NamedTensor = { name: string; tensor: tf.Tensor };

/** The options, under tfjs's naming (PyTorch's name in the comment). */
export interface NadamConfig {
  /** lr; default 2e-3 */
  readonly learningRate?: number;
  /** betas[0]; default 0.9 */
  readonly beta1?: number;
  /** betas[1]; default 0.999 */
  readonly beta2?: number;
  /** eps; default 1e-8 */
  readonly epsilon?: number;
  /** weight_decay; default 0 */
  readonly weightDecay?: number;
  /** momentum_decay; default 4e-3 */
  readonly momentumDecay?: number;
  /** decoupled_weight_decay (NAdamW); default false */
  readonly decoupledWeightDecay?: boolean;
  /** maximize; default false */
  readonly maximize?: boolean;
  /** foreach: PyTorch's multi-tensor path (default, as on a GPU), or false for the for-loop path */
  readonly foreach?: boolean;
  /**
   * Which PyTorch CPU rounding to reproduce: `default` (no fused multiply-add;
   * PyTorch on CUDA is closest to it) or `vectorized` (AVX2/AVX512 CPUs), which
   * needs the NadamFma32 kernel (cpu, wasm, webgpu). Default `default`.
   */
  readonly profile?: RoundingProfile;
  /**
   * The update's implementation: tfjs ops, or (webgpu) one fused WGSL shader
   * per result, after `await optimizer.ready()`. Same bits; default: fused
   * where there is one.
   */
  readonly kernel?: KernelChoice;
}

interface Slot {
  readonly name: string;
  /** `step` and `mu_product` (float32 0-d tensors in PyTorch, default dtype), kept on the host. */
  step: number;
  muProduct: number;
  readonly expAvg: tf.Variable;
  readonly expAvgSq: tf.Variable;
}

const SCALAR_DTYPE = "float32";

function errorIfNotFloat32(name: string, t: tf.Tensor): void {
  if (t.dtype !== "float32") throw new TypeError(`NAdam: ${name} is ${t.dtype}; tfjs NAdam steps float32 variables`);
}

export class NadamOptimizer extends tf.Optimizer {
  /** The name tf.serialization knows this class by. */
  static get className(): string {
    return "NadamOptimizer";
  }

  readonly learningRate: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly weightDecay: number;
  readonly momentumDecay: number;
  readonly decoupledWeightDecay: boolean;
  readonly maximize: boolean;
  readonly foreach: boolean;
  readonly profile: RoundingProfile;
  readonly kernel: KernelChoice | undefined;
  /** Per variable name, in the order the variables were first stepped (the state dict's param ids). */
  private readonly slots = new Map<string, Slot>();

  constructor(config: NadamConfig = {}) {
    super();
    this.learningRate = config.learningRate ?? NADAM_DEFAULTS.lr;
    this.beta1 = config.beta1 ?? NADAM_DEFAULTS.betas[0];
    this.beta2 = config.beta2 ?? NADAM_DEFAULTS.betas[1];
    this.epsilon = config.epsilon ?? NADAM_DEFAULTS.eps;
    this.weightDecay = config.weightDecay ?? NADAM_DEFAULTS.weight_decay;
    this.momentumDecay = config.momentumDecay ?? NADAM_DEFAULTS.momentum_decay;
    this.decoupledWeightDecay = config.decoupledWeightDecay ?? false;
    this.maximize = config.maximize ?? false;
    this.foreach = config.foreach ?? true;
    this.profile = chosenProfile("tfjs", CPU_ROUNDING_PROFILES, config.profile ?? "default");
    this.kernel = config.kernel;
    // PyTorch's constructor checks
    for (const [key, value] of [["learning rate", this.learningRate], ["epsilon value", this.epsilon], ["weight_decay value", this.weightDecay], ["momentum_decay value", this.momentumDecay]] as const) {
      if (!(value >= 0)) throw new RangeError(`Invalid ${key}: ${value}`);
    }
    for (const [i, beta] of [this.beta1, this.beta2].entries()) if (!(beta >= 0 && beta < 1)) throw new RangeError(`Invalid beta parameter at index ${i}: ${beta}`);
  }

  /** The group's options as the spec takes them. */
  private hyper(): NadamHyperParameters {
    return {
      lr: this.learningRate,
      lr_is_tensor: false,
      betas: [this.beta1, this.beta2],
      eps: this.epsilon,
      weight_decay: this.weightDecay,
      momentum_decay: this.momentumDecay,
      decoupled_weight_decay: this.decoupledWeightDecay,
      maximize: this.maximize,
    };
  }

  private path(): CodePath {
    return this.foreach ? "foreach" : "forloop";
  }

  private slotFor(name: string, value: tf.Variable): Slot {
    let slot = this.slots.get(name);
    if (slot === undefined) {
      const zeros = () => tf.tidy(() => tf.zerosLike(value).variable(false));
      slot = { name, step: 0, muProduct: 1, expAvg: zeros(), expAvgSq: zeros() };
      this.slots.set(name, slot);
    }
    return slot;
  }

  /** One optimizer.step() over the variables that have a gradient (a missing or null one skips its variable, as PyTorch skips a param whose grad is None). */
  override applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const pairs = Array.isArray(variableGradients) ? variableGradients.map((v) => [v.name, v.tensor] as const) : Object.entries(variableGradients);
    const work: { variable: tf.Variable; grad: tf.Tensor; slot: Slot }[] = [];
    for (const [name, grad] of pairs) {
      if (grad == null) continue;
      const variable = tf.engine().registeredVariables[name];
      if (variable === undefined) throw new Error(`NAdam: no variable named ${name}`);
      errorIfNotFloat32(name, variable);
      errorIfNotFloat32(`the gradient of ${name}`, grad);
      work.push({ variable, grad, slot: this.slotFor(name, variable) });
    }
    const backendName = tf.getBackend();
    const { update, flatten } = updateFor(tf, backendName, this.profile, this.kernel ?? defaultKernel(backendName));
    const hyper = this.hyper();
    const path = this.path();
    const scalars: StepScalars[] = work.map(({ slot }) => stepScalars(hyper, path, { step: slot.step, step_dtype: SCALAR_DTYPE, mu_product: slot.muProduct, mu_product_dtype: SCALAR_DTYPE }));
    tf.tidy(() => {
      const moments = (i: number): Moments => ({ param: work[i]!.variable, expAvg: work[i]!.slot.expAvg, expAvgSq: work[i]!.slot.expAvgSq });
      let outs: Moments[];
      if (path === "foreach") {
        const steps: ParamStep[] = work.map((w, i) => ({ ...moments(i), grad: w.grad, scalars: scalars[i]! }));
        outs = nadamForeach(tf, steps, hyper, update, flatten);
      } else {
        // the for-loop path runs param by param; a name given twice sees its first update
        outs = work.map((w, i) => {
          const out = update(moments(i), w.grad, hyper, scalars[i]!, path);
          assign(w, out);
          return out;
        });
      }
      if (path === "foreach") work.forEach((w, i) => assign(w, outs[i]!));
    });
    work.forEach(({ slot }, i) => {
      slot.step = scalars[i]!.step;
      slot.muProduct = scalars[i]!.muProduct;
    });
    this.incrementIterations();
  }

  /** Loads what the current tfjs backend's update needs: the fused multiply-add of the `vectorized` profile, webgpu's fused shader (once per backend). */
  async ready(): Promise<this> {
    const backendName = tf.getBackend();
    await prepareUpdate(tf, backendName, this.profile, this.kernel ?? defaultKernel(backendName));
    return this;
  }

  /** [iterations, then per variable: step, mu_product, exp_avg, exp_avg_sq], as tf.train's optimizers list their slots. */
  override async getWeights(): Promise<NamedTensor[]> {
    const weights: NamedTensor[] = [await this.saveIterations()];
    for (const slot of this.slots.values()) {
      weights.push(
        { name: `${slot.name}/step`, tensor: tf.scalar(slot.step, SCALAR_DTYPE) },
        { name: `${slot.name}/mu_product`, tensor: tf.scalar(slot.muProduct, SCALAR_DTYPE) },
        { name: `${slot.name}/exp_avg`, tensor: slot.expAvg },
        { name: `${slot.name}/exp_avg_sq`, tensor: slot.expAvgSq },
      );
    }
    return weights;
  }

  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    const rest = await this.extractIterations(weightValues);
    const byName = new Map(rest.map((w) => [w.name, w.tensor]));
    const names = [...new Set(rest.map((w) => w.name.replace(/\/(step|mu_product|exp_avg|exp_avg_sq)$/, "")))];
    for (const name of names) {
      const get = (key: string) => {
        const t = byName.get(`${name}/${key}`);
        if (t === undefined) throw new Error(`NAdam.setWeights: ${name}/${key} is missing`);
        return t;
      };
      const expAvg = get("exp_avg");
      const variable = tf.engine().registeredVariables[name] ?? (expAvg as tf.Variable);
      const slot = this.slotFor(name, variable);
      // reading the two scalars is a read-back, once per load, as PyTorch's load_state_dict reads a checkpoint
      slot.step = (await get("step").data())[0]!;
      slot.muProduct = (await get("mu_product").data())[0]!;
      slot.expAvg.assign(expAvg);
      slot.expAvgSq.assign(get("exp_avg_sq"));
    }
  }

  /**
   * The state as PyTorch's `optimizer.state_dict()`: `state` by param id (the
   * position of the variable in `variables`), one param group with PyTorch's
   * option keys. Reads the moments back (asynchronously).
   */
  async stateDict(variables: readonly tf.Variable[]): Promise<StateDict> {
    const state: StateDict["state"] = {};
    for (const [id, variable] of variables.entries()) {
      const slot = this.slots.get(variable.name);
      if (slot === undefined) continue;
      const host = async (t: tf.Tensor) => new Tensor("float32", t.shape, Float32Array.from((await t.data()) as Float32Array));
      state[id] = { step: Tensor.scalar(slot.step, SCALAR_DTYPE), mu_product: Tensor.scalar(slot.muProduct, SCALAR_DTYPE), exp_avg: await host(slot.expAvg), exp_avg_sq: await host(slot.expAvgSq) };
    }
    // the options in PyTorch's key order: the spec's view of them (a float lr), then the flags PyTorch adds
    const { lr_is_tensor: _floatLr, ...options } = this.hyper();
    const group = {
      ...options,
      betas: [...options.betas],
      foreach: this.foreach,
      capturable: false,
      differentiable: false,
      params: variables.map((_, i) => i),
    };
    return { state, param_groups: [group] };
  }

  /**
   * Loads a PyTorch-shaped state dict for `variables` (param id i is variables[i]):
   * the moments as float32, `step` and `mu_product` as load_state_dict casts
   * them (mu_product to the param's dtype, float32 here). The options stay this
   * optimizer's (tfjs optimizers are configured at construction).
   */
  loadStateDict(stateDict: StateDict, variables: readonly tf.Variable[]): void {
    for (const [key, entry] of Object.entries(stateDict.state)) {
      const variable = variables[Number(key)];
      if (variable === undefined) throw new RangeError(`NAdam.loadStateDict: state for param ${key}, but ${variables.length} variables were given`);
      const tensors = ["step", "mu_product", "exp_avg", "exp_avg_sq"].map((k) => {
        const t = entry[k];
        if (!(t instanceof Tensor)) throw new TypeError(`NAdam.loadStateDict: param ${key} has no tensor '${k}'`);
        return t;
      }) as [Tensor, Tensor, Tensor, Tensor];
      const [step, muProduct, expAvg, expAvgSq] = tensors;
      const slot = this.slotFor(variable.name, variable);
      slot.step = Math.fround(step.item());
      slot.muProduct = Math.fround(muProduct.item());
      for (const [target, source] of [
        [slot.expAvg, expAvg],
        [slot.expAvgSq, expAvgSq],
      ] as const) {
        tf.tidy(() => target.assign(tf.tensor(Float32Array.from(source.toArray()), [...variable.shape], "float32")));
      }
    }
  }

  override dispose(): void {
    super.dispose();
    for (const slot of this.slots.values()) tf.dispose([slot.expAvg, slot.expAvgSq]);
    this.slots.clear();
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      learningRate: this.learningRate,
      beta1: this.beta1,
      beta2: this.beta2,
      epsilon: this.epsilon,
      weightDecay: this.weightDecay,
      momentumDecay: this.momentumDecay,
      decoupledWeightDecay: this.decoupledWeightDecay,
      maximize: this.maximize,
      foreach: this.foreach,
      profile: this.profile,
      ...(this.kernel === undefined ? {} : { kernel: this.kernel }),
    };
  }

  static override fromConfig<T extends tf.serialization.Serializable>(cls: tf.serialization.SerializableConstructor<T>, config: tf.serialization.ConfigDict): T {
    return new cls(config as NadamConfig);
  }
}

/** Writes the step's results into the variables, in place (the moments and then the param, as PyTorch's in-place ops leave them). */
function assign(w: { variable: tf.Variable; slot: Slot }, out: Moments): void {
  w.slot.expAvg.assign(out.expAvg);
  w.slot.expAvgSq.assign(out.expAvgSq);
  w.variable.assign(out.param);
}

tf.serialization.registerClass(NadamOptimizer);

/** `tf.train.adam`'s counterpart: PyTorch's NAdam on tf.Variables. */
export function nadam(config: NadamConfig = {}): NadamOptimizer {
  return new NadamOptimizer(config);
}
