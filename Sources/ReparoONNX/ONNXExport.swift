import Foundation
import ReparoCore
import SwiftProtobuf

/// Options of `ONNXExport` (the `options_json` of `reparo_model_export_onnx`).
public struct ONNXExportOptions: Equatable, Sendable {
    /// The operator set the graph targets; only 17 is written.
    public var opset: Int

    public static let supportedOpsets = 17 ... 17

    public init(opset: Int = 17) {
        self.opset = opset
    }

    /// Decodes `{"opset":17}`; empty or nil text gives the defaults, unknown keys are refused.
    public init(json text: String?) throws {
        var object = try JSONObject.parse(text, context: "options")
        self.init(opset: try object.int("opset", default: 17, in: Self.supportedOpsets))
        try object.finish()
    }
}

/// Writes a compact (dense, pruned or collapsed) model as an ONNX model that onnxruntime runs
/// with the same logits: input "input" [batch, C, H, W] (batch a dynamic dimension), output
/// "logits" [batch, classes], one initializer per model tensor under the model's tensor name.
///
/// The graph follows the resolved spec, one node per layer (`[LayerSpec].walk` gives the
/// shapes): conv → Conv, batchnorm → BatchNormalization (ε = 1e-5 and momentum 0.9, PyTorch's
/// 0.1 in ONNX's convention), relu → Relu, maxpool → MaxPool, windowed avgpool → AveragePool,
/// global avgpool → GlobalAveragePool, flatten → Flatten(axis 1), linear → Gemm(transB 1)
/// (after a Flatten when its input is still a feature map), basic_block → main path and
/// shortcut, Add, Relu. An expanded model is refused: its chains are a training device.
/// https://onnx.ai/onnx/operators/
public enum ONNXExport {
    /// ONNX IR version 8 goes with opset 17 (onnx/helper.py VERSION_TABLE, onnx 1.12).
    static let irVersion: Int64 = 8

    /// The doc_string of a Flatten the graph needs but the spec has no layer for (before a
    /// linear layer whose input is a feature map, before the output): `ONNXImport` drops it,
    /// so an export imports back to the same spec.
    static let implicitFlatten = "reparo: flattens for a linear layer or the output; not a layer of the spec"

    /// The serialized ModelProto.
    public static func data(_ model: Model, options: ONNXExportOptions = ONNXExportOptions()) throws -> Data {
        try proto(model, options: options).serializedData()
    }

    /// Writes the model to `path` atomically (temporary file, sync, rename: on failure the
    /// previous file is untouched). Errors: `.state` for an expanded model, `.io`.
    public static func write(_ model: Model, path: String, options: ONNXExportOptions = ONNXExportOptions()) throws {
        let bytes = try data(model, options: options)
        try SafeTensors.writeAtomically(path: path) { emit in
            try bytes.withUnsafeBytes { try emit($0) }
        }
    }

    static func proto(_ model: Model, options: ONNXExportOptions) throws -> Onnx_ModelProto {
        guard ONNXExportOptions.supportedOpsets.contains(options.opset) else {
            throw ReparoError.invalidArgument("options.opset: only opset 17 is written, got \(options.opset)")
        }
        let spec = model.spec
        var hasChain = false
        try spec.layers.walk(input: spec.input) { layer, _, _ in
            if layer.weight?.chain != nil { hasChain = true }
        }
        guard spec.state != .expanded, !hasChain else {
            throw ReparoError.state("cannot export an expanded model to ONNX: collapse it first (reparo_collapse)")
        }
        var graph = GraphBuilder(tensors: model.namedTensors)
        let last = try graph.emit(spec.layers, input: "input", shape: spec.input, flat: false)
        var output = last.value
        if !last.flat {
            output = graph.node("Flatten", [output], name: "flatten_logits", attributes: [.int("axis", 1)], doc: implicitFlatten)
        }
        graph.rename(output, to: "logits")

        var result = Onnx_ModelProto()
        result.irVersion = irVersion
        result.producerName = "reparo"
        result.producerVersion = Reparo.version
        var opset = Onnx_OperatorSetIdProto()
        opset.domain = ""
        opset.version = Int64(options.opset)
        result.opsetImport = [opset]
        var body = Onnx_GraphProto()
        body.name = "reparo"
        body.node = graph.nodes
        body.initializer = try model.namedTensors.map(initializer)
        body.input = [valueInfo("input", [.param("batch"), .value(spec.input.channels), .value(spec.input.height), .value(spec.input.width)])]
        body.output = [valueInfo("logits", [.param("batch"), .value(spec.classes)])]
        result.graph = body
        return result
    }

