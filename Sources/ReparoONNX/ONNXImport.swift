import Foundation
import ReparoCore
import SwiftProtobuf

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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

    /// The model in `data` (a serialized ModelProto). Pure: reads nothing but `data`.
    public static func model(from data: Data, options: ONNXImportOptions = ONNXImportOptions()) throws -> Model {
        guard data.count <= maximumFileBytes else {
            throw ONNXImportError.malformed("\(data.count) bytes, over the limit of \(maximumFileBytes)")
        }
        let proto: Onnx_ModelProto
        do {
            var decoding = BinaryDecodingOptions()
            decoding.discardUnknownFields = true
            proto = try Onnx_ModelProto(serializedBytes: data, options: decoding)
        } catch {
            throw ONNXImportError.malformed("not a valid ONNX model (protobuf: \(error))")
        }
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

    /// The model in the file at `path`.
    public static func model(path: String, options: ONNXImportOptions = ONNXImportOptions()) throws -> Model {
        try model(from: readFile(path), options: options)
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
                return "layer \"\(x.name)\": \(x.operation)"
            }
        }
        return "unknown"
    }

    /// The bytes of a regular file of at most `maximumFileBytes`. O_NONBLOCK so that a FIFO
    /// cannot hang the open; fstat refuses it right after.
    static func readFile(_ path: String) throws -> Data {
        guard !path.isEmpty else { throw ReparoError.invalidArgument("path is empty") }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else { throw ReparoError.io("cannot open '\(path)': \(String(cString: strerror(errno)))") }
        defer { _ = close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw ReparoError.io("cannot stat '\(path)': \(String(cString: strerror(errno)))") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw ReparoError.io("cannot read '\(path)': not a regular file") }
        let size = Int(info.st_size)
        guard size >= 0, size <= maximumFileBytes else {
            throw ONNXImportError.malformed("'\(path)' is \(size) bytes, over the limit of \(maximumFileBytes)")
        }
        var data = Data(count: size)
        try data.withUnsafeMutableBytes { (buffer: UnsafeMutableRawBufferPointer) in
            guard let base = buffer.baseAddress else { return }
            var done = 0
            while done < size {
                let result = read(descriptor, base + done, min(size - done, 1 << 30))
                if result < 0 {
                    if errno == EINTR { continue }
                    throw ReparoError.io("cannot read '\(path)': \(String(cString: strerror(errno)))")
                }
                guard result > 0 else { throw ReparoError.io("cannot read '\(path)': file ended after \(done) of \(size) bytes") }
                done += result
            }
        }
        return data
    }
}
