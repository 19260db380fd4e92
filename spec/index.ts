/** The oracle's public surface. */
export { nadamStep, initialState } from "./nadam/step.ts";
export type { NadamHyperParameters, NadamParamState, SpecParam, StepConfig, StepResult } from "./nadam/step.ts";
export { NADAM_DEFAULTS, withDefaults } from "./nadam/defaults.ts";
export { castStateOnLoad } from "./nadam/load-state.ts";
export { elementOps, inVectorBody, vectorBodyLength } from "./nadam/element-ops.ts";
export type { ElementOps } from "./nadam/element-ops.ts";
export { biasCorrection2, decoupledDecayFactor, mu, muNext, stepScalars, stepSizes, tensorLrStepSizes } from "./nadam/scalars.ts";
export type { ScalarState, StepScalars } from "./nadam/scalars.ts";
export { CODE_PATHS, CPU_ROUNDING_PROFILES, FEATURES, FORMULA_QUIRKS, QUIRKS, ROUNDING_PROFILES } from "./nadam/types.ts";
export type { CodePath, Feature, Formula, Quirk, RoundingProfile } from "./nadam/types.ts";
export { DTYPE, DTYPES, isDType } from "./float/dtype.ts";
export type { DType, DTypeTraits } from "./float/dtype.ts";
export { glibcPow, glibcPowNoFma } from "./float/pow.ts";
export { fma32, fma64, fmaExact } from "./float/fma.ts";
export { FORMATS, roundToFormat } from "./float/format.ts";
export type { FloatFormat, FloatFormatName } from "./float/format.ts";
export { decodeHex, encodeHex, elementBits, elementFromBits } from "./float/codec.ts";
export { f32Hex, f64Hex } from "./float/bits.ts";