    private static func initializer(_ tensor: NamedTensor) throws -> Onnx_TensorProto {
        var proto = Onnx_TensorProto()
        proto.name = tensor.name
        proto.dims = tensor.shape.map(Int64.init)
        proto.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        var bytes = Data(count: 4 * tensor.values.count)
        bytes.withUnsafeMutableBytes { raw in
            for index in 0 ..< tensor.values.count {
                raw.storeBytes(of: tensor.values.pointer[index].bitPattern.littleEndian, toByteOffset: 4 * index, as: UInt32.self)
            }
        }
        proto.rawData = bytes
        return proto
    }

    enum Dimension {
        case value(Int)
        case param(String)
    }

    static func valueInfo(_ name: String, _ dimensions: [Dimension]) -> Onnx_ValueInfoProto {
        var shape = Onnx_TensorShapeProto()
        shape.dim = dimensions.map { dimension in
            var proto = Onnx_TensorShapeProto.Dimension()
            switch dimension {
            case .value(let value): proto.dimValue = Int64(value)
            case .param(let name): proto.dimParam = name
            }
            return proto
        }
        var tensor = Onnx_TypeProto.Tensor()
        tensor.elemType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        tensor.shape = shape
        var type = Onnx_TypeProto()
        type.tensorType = tensor
        var info = Onnx_ValueInfoProto()
        info.name = name
        info.type = type
        return info
    }
}

/// Nodes of the graph being built, with the model's tensors by name.
private struct GraphBuilder {
    var nodes: [Onnx_NodeProto] = []
    let tensorNames: Set<String>
    private var usedNames: Set<String> = []

    init(tensors: [NamedTensor]) {
        tensorNames = Set(tensors.map(\.name))
    }

    enum Attribute {
        case int(String, Int)
        case ints(String, [Int])
        case float(String, Float)

        var proto: Onnx_AttributeProto {
            var proto = Onnx_AttributeProto()
            switch self {
            case .int(let name, let value):
                proto.name = name; proto.type = .int; proto.i = Int64(value)
            case .ints(let name, let values):
                proto.name = name; proto.type = .ints; proto.ints = values.map(Int64.init)
            case .float(let name, let value):
                proto.name = name; proto.type = .float; proto.f = value
            }
            return proto
        }
    }

    /// Adds a node; its output value is named after the node (made unique). Returns that name.
    mutating func node(_ opType: String, _ inputs: [String], name: String, attributes: [Attribute] = [], doc: String = "") -> String {
        var unique = name
        var counter = 1
        while usedNames.contains(unique) || tensorNames.contains(unique) || unique == "input" || unique == "logits" {
            unique = "\(name)_\(counter)"
            counter += 1
        }
        usedNames.insert(unique)
        var proto = Onnx_NodeProto()
        proto.opType = opType
        proto.name = unique
        proto.input = inputs
        proto.output = [unique]
        proto.attribute = attributes.map(\.proto)
        if !doc.isEmpty { proto.docString = doc }
        nodes.append(proto)
        return unique
    }

