/** How Python prints the values that appear in PyTorch's error messages. */
import { DTYPE } from "../../spec/float/dtype.ts";
import { Tensor } from "../../tensor/tensor.ts";

/** repr() of a Python float: shortest round-trip digits, exponent outside [1e-4, 1e16). */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (x === Infinity) return "inf";
  if (x === -Infinity) return "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const [digits = "", expText = "0"] = x.toExponential().split("e"); // shortest digits, e.g. "-1.5e-8"
  const exponent = Number(expText);
  if (exponent < -4 || exponent >= 16) {
    return `${digits}e${exponent < 0 ? "-" : "+"}${String(Math.abs(exponent)).padStart(2, "0")}`;
  }
  const fixed = x.toFixed(Math.max(0, (digits.replace(/^-/, "").replace(".", "").length - 1) - exponent));
  return fixed.includes(".") ? fixed : `${fixed}.0`;
}

/** f"{value}" of a hyper-parameter: floats as repr, 0-d tensors as their Python float. */
export function pyStr(value: unknown): string {
  if (typeof value === "number") return pyFloatRepr(value);
  if (typeof value === "boolean") return value ? "True" : "False";
  if (value === null || value === undefined) return "None";
  if (value instanceof Tensor) {
    if (value.shape.length === 0) return pyFloatRepr(value.item());
    return `tensor([${value.toArray().map(pyFloatRepr).join(", ")}])`;
  }
  if (Array.isArray(value)) return `(${value.map(pyStr).join(", ")})`;
  return String(value);
}

/** torch.typename(x) for the values a user may pass where a Tensor belongs. */
export function pyTypeName(value: unknown): string {
  if (value instanceof Tensor) return DTYPE[value.dtype].torchTensorType;
  if (Array.isArray(value)) return "list";
  if (value === null || value === undefined) return "NoneType";
  if (typeof value === "number") return Number.isInteger(value) ? "int" : "float";
  if (typeof value === "string") return "str";
  if (typeof value === "boolean") return "bool";
  if (value instanceof Set) return "set";
  return "dict";
}
