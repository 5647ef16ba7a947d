import Foundation
@testable import ReparoONNX

/// Builds small ONNX models by hand for the importer's tests: an image input [N, C, H, W]
/// (symbolic sides allowed), nodes, FLOAT/INT64 initializers and one output.
struct ONNXGraphFixture {
    var nodes: [Onnx_NodeProto] = []
    var initializers: [Onnx_TensorProto] = []
    var inputs: [Onnx_ValueInfoProto] = []
    var output = "logits"
    var outputClasses: Int64? = nil
    var opset: Int64 = 17
    var domain = ""

    enum Side {
        case fixed(Int64)
        case symbolic(String)
    }

    init(input: [Side] = [.symbolic("batch"), .fixed(3), .fixed(8), .fixed(8)], name: String = "input") {
        addInput(name, input)
    }

    mutating func addInput(_ name: String, _ sides: [Side]) {
        inputs.append(ONNXExport.valueInfo(name, sides.map { side in
            switch side {
            case .fixed(let value): return .value(Int(value))
            case .symbolic(let name): return .param(name)
            }
        }))
    }

    enum Attribute {
        case int(String, Int64)
        case ints(String, [Int64])
        case float(String, Float)
        case string(String, String)
        case tensor(String, Onnx_TensorProto)

        var proto: Onnx_AttributeProto {
            var proto = Onnx_AttributeProto()
            switch self {
            case .int(let name, let value): proto.name = name; proto.type = .int; proto.i = value
            case .ints(let name, let values): proto.name = name; proto.type = .ints; proto.ints = values
            case .float(let name, let value): proto.name = name; proto.type = .float; proto.f = value
            case .string(let name, let value): proto.name = name; proto.type = .string; proto.s = Data(value.utf8)
            case .tensor(let name, let value): proto.name = name; proto.type = .tensor; proto.t = value
            }
            return proto
        }
    }

    @discardableResult
    mutating func node(_ op: String, _ inputs: [String], _ outputs: [String], name: String = "",
                       _ attributes: [Attribute] = [], metadata: [String: String] = [:]) -> Onnx_NodeProto {
        var node = Onnx_NodeProto()
        node.opType = op
        node.input = inputs
        node.output = outputs
        node.name = name
        node.attribute = attributes.map(\.proto)
        node.metadataProps = metadata.sorted { $0.key < $1.key }.map { key, value in
            var entry = Onnx_StringStringEntryProto()
            entry.key = key
            entry.value = value
            return entry
        }
        nodes.append(node)
        return node
    }

    static func floatTensor(_ name: String, _ dims: [Int64], _ values: [Float]) -> Onnx_TensorProto {
        var tensor = Onnx_TensorProto()
        tensor.name = name
        tensor.dims = dims
        tensor.dataType = 1
        var bytes = Data()
        for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        tensor.rawData = bytes
        return tensor
    }

    static func int64Tensor(_ name: String, _ values: [Int64], scalar: Bool = false) -> Onnx_TensorProto {
        var tensor = Onnx_TensorProto()
        tensor.name = name
        tensor.dims = scalar ? [] : [Int64(values.count)]
        tensor.dataType = 7
        tensor.int64Data = values
        return tensor
    }

    /// A FLOAT initializer with deterministic pseudo-random values; returns its values.
    @discardableResult
    mutating func weight(_ name: String, _ dims: [Int64], seed: UInt64 = 1, offset: Float = 0) -> [Float] {
        let count = dims.reduce(1) { $0 * Int($1) }
        var state = seed &* 0x9E37_79B9_7F4A_7C15 &+ 1
        let values: [Float] = (0 ..< count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int64(state >> 40) - (1 << 23)) / Float(1 << 23) * 0.5 + offset
        }
        initializers.append(Self.floatTensor(name, dims, values))
        return values
    }

    mutating func integers(_ name: String, _ values: [Int64]) {
        initializers.append(Self.int64Tensor(name, values))
    }

    var model: Onnx_ModelProto {
        var graph = Onnx_GraphProto()
        graph.name = "fixture"
        graph.node = nodes
        graph.initializer = initializers
        graph.input = inputs
        graph.output = [outputClasses.map { ONNXExport.valueInfo(output, [.param("batch"), .value(Int($0))]) }
            ?? { var info = Onnx_ValueInfoProto(); info.name = output; return info }()]
        var model = Onnx_ModelProto()
        model.irVersion = 8
        var opsetID = Onnx_OperatorSetIdProto()
        opsetID.domain = domain
        opsetID.version = opset
        model.opsetImport = [opsetID]
        model.graph = graph
        return model
    }

    var data: Data {
        get throws { try model.serializedData() }
    }
}
