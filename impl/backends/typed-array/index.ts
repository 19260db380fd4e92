/** The typed-array backend's registry entry: plain JavaScript, runs wherever Node does. */
import type { BackendEntry } from "../../backend.ts";
import { TYPED_ARRAY_SUPPORT, typedArrayBackend } from "./backend.ts";

export { typedArrayBackend, type TypedArrayBackendOptions } from "./backend.ts";

export const typedArray: BackendEntry = {
  id: "typed-array",
  description: "NAdam on JavaScript typed arrays, bit-exact to PyTorch's CPU kernels under either rounding profile",
  supports: TYPED_ARRAY_SUPPORT,
  availability: async () => ({ available: true }),
  create: async ({ profile }) => typedArrayBackend({ profile }),
};
