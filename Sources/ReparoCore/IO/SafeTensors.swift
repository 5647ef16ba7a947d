#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A named Float32 tensor as stored in a weights file.
public struct NamedTensor {
    public var name: String
    public var shape: [Int]
    public var values: FloatBuffer

    public init(name: String, shape: [Int], values: FloatBuffer) {
        self.name = name
        self.shape = shape
        self.values = values
    }
}

/// Reads and writes the Hugging Face safetensors format (F32 only):
/// an 8-byte little-endian header length N, N bytes of JSON, then the raw little-endian data.
/// https://github.com/huggingface/safetensors#format
///
/// The decoder treats every file as hostile: it checks each field before trusting it, never
/// traps, and allocates no more than the file's own size justifies.
public enum SafeTensors {
    /// Largest header accepted, in bytes (100 MiB; the reference implementation allows 100 MB).
    public static let maximumHeaderBytes = 100 * 1024 * 1024

    /// Largest file `read(path:)` loads into memory (8 GiB), checked before reading.
    static let maximumFileBytes = 8 << 30

    /// Most dimensions a tensor may have.
    static let maximumRank = 8

    fileprivate static let metadataKey = "__metadata__"

    // MARK: - Decoding

    /// Parses and validates a complete safetensors file image. Tensors returned in file offset order.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws -> (metadata: [String: String], tensors: [NamedTensor]) {
        guard bytes.count >= 8 else {
            throw ReparoError.format("file is \(bytes.count) bytes; a safetensors file starts with an 8-byte header length")
        }
        // Compare in UInt64 so that lengths near 2^64 cannot trap an Int conversion.
        let declaredLength = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        guard declaredLength > 0 else { throw ReparoError.format("header length is 0") }
        guard declaredLength <= UInt64(maximumHeaderBytes) else {
            throw ReparoError.format("header length \(declaredLength) exceeds the limit of \(maximumHeaderBytes) bytes")
        }
        guard declaredLength <= UInt64(bytes.count - 8) else {
            throw ReparoError.format("header length \(declaredLength) exceeds the \(bytes.count - 8) bytes that follow it")
        }
        let dataStart = 8 + Int(declaredLength)
        let dataLength = bytes.count - dataStart
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[8 ..< dataStart])
        guard String(validating: headerBytes, as: UTF8.self) != nil else {
            throw ReparoError.format("header is not valid UTF-8")
        }
        var reader = HeaderReader(headerBytes, dataLength: dataLength)
        let (metadata, headerEntries) = try reader.readHeader()

        // The data region must be tiled exactly: no overlaps, no holes, nothing left over.
        let entries = headerEntries.sorted { a, b in
            if a.begin != b.begin { return a.begin < b.begin }
            if a.end != b.end { return a.end < b.end }
            return a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
        }
        var expectedBegin = 0
        var previousName: String? = nil
        for entry in entries {
            if entry.begin < expectedBegin, let previousName {
                throw ReparoError.format("tensor \(quoted(entry.name)) overlaps tensor \(quoted(previousName)) in the data region")
            }
            if entry.begin > expectedBegin {
                throw ReparoError.format("data bytes \(expectedBegin)..<\(entry.begin) belong to no tensor (hole before tensor \(quoted(entry.name)))")
            }
            expectedBegin = entry.end
            previousName = entry.name
        }
        guard expectedBegin == dataLength else {
            throw ReparoError.format("data region has \(dataLength - expectedBegin) bytes after the last tensor that belong to no tensor")
        }

        // Everything checked: allocation is now bounded by the file's size.
        var tensors: [NamedTensor] = []
        tensors.reserveCapacity(entries.count)
        for entry in entries {
            let values = try FloatBuffer(count: entry.count)
            let base = dataStart + entry.begin
            // The data may sit at any byte offset, so load unaligned rather than bind memory.
            for index in 0 ..< entry.count {
                let bits = bytes.loadUnaligned(fromByteOffset: base + 4 * index, as: UInt32.self)
                values.pointer[index] = Float(bitPattern: UInt32(littleEndian: bits))
            }
            tensors.append(NamedTensor(name: entry.name, shape: entry.shape, values: values))
        }
        return (metadata, tensors)
    }

    /// Reads and decodes the file at `path`. Missing, unreadable or non-regular files are
    /// `.io`; malformed contents are `.format` with the path in the message.
    public static func read(path: String) throws -> (metadata: [String: String], tensors: [NamedTensor]) {
        try checkPath(path)
        // O_NONBLOCK so that a FIFO cannot hang the open; fstat rejects it right after.
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else { throw ioError(errno, "cannot open '\(path)'") }
        defer { _ = close(descriptor) }

        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw ioError(errno, "cannot stat '\(path)'") }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw ReparoError.io("cannot read '\(path)': not a regular file")
        }
        let size = Int(info.st_size)
        guard size >= 0, size <= maximumFileBytes else {
            throw ReparoError.outOfMemory("cannot read '\(path)': file is \(size) bytes, over the limit of \(maximumFileBytes)")
        }
        guard let storage = malloc(max(size, 1)) else {
            throw ReparoError.outOfMemory("cannot read '\(path)': could not allocate \(size) bytes")
        }
        defer { free(storage) }

        var done = 0
        while done < size {
            let result = systemRead(descriptor, storage + done, min(size - done, 1 << 30))
            if result < 0 {
                let code = errno
                if code == EINTR { continue }
                throw ioError(code, "cannot read '\(path)'")
            }
            if result == 0 {
                throw ReparoError.io("cannot read '\(path)': file ended after \(done) of \(size) bytes")
            }
            done += result
        }
        do {
            return try decode(UnsafeRawBufferPointer(start: storage, count: size))
        } catch ReparoError.format(let message) {
            throw ReparoError.format("'\(path)': \(message)")
        }
    }

    // MARK: - Encoding

    /// Serializes (tensors written in the given order, contiguous; header JSON padded with
    /// spaces to a multiple of 8 bytes, keys sorted so output is deterministic).
    public static func encode(metadata: [String: String], tensors: [NamedTensor]) throws -> [UInt8] {
        let header = try makeHeader(metadata: metadata, tensors: tensors)
        let dataBytes = tensors.reduce(0) { $0 + 4 * $1.values.count }  // bounded by makeHeader
        var output: [UInt8] = []
        output.reserveCapacity(8 + header.count + dataBytes)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { output.append(contentsOf: $0) }
        output.append(contentsOf: header)
        for tensor in tensors {
            forEachLittleEndianChunk(of: tensor.values) { output.append(contentsOf: $0) }
        }
        return output
    }

    /// Atomic save: temp file in the same directory (mkstemp), write all, fsync, rename over
    /// `path`, fsync the directory. On failure the temp file is removed and the previous file
    /// at `path` is untouched. Invalid tensors are `.invalidArgument`, file system errors `.io`.
    public static func write(path: String, metadata: [String: String], tensors: [NamedTensor]) throws {
        let header = try makeHeader(metadata: metadata, tensors: tensors)
        try writeAtomically(path: path) { emit in
            var prefixBytes: [UInt8] = []
            withUnsafeBytes(of: UInt64(header.count).littleEndian) { prefixBytes.append(contentsOf: $0) }
            try prefixBytes.withUnsafeBytes { try emit($0) }
            try header.withUnsafeBytes { try emit($0) }
            for tensor in tensors {
                try forEachLittleEndianChunk(of: tensor.values) { try emit($0) }
            }
        }
    }

    /// The atomic save behind `write` (and other formats' writers, such as the ONNX export):
    /// `body` emits the file's bytes in order into a temporary file in the same directory,
    /// which is synced and renamed over `path`, then the directory is synced. On failure the
    /// temporary file is removed and the previous file at `path` is untouched; file system
    /// errors are `.io`.
    public static func writeAtomically(path: String, _ body: (_ emit: (UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        try checkPath(path)
        let (directory, base) = splitPath(path)
        guard !base.isEmpty else { throw ReparoError.io("cannot write '\(path)': the path names a directory") }

        // Keep an existing file's permissions; mkstemp would leave 0600.
        var existing = stat()
        let mode: mode_t = stat(path, &existing) == 0 && (existing.st_mode & S_IFMT) == S_IFREG
            ? existing.st_mode & 0o7777 : 0o644

        let prefix = String(decoding: base.utf8.prefix(128), as: UTF8.self)
        var template = Array("\(directory)/.\(prefix).tmp-XXXXXX".utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { buffer -> Int32 in
            guard let start = buffer.baseAddress else { return -1 }
            return mkstemp(start)
        }
        guard descriptor >= 0 else {
            throw ioError(errno, "cannot save '\(path)': cannot create a temporary file in '\(directory)'")
        }
        let temporaryPath = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)

        var isOpen = true
        do {
            guard fchmod(descriptor, mode) == 0 else { throw ioError(errno, "cannot save '\(path)': cannot set permissions of the temporary file") }
            try body { try writeAll(descriptor, $0, path: path) }
            guard fsync(descriptor) == 0 else { throw ioError(errno, "cannot save '\(path)': cannot sync the temporary file") }
            isOpen = false
            guard close(descriptor) == 0 else { throw ioError(errno, "cannot save '\(path)': cannot close the temporary file") }
            guard rename(temporaryPath, path) == 0 else { throw ioError(errno, "cannot save '\(path)': cannot rename the temporary file over it") }
        } catch {
            if isOpen { _ = close(descriptor) }
            _ = unlink(temporaryPath)
            throw error
        }
        try syncDirectory(directory, path: path)
    }

    /// The header JSON, validated and padded; also checks that the data size fits an Int.
    private static func makeHeader(metadata: [String: String], tensors: [NamedTensor]) throws -> [UInt8] {
        var names: Set<String> = []
        var offset = 0
        var entries: [(key: String, value: JSONValue)] = []
        entries.reserveCapacity(tensors.count)
        for tensor in tensors {
            let label = "tensor \(quoted(tensor.name))"
            guard !tensor.name.isEmpty else { throw ReparoError.invalidArgument("a tensor has an empty name") }
            guard tensor.name != metadataKey else {
                throw ReparoError.invalidArgument("\(label): the name is reserved for metadata")
            }
            guard names.insert(tensor.name).inserted else {
                throw ReparoError.invalidArgument("duplicate tensor name \(quoted(tensor.name))")
            }
            guard tensor.shape.count <= maximumRank else {
                throw ReparoError.invalidArgument("\(label): shape has \(tensor.shape.count) dimensions; at most \(maximumRank) are supported")
            }
            var count = 1
            for size in tensor.shape {
                guard size >= 0 else { throw ReparoError.invalidArgument("\(label): shape \(tensor.shape) has a negative dimension") }
                let (product, overflow) = count.multipliedReportingOverflow(by: size)
                guard !overflow else { throw ReparoError.invalidArgument("\(label): element count of shape \(tensor.shape) overflows") }
                count = product
            }
            guard count == tensor.values.count else {
                throw ReparoError.invalidArgument("\(label): shape \(tensor.shape) has \(count) elements but the values have \(tensor.values.count)")
            }
            let (end, overflow) = offset.addingReportingOverflow(4 * count)  // count <= FloatBuffer.maximumCount
            guard !overflow else { throw ReparoError.invalidArgument("total data size overflows") }

            entries.append((tensor.name, ["dtype": "F32", "shape": .ints(tensor.shape), "data_offsets": .ints([offset, end])]))
            offset = end
        }

        // __metadata__ first, then the tensors; both sorted by UTF-8 bytes (deterministic output).
        var members: [(key: String, value: JSONValue)] = []
        if !metadata.isEmpty {
            let sorted = metadata.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            members.append((metadataKey, .object(sorted.map { (key: $0.key, value: .string($0.value)) })))
        }
        members += entries.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        var header = JSONWriter(sortedKeys: false, escapesSlashes: false).bytes(.object(members))
        // Padding keeps the data region 8-byte aligned in the file.
        while header.count % 8 != 0 { header.append(UInt8(ascii: " ")) }
        guard header.count <= maximumHeaderBytes else {
            throw ReparoError.invalidArgument("header would be \(header.count) bytes, over the limit of \(maximumHeaderBytes)")
        }
        return header
    }

    /// Calls `body` with the tensor's bytes in little-endian order, 64 KiB at a time.
    private static func forEachLittleEndianChunk(of values: FloatBuffer, _ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        let chunkCount = 16384
        var staging = [UInt8](repeating: 0, count: 4 * chunkCount)
        var start = 0
        while start < values.count {
            let length = min(chunkCount, values.count - start)
            try staging.withUnsafeMutableBytes { raw in
                for index in 0 ..< length {
                    raw.storeBytes(of: values.pointer[start + index].bitPattern.littleEndian, toByteOffset: 4 * index, as: UInt32.self)
                }
                try body(UnsafeRawBufferPointer(rebasing: raw[0 ..< 4 * length]))
            }
            start += length
        }
    }

    // MARK: - POSIX helpers

    private static func checkPath(_ path: String) throws {
        guard !path.utf8.contains(0) else {
            throw ReparoError.invalidArgument("path \(quoted(path)) contains a NUL byte")
        }
    }

    /// (directory, last component); "a/b" → ("a", "b"), "b" → (".", "b"), "/b" → ("/", "b").
    /// Split on bytes: as Characters, a "/" followed by a combining mark would not match "/".
    private static func splitPath(_ path: String) -> (directory: String, base: String) {
        let bytes = Array(path.utf8)
        guard let slash = bytes.lastIndex(of: UInt8(ascii: "/")) else { return (".", path) }
        let directory = String(decoding: bytes[..<slash], as: UTF8.self)
        return (directory.isEmpty ? "/" : directory, String(decoding: bytes[(slash + 1)...], as: UTF8.self))
    }

    private static func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var done = 0
        while done < bytes.count {
            guard let start = bytes.baseAddress else { return }
            let result = systemWrite(descriptor, start + done, bytes.count - done)
            if result < 0 {
                let code = errno
                if code == EINTR { continue }
                throw ioError(code, "cannot save '\(path)': cannot write the temporary file")
            }
            done += result
        }
    }

    /// Makes the rename durable. Some file systems cannot sync a directory (EINVAL); that is
    /// not an error worth failing a save that has already replaced the file.
    private static func syncDirectory(_ directory: String, path: String) throws {
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw ioError(errno, "saved '\(path)' but cannot open directory '\(directory)' to sync it") }
        defer { _ = close(descriptor) }
        if fsync(descriptor) != 0 {
            let code = errno
            if code != EINVAL { throw ioError(code, "saved '\(path)' but cannot sync directory '\(directory)'") }
        }
    }

    private static func systemRead(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
        #if canImport(Glibc)
        return Glibc.read(descriptor, buffer, count)
        #else
        return Darwin.read(descriptor, buffer, count)
        #endif
    }

    private static func systemWrite(_ descriptor: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
        #if canImport(Glibc)
        return Glibc.write(descriptor, buffer, count)
        #else
        return Darwin.write(descriptor, buffer, count)
        #endif
    }

    /// `.io` with the context and the system's reason (strerror). The code comes first so that
    /// errno is read before building the message can disturb it.
    private static func ioError(_ code: Int32, _ context: String) -> ReparoError {
        let reason = strerror(code).map { String(cString: $0) } ?? "error \(code)"
        return ReparoError.io("\(context): \(reason)")
    }

    /// A name for messages: quoted, and cut short so that a hostile file cannot make the
    /// error message itself huge.
    fileprivate static func quoted(_ name: String) -> String {
        name.count > 128 ? "'\(name.prefix(128))…'" : "'\(name)'"
    }
}

