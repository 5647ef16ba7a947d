import Foundation
import ReparoCore
import SwiftProtobuf
import Testing
@testable import ReparoONNX

/// The exported bytes decode with SwiftProtobuf into the graph the spec describes. The numeric
/// check (onnxruntime's logits against Model.infer) is bindings/python/tests/test_onnx_export.py.
@Suite("ONNX export")
struct ONNXExportTests {
    /// conv(bias) → BN → ReLU → avgpool 2 → basic block with a 1×1 conv shortcut → identity
    /// block → global avgpool → linear (no flatten: the exporter adds one).
    static let spec = #"""
    {"input":[3,8,8],"classes":5,"layers":[
      {"type":"conv","out":4,"kernel":3,"padding":1,"bias":true},{"type":"batchnorm"},{"type":"relu"},
      {"type":"avgpool","kernel":2},
      {"type":"basic_block","out":6,"stride":2},{"type":"basic_block","out":6},
      {"type":"avgpool"},{"type":"linear","out":5}]}
    """#

    @Test("a small spec decodes into the expected ops, names and shapes")
    func decodesIntoTheExpectedGraph() throws {
        let model = try Model(specJSON: Self.spec, seed: 1)
        let decoded = try Onnx_ModelProto(serializedBytes: try ONNXExport.data(model))
        #expect(decoded.irVersion == 8)
        #expect(decoded.opsetImport.map(\.version) == [17])
        let graph = decoded.graph
        let block = ["Conv", "BatchNormalization", "Relu", "Conv", "BatchNormalization"]
        #expect(graph.node.map(\.opType) == ["Conv", "BatchNormalization", "Relu", "AveragePool"]
            + block + ["Conv", "BatchNormalization", "Add", "Relu"]
            + block + ["Add", "Relu"]
            + ["GlobalAveragePool", "Flatten", "Gemm"])
        #expect(graph.node.first?.input.first == "input")
        #expect(graph.node.last?.output == ["logits"])
        #expect(graph.initializer.map(\.name) == model.namedTensors.map(\.name))
        #expect(graph.initializer.map { $0.dims.map(Int.init) } == model.namedTensors.map(\.shape))
        for (proto, tensor) in zip(graph.initializer, model.namedTensors) {
            #expect(proto.rawData.count == 4 * tensor.values.count)
        }
        #expect(graph.input.map(\.name) == ["input"])
        let inputDimensions = graph.input.first?.type.tensorType.shape.dim ?? []
        #expect(inputDimensions.first?.dimParam == "batch")
        #expect(inputDimensions.dropFirst().map(\.dimValue) == [3, 8, 8])
        #expect(graph.output.first?.type.tensorType.shape.dim.last?.dimValue == 5)
        let firstConv = try #require(graph.node.first)
        #expect(firstConv.input.count == 3)  // the bias
        #expect(firstConv.attribute.first { $0.name == "pads" }?.ints == [1, 1, 1, 1])
    }

    @Test("a padded max-pool (ResNet-18's stem) exports as MaxPool with its pads; an unpadded one with zeros")
    func paddedMaxPool() throws {
        let spec = #"{"input":[3,15,14],"classes":4,"layers":[{"type":"conv","out":4,"kernel":7,"stride":2,"padding":3},{"type":"maxpool","kernel":3,"stride":2,"padding":1},{"type":"maxpool","kernel":2},{"type":"flatten"},{"type":"linear","out":4}]}"#
        let graph = try Onnx_ModelProto(serializedBytes: try ONNXExport.data(try Model(specJSON: spec, seed: 1))).graph
        let pools = graph.node.filter { $0.opType == "MaxPool" }
        func attribute(_ node: Onnx_NodeProto, _ name: String) -> [Int64]? { node.attribute.first { $0.name == name }?.ints }
        #expect(pools.map { attribute($0, "kernel_shape") } == [[3, 3], [2, 2]])
        #expect(pools.map { attribute($0, "strides") } == [[2, 2], [2, 2]])
        #expect(pools.map { attribute($0, "pads") } == [[1, 1, 1, 1], [0, 0, 0, 0]])
    }

    @Test("an expanded model is refused with .state")
    func expandedIsRefused() throws {
        let model = try Model(specJSON: Self.spec, seed: 1)
        let expanded = try Expansion.expand(model, options: ExpandOptions(json: #"{"rate":2}"#))
        #expect(throws: ReparoError.self) { try ONNXExport.data(expanded) }
        do {
            _ = try ONNXExport.data(expanded)
        } catch ReparoError.state(let message) {
            #expect(message.contains("collapse"))
        }
    }

    @Test("options: only opset 17, unknown keys refused")
    func optionsAreStrict() throws {
        #expect(try ONNXExportOptions(json: nil).opset == 17)
        #expect(try ONNXExportOptions(json: #"{"opset":17}"#).opset == 17)
        #expect(throws: ReparoError.self) { try ONNXExportOptions(json: #"{"opset":13}"#) }
        #expect(throws: ReparoError.self) { try ONNXExportOptions(json: #"{"fold":true}"#) }
    }
}
