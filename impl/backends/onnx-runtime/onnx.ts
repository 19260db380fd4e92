/**
 * ONNX models as bytes, written here so that no Python or protobuf package is
 * needed at run time: a graph (inputs, nodes, outputs) encoded as the
 * protobuf messages of onnx/onnx.proto (ModelProto, GraphProto, NodeProto,
 * ValueInfoProto, TypeProto, TensorShapeProto, AttributeProto,
 * OperatorSetIdProto), with only the fields these graphs use.
 */

/** ONNX's IR version and the default-domain opset the graphs are written for (IR 8 ↔ opset 17, ONNX 1.12+). */
export const ONNX_IR_VERSION = 8;
export const ONNX_OPSET = 17;

/** TensorProto.DataType codes of the element types used here. */
export const ONNX_ELEMENT_TYPE = { float32: 1, int64: 7, bool: 9, float16: 10, float64: 11, bfloat16: 16 } as const;
export type OnnxElementType = keyof typeof ONNX_ELEMENT_TYPE;

/** A graph input or output: a name, an element type and a shape (a string is a symbolic dimension). */
export interface ValueInfo {
  readonly name: string;
  readonly type: OnnxElementType;
  readonly shape: readonly (number | string)[];
}

export interface OnnxNode {
  readonly op: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  /** Integer attributes only (Cast's `to`): all these graphs need. */
  readonly attributes?: Readonly<Record<string, number>>;
}

/** A 0-d constant of the graph (GraphProto.initializer). */
export interface ScalarConstant {
  readonly name: string;
  readonly type: "float32" | "float64";
  readonly value: number;
}

export interface OnnxGraph {
  readonly name: string;
  readonly inputs: readonly ValueInfo[];
  readonly constants?: readonly ScalarConstant[];
  readonly outputs: readonly ValueInfo[];
  readonly nodes: readonly OnnxNode[];
  /** A free-text description stored in the graph (doc_string). */
  readonly doc?: string;
}

/** A growable protobuf message writer (wire types 0: varint, 2: length-delimited). */
class Writer {
  private bytes: number[] = [];

  varint(value: number | bigint): this {
    let v = BigInt.asUintN(64, BigInt(value));
    do {
      const byte = Number(v & 0x7fn);
      v >>= 7n;
      this.bytes.push(v === 0n ? byte : byte | 0x80);
    } while (v !== 0n);
    return this;
  }

  /** field number `field`, wire type 0 */
  int(field: number, value: number): this {
    return this.varint((field << 3) | 0).varint(value);
  }

  /** field number `field`, wire type 2 */
  bytesField(field: number, payload: Uint8Array | readonly number[]): this {
    this.varint((field << 3) | 2).varint(payload.length);
    for (const b of payload) this.bytes.push(b);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytesField(field, new TextEncoder().encode(value));
  }

  message(field: number, build: (w: Writer) => void): this {
    const inner = new Writer();
    build(inner);
    return this.bytesField(field, inner.bytes);
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

function valueInfo(w: Writer, v: ValueInfo): void {
  w.string(1, v.name); // ValueInfoProto.name
  w.message(2, (type) => // ValueInfoProto.type: TypeProto
    type.message(1, (tensor) => { // TypeProto.tensor_type
      tensor.int(1, ONNX_ELEMENT_TYPE[v.type]); // elem_type
      tensor.message(2, (shape) => { // TensorShapeProto
        for (const d of v.shape) shape.message(1, (dim) => (typeof d === "number" ? dim.int(1, d) : dim.string(2, d)));
      });
    }),
  );
}

/** A typed array's bytes in little-endian order, as raw_data requires. */
function littleEndian(values: Float32Array | Float64Array): Uint8Array {
  const bytes = new Uint8Array(values.buffer.slice(0));
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] === 0) {
    for (let i = 0; i < bytes.length; i += values.BYTES_PER_ELEMENT) bytes.subarray(i, i + values.BYTES_PER_ELEMENT).reverse();
  }
  return bytes;
}

/** The ModelProto bytes of a graph: loadable by any ONNX runtime that implements opset ONNX_OPSET. */
export function encodeModel(graph: OnnxGraph, producer: { readonly name: string; readonly version: string }): Uint8Array {
  const names = new Set<string>();
  for (const v of [...graph.inputs, ...(graph.constants ?? [])]) names.add(v.name);
  for (const node of graph.nodes) {
    for (const input of node.inputs) if (input !== "" && !names.has(input)) throw new Error(`ONNX graph ${graph.name}: node ${node.op} reads ${input} before it is defined`);
    for (const output of node.outputs) {
      if (names.has(output)) throw new Error(`ONNX graph ${graph.name}: ${output} is defined twice`);
      names.add(output);
    }
  }
  for (const v of graph.outputs) if (!names.has(v.name)) throw new Error(`ONNX graph ${graph.name}: output ${v.name} is never computed`);

  const model = new Writer();
  model.int(1, ONNX_IR_VERSION); // ModelProto.ir_version
  model.string(2, producer.name); // producer_name
  model.string(3, producer.version); // producer_version
  model.message(7, (g) => { // ModelProto.graph
    graph.nodes.forEach((node, i) =>
      g.message(1, (n) => { // GraphProto.node
        for (const input of node.inputs) n.string(1, input);
        for (const output of node.outputs) n.string(2, output);
        n.string(3, `n${i}_${node.op}`);
        n.string(4, node.op);
        for (const [name, value] of Object.entries(node.attributes ?? {})) {
          n.message(5, (a) => a.string(1, name).int(3, value).int(20, 2)); // AttributeProto: name, i, type INT
        }
      }),
    );
    g.string(2, graph.name);
    for (const c of graph.constants ?? []) {
      g.message(5, (tensor) => { // GraphProto.initializer: TensorProto, 0-d (no dims)
        tensor.int(2, ONNX_ELEMENT_TYPE[c.type]); // data_type
        tensor.string(8, c.name); // name
        const raw = c.type === "float64" ? new Float64Array([c.value]) : new Float32Array([c.value]);
        tensor.bytesField(9, littleEndian(raw)); // raw_data
      });
    }
    if (graph.doc !== undefined) g.string(10, graph.doc); // GraphProto.doc_string
    for (const v of graph.inputs) g.message(11, (w) => valueInfo(w, v));
    for (const v of graph.outputs) g.message(12, (w) => valueInfo(w, v));
  });
  model.message(8, (o) => o.string(1, "").int(2, ONNX_OPSET)); // opset_import: default domain
  return model.finish();
}