/// One tensor's header entry, validated against the data region.
private struct HeaderEntry {
    var name: String
    var shape: [Int]
    var count: Int
    var begin: Int
    var end: Int
}

/// Reads exactly the safetensors header schema with `JSONReader`: an object whose values are
/// the metadata object (string → string) or tensor entries (dtype string, shape and
/// data_offsets integer arrays). It pulls the values the schema allows and builds no general
/// JSON tree, so nothing nests deeper than the schema and memory stays proportional to the
/// names and shapes it returns. (Foundation's JSONSerialization took ~65× the header size in
/// memory on Linux, collapsed duplicate keys silently, and accepted trailing commas.)
private struct HeaderReader {
    private var reader: JSONReader
    private let dataLength: Int

    /// `bytes` must be valid UTF-8 (`decode` checks it first).
    init(_ bytes: UnsafeRawBufferPointer, dataLength: Int) {
        // The schema nests three levels: header object, entry object, shape array.
        reader = JSONReader(bytes.assumingMemoryBound(to: UInt8.self), maximumDepth: 3)
        self.dataLength = dataLength
    }

    /// The metadata and the tensor entries, in header order.
    mutating func readHeader() throws -> (metadata: [String: String], entries: [HeaderEntry]) {
        guard reader.bytes.first == UInt8(ascii: "{") else {
            throw ReparoError.format("header is not a JSON object (it must start with '{')")
        }
        var metadata: [String: String] = [:]
        var entries: [HeaderEntry] = []
        // Swift compares strings by canonical equivalence, so "\u{E1}" and "a\u{301}" are one
        // name here, as they would be in any dictionary a caller builds from the result.
        var keys: Set<String> = []
        do {
            try reader.begin()
            while let key = try reader.nextKey() {
                guard keys.insert(key).inserted else {
                    throw ReparoError.format("duplicate key \(SafeTensors.quoted(key)) in the header")
                }
                if key == SafeTensors.metadataKey {
                    metadata = try readMetadata()
                } else {
                    entries.append(try readEntry(name: key))
                }
            }
            try reader.finish()
        } catch let error as JSONSyntaxError {
            throw ReparoError.format("header is not valid JSON: \(error.problem) at header byte \(error.offset)")
        }
        return (metadata, entries)
    }

