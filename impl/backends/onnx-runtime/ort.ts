/**
 * onnxruntime-node, loaded only when an ONNX Runtime backend is used: it is an
 * optional peer dependency (~290 MB installed), so this package installs and
 * runs without it. The structural types below are the part of its API used
 * here; they keep onnxruntime-node's own types out of this package's
 * declarations, so `tsc` works for users who have not installed it.
 */

export type OrtElementType = "float32" | "float64" | "float16" | "bool" | "int64";
export type OrtLocation = "cpu" | "gpu-buffer";

export interface OrtTensor {
  readonly type: string;
  readonly dims: readonly number[];
  readonly location: string;
  /** Host data (location "cpu" only). */
  readonly data: unknown;
  /** Downloads device data; host data as it is. */
  getData(releaseData?: boolean): Promise<unknown>;
  dispose(): void;
}

export interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensor>, fetches?: Record<string, OrtTensor | null> | readonly string[]): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}

export interface OrtSessionOptions {
  readonly executionProviders: readonly string[];
  readonly graphOptimizationLevel?: "disabled" | "basic" | "extended" | "all";
  readonly preferredOutputLocation?: OrtLocation | Readonly<Record<string, OrtLocation>>;
  readonly logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  readonly extra?: Record<string, unknown>;
}

export interface OrtModule {
  readonly InferenceSession: { create(model: Uint8Array, options: OrtSessionOptions): Promise<OrtSession> };
  readonly Tensor: new (type: OrtElementType, data: Float32Array | Float64Array | Uint16Array | Uint8Array | BigInt64Array, dims: readonly number[]) => OrtTensor;
  readonly env: { readonly versions?: { readonly common?: string } };
  listSupportedBackends?(): readonly { readonly name: string; readonly bundled: boolean }[];
}

/** The execution providers these backends run on. */
export type ExecutionProvider = "cpu" | "webgpu" | "cuda";

let loading: Promise<OrtModule | Error> | undefined;

/** onnxruntime-node, or the reason it cannot be loaded. */
export function loadOrt(): Promise<OrtModule | Error> {
  loading ??= import("onnxruntime-node" as string).then(
    (m: { default?: OrtModule } & OrtModule) => (m.InferenceSession ? m : m.default!),
    (e: unknown) =>
      new Error(
        `onnxruntime-node is not installed or does not load (${e instanceof Error ? e.message.split("\n")[0] : String(e)}); ` +
          "install it with `npm install onnxruntime-node` (with onnxruntime-node-install=skip in .npmrc unless you want its CUDA download)",
      ),
  );
  return loading;
}

/** onnxruntime-node, or throw why not. */
export async function requireOrt(): Promise<OrtModule> {
  const ort = await loadOrt();
  if (ort instanceof Error) throw ort;
  return ort;
}
