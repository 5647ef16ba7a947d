import Foundation
import ReparoCore
import SwiftProtobuf

/// Reads an ONNX model of a CNN (the graphs `torch.onnx.export` writes for VGG- and
/// ResNet-style models, with either exporter, and those `ONNXExport` writes) as a Reparo
/// model in the state `options.state`, ready to prune, expand, train, collapse and export.
///
/// The graph is walked once (`ONNXConverter`) into a resolved spec whose layers are named
/// after the PyTorch modules (`ONNXLayerNamer`), and the model is built from it with
/// `Model(spec:tensors:)`, which checks every tensor against the spec. Supported: the
/// default-domain opsets 9 to 23, FLOAT weights inside the file, one input [N, C, H, W] and
/// one output [N, classes]; the ops and attributes are listed in the README ("ONNX import").
///
/// Errors: `.format` for a file that is not a valid ONNX model or is inconsistent (truncated,
/// dims that lie about the data, dangling values, shapes that do not chain); `.invalidArgument`
/// for a valid model outside the supported set (the message names the node and its op_type),
/// and for options that disagree with the graph; `.io` when the file cannot be read.
/// https://onnx.ai/onnx/operators/
public enum ONNXImport {
    /// Largest file read: 2 GiB, protobuf's own limit for one message.
    public static let maximumFileBytes = 2 << 30

    /// The model in `data` (a serialized ModelProto). Pure: reads nothing but `data`, so
    /// tensors kept in external files are refused here (`model(path:)` reads them).
    public static func model(from data: Data, options: ONNXImportOptions = ONNXImportOptions()) throws -> Model {
        try model(proto: decode(data), options: options)
    }

    /// The model in the file at `path`, with the external data files the model names beside it
    /// (the dynamo exporter's default "model.onnx.data"; `ONNXExternalData`).
    public static func model(path: String, options: ONNXImportOptions = ONNXImportOptions()) throws -> Model {
        var proto = try decode(readFile(path))
        let directory = (path as NSString).deletingLastPathComponent
        try ONNXExternalData.resolve(&proto, directory: directory.isEmpty ? "." : directory)
        return try model(proto: proto, options: options)
    }

    private static func decode(_ data: Data) throws -> Onnx_ModelProto {
        guard data.count <= maximumFileBytes else {
            throw ONNXImportError.malformed("\(data.count) bytes, over the limit of \(maximumFileBytes)")
        }
        do {
            var decoding = BinaryDecodingOptions()
            decoding.discardUnknownFields = true
            return try Onnx_ModelProto(serializedBytes: data, options: decoding)
        } catch {
            throw ONNXImportError.malformed("not a valid ONNX model (protobuf: \(error))")
        }
    }

    private static func model(proto: Onnx_ModelProto, options: ONNXImportOptions) throws -> Model {
        let graph = try ONNXGraph(proto)
        let input = try inputShape(graph, options)
        var converter = ONNXConverter(graph: graph, input: input)
        let (layers, output) = try converter.convert()
        guard output.height == 1, output.width == 1 else {
            throw ONNXImportError.unsupported("the output is \(output) per image; Reparo imports classifiers whose output is [N, classes]")
        }
        if let classes = graph.outputClasses, classes != output.channels {
            throw ONNXImportError.malformed("the graph declares \(classes) outputs but its layers give \(output.channels)")
        }
        let spec = ModelSpec(input: input, classes: output.channels, state: options.state, layers: layers)
        try checkRepresentable(spec)
        do {
            return try Model(spec: spec, tensors: converter.tensors, source: "ONNX model")
        } catch ReparoError.invalidArgument(let message) {
            throw ONNXImportError.malformed(message)
        }
    }

    /// [C, H, W] from the graph input's fixed dimensions and the "input" option.
    private static func inputShape(_ graph: ONNXGraph, _ options: ONNXImportOptions) throws -> FeatureShape {
        let given = options.input.map { [$0.channels, $0.height, $0.width] }
        var sides: [Int] = []
        for (axis, side) in graph.inputSides.enumerated() {
            let letter = ["C", "H", "W"][axis]
            switch (side, given?[axis]) {
            case (let fixed?, let option?):
                guard fixed == option else {
                    throw ReparoError.invalidArgument("ONNX import: options.input gives \(letter) = \(option) but the graph input has \(fixed)")
                }
                sides.append(fixed)
            case (let fixed?, nil): sides.append(fixed)
            case (nil, let option?): sides.append(option)
            case (nil, nil):
                throw ReparoError.invalidArgument("ONNX import: the graph input's \(letter) is symbolic; give the image shape with the \"input\" option ([C, H, W])")
            }
        }
        guard sides.allSatisfy({ (1 ... 4_096).contains($0) }) else {
            throw ONNXImportError.unsupported("the input [C, H, W] = \(sides) is outside Reparo's limits (1 to 4096 each)")
        }
        return FeatureShape(channels: sides[0], height: sides[1], width: sides[2])
    }

    /// Refuses a spec that a saved file could not restore: the spec JSON written by `save`
    /// must parse back to the same spec (names, sizes within the spec's ranges).
    private static func checkRepresentable(_ spec: ModelSpec) throws {
        let reparsed: ModelSpec
        do {
            reparsed = try SpecParser.parse(spec.jsonText)
        } catch let error as ReparoError {
            throw ONNXImportError.unsupported("the network is outside Reparo's spec limits: \(error.message)")
        }
        guard reparsed == spec else {
            throw ONNXImportError.unsupported("the network uses a layer setting Reparo's spec cannot record (\(firstDifference(spec.layers, reparsed.layers)))")
        }
    }

    private static func firstDifference(_ a: [LayerSpec], _ b: [LayerSpec]) -> String {
        var pending = [(a, b)]
        while let (left, right) = pending.popLast() {
            for (x, y) in zip(left, right) where x != y {
                if !x.main.isEmpty || !x.shortcut.isEmpty, x.kind == y.kind {
                    pending.append((x.main, y.main))
                    pending.append((x.shortcut, y.shortcut))
                    continue
                }
                return "layer \"\(x.name)\" (\(x.kind.rawValue)\(windowText(x)))"
            }
        }
        return "unknown"
    }

    private static func windowText(_ layer: LayerSpec) -> String {
        switch layer.operation {
        case .conv(_, let window), .maxpool(let window), .avgpool(.some(let window)):
            return " kernel \(window.kernel), stride \(window.stride), padding \(window.padding)"
        default:
            return ""
        }
    }

    /// The bytes of a regular file of at most `maximumFileBytes`.
    static func readFile(_ path: String) throws -> Data {
        guard !path.isEmpty else { throw ReparoError.invalidArgument("path is empty") }
        let file = try InputFile(path: path)
        guard file.size <= maximumFileBytes else {
            throw ONNXImportError.malformed("'\(path)' is \(file.size) bytes, over the limit of \(maximumFileBytes)")
        }
        return try contents(of: file, at: 0, count: file.size)
    }

    /// `count` bytes of `file` from `offset` (checked to lie inside it by `InputFile`).
    static func contents(of file: InputFile, at offset: Int, count: Int) throws -> Data {
        var data = Data(count: count)
        try data.withUnsafeMutableBytes { try file.read(into: $0, at: offset) }
        return data
    }
}
