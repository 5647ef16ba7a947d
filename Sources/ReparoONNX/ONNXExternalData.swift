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
/// model's directory (no "/" prefix, no ".." component, no NUL), a regular file, and each
/// range lies inside it; all external bytes together stay within `ONNXImport.maximumFileBytes`.
enum ONNXExternalData {
    static func resolve(_ model: inout Onnx_ModelProto, directory: String) throws {
        guard model.graph.initializer.contains(where: isExternal) else { return }
        var total = 0
        var files: [String: ExternalFile] = [:]
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
            let file: ExternalFile
            if let open = files[location] {
                file = open
            } else {
                file = try ExternalFile(path: directory + "/" + location)
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
            tensor.rawData = try file.bytes(at: offset, count: count)
            tensor.externalData = []
            tensor.dataLocation = .default
            model.graph.initializer[index] = tensor
        }
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

    /// A regular file opened read-only (O_NONBLOCK: a FIFO cannot hang the open).
    private final class ExternalFile {
        let path: String
        let size: Int
        private let descriptor: Int32

        init(path: String) throws {
            let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
            guard fd >= 0 else { throw ReparoError.io("cannot open external data '\(path)': \(String(cString: strerror(errno)))") }
            var info = stat()
            guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
                close(fd)
                throw ReparoError.io("cannot read external data '\(path)': not a regular file")
            }
            self.path = path
            self.size = Int(info.st_size)
            self.descriptor = fd
        }

        deinit { close(descriptor) }

        func bytes(at offset: Int, count: Int) throws -> Data {
            var data = Data(count: count)
            try data.withUnsafeMutableBytes { (buffer: UnsafeMutableRawBufferPointer) in
                guard let base = buffer.baseAddress else { return }
                var done = 0
                while done < count {
                    let result = pread(descriptor, base + done, count - done, off_t(offset + done))
                    if result < 0 {
                        if errno == EINTR { continue }
                        throw ReparoError.io("cannot read external data '\(path)': \(String(cString: strerror(errno)))")
                    }
                    guard result > 0 else { throw ReparoError.io("external data '\(path)' ended early (it changed while being read?)") }
                    done += result
                }
            }
            return data
        }
    }
}
