/**
 * The Python exception types PyTorch raises, so that a caller (and a test that
 * mirrors PyTorch's own) can tell them apart by `name` and read the same message.
 */
export class ValueError extends Error {
  override readonly name = "ValueError";
}
export class PyTypeError extends Error {
  override readonly name = "TypeError";
}
export class KeyError extends Error {
  override readonly name = "KeyError";
}
export class IndexError extends Error {
  override readonly name = "IndexError";
}
export class RuntimeError extends Error {
  override readonly name = "RuntimeError";
}
export class AssertionError extends Error {
  override readonly name = "AssertionError";
}
