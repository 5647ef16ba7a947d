import Foundation
import ReparoCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Loads initializers stored outside the model file (what `torch.onnx.export` writes by default
/// with the dynamo exporter: "model.onnx.data" beside "model.onnx", each tensor a `location`,
/// `offset` and `length`), so that the pure converter only sees tensors with their bytes.
/// https://onnx.ai/onnx/repo-docs/ExternalData.html
///
/// A hostile model must not read other files: a location is a plain relative path inside the
/// model's directory (no "/" prefix, no ".." component, no NUL) whose resolved path (symbolic
/// links followed) is still inside the directory's, a regular file, and each range lies inside it; all external bytes together stay within `ONNXImport.maximumFileBytes`.
enum ONNXExternalData {
    static func resolve(_ model: inout Onnx_ModelProto, directory: String) throws {
        guard model.graph.initializer.contains(where: isExternal) else { return }
        var total = 0
        var files: [String: InputFile] = [:]
        for index in model.graph.initializer.indices where isExternal(model.graph.initializer[index]) {
            var tensor = model.graph.initializer[index]
            let what = "tensor \"\(ONNXImportError.clipped(tensor.name))\""
            var location: String?
            var offset = 0
            var length: Int?
            for entry in tensor.externalData {
                switch entry.key {
                case "location": location = entry.value
                case "offset": offset = try number(entry.value, what, "offset")
                case "length": length = try number(entry.value, what, "length")
                default: break   // "checksum" and others: not needed to read the bytes
                }
            }
            guard let location, isSafe(location) else {
                throw ONNXImportError.malformed("\(what): external data location \"\(ONNXImportError.clipped(location ?? ""))\" must be a relative path inside the model's directory")
            }
            let file: InputFile
            if let open = files[location] {
                file = open
            } else {
                let path = directory + "/" + location
                try confine(path, to: directory, what)
                file = try InputFile(path: path)
                files[location] = file
            }
            let count = length ?? max(file.size - offset, 0)
            guard offset <= file.size, count <= file.size - offset else {
                throw ONNXImportError.malformed("\(what): bytes \(offset) to \(offset + count) lie outside \(location) (\(file.size) bytes)")
            }
            total += count
            guard total <= ONNXImport.maximumFileBytes else {
                throw ONNXImportError.malformed("external data over \(ONNXImport.maximumFileBytes) bytes")
            }
            tensor.rawData = try ONNXImport.contents(of: file, at: offset, count: count)
            tensor.externalData = []
            tensor.dataLocation = .default
            model.graph.initializer[index] = tensor
        }
    }

    /// Refuses a data file whose real path (symbolic links resolved) leaves the model's
    /// directory: a link inside the directory must not read other files either.
    private static func confine(_ path: String, to directory: String, _ what: String) throws {
        guard let root = realPath(directory) else {
            throw ReparoError.io("cannot resolve the model's directory '\(directory)': \(String(cString: strerror(errno)))")
        }
        guard let target = realPath(path) else {
            throw ReparoError.io("cannot open '\(path)' (\(what)'s external data): \(String(cString: strerror(errno)))")
        }
        let prefix = root.hasSuffix("/") ? root : root + "/"
        guard target.hasPrefix(prefix) else {
            throw ONNXImportError.malformed("\(what): external data '\(ONNXImportError.clipped(path))' resolves to '\(ONNXImportError.clipped(target))', outside the model's directory")
        }
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    private static func isExternal(_ tensor: Onnx_TensorProto) -> Bool {
        tensor.dataLocation == .external
    }

    private static func number(_ text: String, _ what: String, _ key: String) throws -> Int {
        guard let value = Int(text), value >= 0, value <= ONNXImport.maximumFileBytes else {
            throw ONNXImportError.malformed("\(what): external data \(key) \"\(ONNXImportError.clipped(text))\"")
        }
        return value
    }

    private static func isSafe(_ location: String) -> Bool {
        !location.isEmpty && !location.hasPrefix("/") && !location.contains("\0") && location.utf8.count <= 1_024
            && !location.split(separator: "/").contains("..") && !location.contains("\\")
    }
}