    /// Renames the value `old` (a node's output) to `new`.
    mutating func rename(_ old: String, to new: String) {
        for index in nodes.indices {
            nodes[index].output = nodes[index].output.map { $0 == old ? new : $0 }
            nodes[index].input = nodes[index].input.map { $0 == old ? new : $0 }
        }
    }

    private func tensor(_ name: String) throws -> String {
        guard tensorNames.contains(name) else {
            throw ReparoError.invalidArgument("ONNX export: the model has no tensor \"\(name)\"")
        }
        return name
    }

    /// Emits `layers` from the value `input` of shape `shape`; `flat` when the value is
    /// already [N, features]. Returns the last value and whether it is flat.
    mutating func emit(_ layers: [LayerSpec], input: String, shape: FeatureShape, flat: Bool) throws -> (value: String, flat: Bool) {
        var value = input
        var isFlat = flat
        var current = shape
        for layer in layers {
            let output = try layer.outputShape(input: current)
            let name = layer.name
            switch layer.operation {
            case .conv(let weight, let window):
                guard !isFlat else { throw notExportable(layer, "a conv after flatten or linear") }
                var inputs = [value, try tensor(TensorName.weight(name))]
                if weight.bias { inputs.append(try tensor(TensorName.bias(name))) }
                value = node("Conv", inputs, name: name, attributes: [
                    .ints("kernel_shape", [window.kernel, window.kernel]),
                    .ints("strides", [window.stride, window.stride]),
                    .ints("pads", [window.padding, window.padding, window.padding, window.padding]),
                ])
            case .linear(let weight):
                if !isFlat {
                    value = node("Flatten", [value], name: name + "_flatten", attributes: [.int("axis", 1)],
                                 doc: ONNXExport.implicitFlatten)
                    isFlat = true
                }
                var inputs = [value, try tensor(TensorName.weight(name))]
                if weight.bias { inputs.append(try tensor(TensorName.bias(name))) }
                value = node("Gemm", inputs, name: name, attributes: [.int("transB", 1)])
            case .batchnorm:
                let inputs = try [value] + TensorName.batchNorm(name).map { try tensor($0) }
                value = node("BatchNormalization", inputs, name: name, attributes: [
                    .float("epsilon", BatchNorm2D.epsilon), .float("momentum", 0.9),
                ])
            case .relu:
                value = node("Relu", [value], name: name)
            case .maxpool(let window), .avgpool(.some(let window)):
                guard !isFlat else { throw notExportable(layer, "a pool after flatten or linear") }
                value = node(layer.kind == .maxpool ? "MaxPool" : "AveragePool", [value], name: name, attributes: [
                    .ints("kernel_shape", [window.kernel, window.kernel]),
                    .ints("strides", [window.stride, window.stride]),
                    .ints("pads", [window.padding, window.padding, window.padding, window.padding]),
                ])
            case .avgpool(nil):
                guard !isFlat else { throw notExportable(layer, "a pool after flatten or linear") }
                value = node("GlobalAveragePool", [value], name: name)
            case .flatten:
                if !isFlat { value = node("Flatten", [value], name: name, attributes: [.int("axis", 1)]) }
                isFlat = true
            case .basicBlock(let main, let shortcut):
                // ReLU(main(x) + shortcut(x)), the identity for an empty shortcut (BasicBlock.swift).
                let mainPath = try emit(main, input: value, shape: current, flat: isFlat)
                let shortcutPath = try emit(shortcut, input: value, shape: current, flat: isFlat)
                guard mainPath.flat == shortcutPath.flat else { throw notExportable(layer, "paths of different ranks") }
                let sum = node("Add", [mainPath.value, shortcutPath.value], name: name + "_add")
                value = node("Relu", [sum], name: name)
                isFlat = mainPath.flat
            }
            current = output
        }
        return (value, isFlat)
    }

    private func notExportable(_ layer: LayerSpec, _ what: String) -> ReparoError {
        ReparoError.invalidArgument("ONNX export: layer \"\(layer.name)\" is \(what), which the exporter does not map")
    }
}