    private mutating func readMetadata() throws -> [String: String] {
        let label = "'\(SafeTensors.metadataKey)'"
        guard try reader.peek() == .object else { throw ReparoError.format("\(label) is not an object") }
        try reader.begin()
        var metadata: [String: String] = [:]
        while let key = try reader.nextKey() {
            guard try reader.peek() == .string else {
                throw ReparoError.format("\(label) value for key \(SafeTensors.quoted(key)) is not a string")
            }
            guard metadata.updateValue(try reader.readString(), forKey: key) == nil else {
                throw ReparoError.format("\(label) repeats key \(SafeTensors.quoted(key))")
            }
        }
        return metadata
    }

    private mutating func readEntry(name: String) throws -> HeaderEntry {
        let label = "tensor \(SafeTensors.quoted(name))"
        guard !name.isEmpty else { throw ReparoError.format("a tensor has an empty name") }
        guard try reader.peek() == .object else { throw ReparoError.format("\(label) is not an object") }
        try reader.begin()
        var dtype: String? = nil
        var dimensions: [Int]? = nil
        var offsets: [Int]? = nil
        while let field = try reader.nextKey() {
            let repeated = ReparoError.format("\(label) repeats field \(SafeTensors.quoted(field))")
            do {
                switch field {
                case "dtype":
                    guard dtype == nil else { throw repeated }
                    guard try reader.peek() == .string else { throw ReparoError.format("\(label): 'dtype' is not a string") }
                    dtype = try reader.readString()
                case "shape":
                    guard dimensions == nil else { throw repeated }
                    dimensions = try readIntegers(limit: SafeTensors.maximumRank) { problem in
                        switch problem {
                        case .notArray: return "\(label): 'shape' is not an array"
                        case .tooMany: return "\(label): 'shape' has more than \(SafeTensors.maximumRank) dimensions"
                        case .notInteger(let index): return "\(label): 'shape' dimension \(index) is not a non-negative integer"
                        }
                    }
                case "data_offsets":
                    guard offsets == nil else { throw repeated }
                    offsets = try readIntegers(limit: 2) { _ in "\(label): 'data_offsets' is not two non-negative integers" }
                default:
                    throw ReparoError.format("\(label) has unexpected field \(SafeTensors.quoted(field))")
                }
            } catch let error as JSONSyntaxError {
                throw ReparoError.format("\(label): '\(field)' is not valid JSON: \(error.problem) at header byte \(error.offset)")
            }
        }
        guard let dtype else { throw ReparoError.format("\(label) lacks field 'dtype'") }
        guard let shape = dimensions else { throw ReparoError.format("\(label) lacks field 'shape'") }
        guard let offsets else { throw ReparoError.format("\(label) lacks field 'data_offsets'") }
        guard dtype == "F32" else {
            throw ReparoError.format("\(label) has dtype \(SafeTensors.quoted(dtype)); only F32 is supported")
        }

        var count = 1
        for size in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: size)
            guard !overflow else { throw ReparoError.format("\(label): element count of shape \(shape) overflows") }
            count = product
        }
        let (byteCount, byteOverflow) = count.multipliedReportingOverflow(by: 4)
        guard !byteOverflow else { throw ReparoError.format("\(label): byte size of shape \(shape) overflows") }

        guard offsets.count == 2 else {
            throw ReparoError.format("\(label): 'data_offsets' is not two non-negative integers")
        }
        let begin = offsets[0], end = offsets[1]
        guard begin <= end else {
            throw ReparoError.format("\(label): 'data_offsets' [\(begin), \(end)] begins after it ends")
        }
        guard end <= dataLength else {
            throw ReparoError.format("\(label): 'data_offsets' end \(end) is beyond the \(dataLength)-byte data region")
        }
        guard end - begin == byteCount else {
            throw ReparoError.format("\(label): 'data_offsets' [\(begin), \(end)] span \(end - begin) bytes but shape \(shape) of F32 needs \(byteCount)")
        }
        return HeaderEntry(name: name, shape: shape, count: count, begin: begin, end: end)
    }

    private enum ArrayProblem {
        case notArray, tooMany, notInteger(Int)
    }

    /// A JSON array of at most `limit` non-negative integer literals: digits only, so not
    /// 2.0, 1e2 or -0, and within an Int.
    private mutating func readIntegers(limit: Int, _ message: (ArrayProblem) -> String) throws -> [Int] {
        guard try reader.peek() == .array else { throw ReparoError.format(message(.notArray)) }
        try reader.begin()
        var values: [Int] = []
        while try reader.nextElement() {
            guard values.count < limit else { throw ReparoError.format(message(.tooMany)) }
            guard try reader.peek() == .number, case .number(let double, let integer?) = try reader.readNumber(),
                  integer >= 0, double.sign == .plus else {
                throw ReparoError.format(message(.notInteger(values.count)))
            }
            values.append(integer)
        }
        return values
    }
}
