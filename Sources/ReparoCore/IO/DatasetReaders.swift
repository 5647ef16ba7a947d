#if canImport(Glibc)
import Foundation
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Readers for the image formats Reparo trains on: MNIST-style IDX (the bundled digits and
/// MNIST itself) and the CIFAR-10 binary batches.
///
/// Every header is checked against the file's size before anything sized by the header is
/// allocated, so a corrupt or hostile file costs an error, never a trap or a huge allocation:
/// `.io` for files or directories that cannot be opened, `.format` (naming the file) for bad
/// contents, `.invalidArgument` for an unknown split or a bad parameter.
public enum DatasetReader {
    /// File names of the bundled digits inside the directory `locateBundledData()` returns.
    static let digitsMarker = "digits-train-images.idx3-ubyte"

    /// Reads an IDX image file (magic 0x00000803: uint8, dims N, H, W, big-endian) and its
    /// label file (magic 0x00000801: uint8, dim N) into a `[1, H, W]` dataset, pixels divided
    /// by `pixelScale` (255 for MNIST, 16 for the digits).
    public static func readIDX(images: String, labels: String, pixelScale: Float,
                               classes: Int = 10) throws -> Dataset {
        guard pixelScale.isFinite, pixelScale > 0 else {
            throw ReparoError.invalidArgument("pixelScale must be finite and positive, got \(pixelScale)")
        }
        guard classes > 0 else {
            throw ReparoError.invalidArgument("classes must be positive, got \(classes)")
        }
        let imageFile = try InputFile(path: images)
        let labelFile = try InputFile(path: labels)
        let imageDims = try readIDXHeader(imageFile, magic: 0x0000_0803)
        let labelDims = try readIDXHeader(labelFile, magic: 0x0000_0801)
        let (count, height, width) = (imageDims[0], imageDims[1], imageDims[2])
        guard labelDims[0] == count else {
            throw ReparoError.format(
                "\(images) holds \(count) images but \(labels) holds \(labelDims[0]) labels")
        }
        // Both products were checked against the file sizes by readIDXHeader.
        let pixelCount = count * height * width
        let headerSize = 4 + 4 * imageDims.count

        let labelBytes = try labelFile.bytes(at: 4 + 4 * labelDims.count, count: count)
        var labelValues = [Int32]()
        labelValues.reserveCapacity(count)
        for (index, byte) in labelBytes.enumerated() {
            guard Int(byte) < classes else {
                throw ReparoError.format(
                    "\(labels): label \(byte) of sample \(index) is not below the \(classes) classes")
            }
            labelValues.append(Int32(byte))
        }

        let table = scaleTable(pixelScale)
        let pixels = try [Float](unsafeUninitializedCapacity: pixelCount) { buffer, initialized in
            var done = 0
            while done < pixelCount {
                let chunk = min(chunkBytes, pixelCount - done)
                let bytes = try imageFile.bytes(at: headerSize + done, count: chunk)
                convert(bytes, from: 0, count: chunk, table: table, into: buffer, at: done)
                done += chunk
            }
            initialized = pixelCount
        }
        return try Dataset(shape: FeatureShape(channels: 1, height: height, width: width),
                           classes: classes, images: pixels, labels: labelValues)
    }

    /// The bundled 8×8 digits (see data/README.md): `directory` holds
    /// `digits-{train,test}-{images.idx3,labels.idx1}-ubyte`; `split` is "train" or "test".
    /// Pixels 0..16 are divided by 16.
    public static func readDigits(directory: String, split: String) throws -> Dataset {
        guard split == "train" || split == "test" else {
            throw ReparoError.invalidArgument("unknown digits split \"\(split)\": use \"train\" or \"test\"")
        }
        try requireDirectory(directory)
        return try readIDX(images: join(directory, "digits-\(split)-images.idx3-ubyte"),
                           labels: join(directory, "digits-\(split)-labels.idx1-ubyte"),
                           pixelScale: 16, classes: 10)
    }

    /// MNIST from a directory holding the four uncompressed files `train-images-idx3-ubyte`,
    /// `train-labels-idx1-ubyte` ("train") and `t10k-images-idx3-ubyte`,
    /// `t10k-labels-idx1-ubyte` ("test"). Gzipped files are not read; the error says so when
    /// only the `.gz` is present. Pixels are divided by 255.
    public static func readMNIST(directory: String, split: String) throws -> Dataset {
        let prefix: String
        switch split {
        case "train": prefix = "train"
        case "test": prefix = "t10k"
        default:
            throw ReparoError.invalidArgument("unknown MNIST split \"\(split)\": use \"train\" or \"test\"")
        }
        try requireDirectory(directory)
        let images = join(directory, "\(prefix)-images-idx3-ubyte")
        let labels = join(directory, "\(prefix)-labels-idx1-ubyte")
        for path in [images, labels] where !isRegularFile(path) && isRegularFile(path + ".gz") {
            throw ReparoError.io(
                "\(path) not found, but \(path).gz is: Reparo reads only uncompressed IDX files, gunzip it first")
        }
        return try readIDX(images: images, labels: labels, pixelScale: 255, classes: 10)
    }

    /// CIFAR-10 binary batches: records of 1 label byte + 3072 pixel bytes (1024 R, 1024 G,
    /// 1024 B, each row-major 32×32, which is already `[C, H, W]`). "train" reads those of
    /// `data_batch_1.bin` … `data_batch_5.bin` that are present (at least one), "test" reads
    /// `test_batch.bin`. Pixels are divided by 255.
    public static func readCIFAR10(directory: String, split: String) throws -> Dataset {
        let names: [String]
        switch split {
        case "train": names = (1...5).map { "data_batch_\($0).bin" }
        case "test": names = ["test_batch.bin"]
        default:
            throw ReparoError.invalidArgument("unknown CIFAR-10 split \"\(split)\": use \"train\" or \"test\"")
        }
        try requireDirectory(directory)
        var paths = names.map { join(directory, $0) }
        if split == "train" {
            paths = paths.filter { isRegularFile($0) }
            guard !paths.isEmpty else {
                throw ReparoError.io("\(directory) holds none of data_batch_1.bin … data_batch_5.bin")
            }
        }

        let shape = FeatureShape(channels: 3, height: 32, width: 32)
        let recordSize = 1 + shape.count
        var files = [InputFile]()
        var total = 0
        for path in paths {
            let file = try InputFile(path: path)
            guard file.size > 0 else { throw ReparoError.format("\(path): empty file") }
            guard file.size % recordSize == 0 else {
                throw ReparoError.format(
                    "\(path): size \(file.size) is not a multiple of the \(recordSize)-byte CIFAR-10 record")
            }
            files.append(file)
            var overflow: Bool
            (total, overflow) = total.addingReportingOverflow(file.size / recordSize)
            guard !overflow, !total.multipliedReportingOverflow(by: shape.count).overflow else {
                throw ReparoError.format("\(path): the batches together overflow the addressable size")
            }
        }

        let table = scaleTable(255)
        let recordsPerChunk = max(1, chunkBytes / recordSize)
        var labels = [Int32]()
        labels.reserveCapacity(total)
        let pixels = try [Float](unsafeUninitializedCapacity: total * shape.count) { buffer, initialized in
            var sample = 0
            for file in files {
                let records = file.size / recordSize
                var record = 0
                while record < records {
                    let chunk = min(recordsPerChunk, records - record)
                    let bytes = try file.bytes(at: record * recordSize, count: chunk * recordSize)
                    for r in 0..<chunk {
                        let base = r * recordSize
                        let label = bytes[base]
                        guard label < 10 else {
                            throw ReparoError.format(
                                "\(file.path): label \(label) of record \(record + r) is not below the 10 classes")
                        }
                        labels.append(Int32(label))
                        convert(bytes, from: base + 1, count: shape.count, table: table,
                                into: buffer, at: sample * shape.count)
                        sample += 1
                    }
                    record += chunk
                }
            }
            initialized = total * shape.count
        }
        return try Dataset(shape: shape, classes: 10, images: pixels, labels: labels)
    }

    /// Finds the bundled data directory: `$REPARO_DATA` if set and non-empty, else the first
    /// `data/` holding `digits-train-images.idx3-ubyte` found walking up from the current
    /// directory, then from the executable's directory. Returns nil if none is found.
    public static func locateBundledData() -> String? {
        if let value = getenv("REPARO_DATA") {
            let path = String(cString: value)
            if !path.isEmpty { return path }
        }
        for start in [currentDirectory(), executableDirectory(), libraryDirectory()] {
            guard var directory = start else { continue }
            while true {
                let candidate = join(directory, "data")
                if isRegularFile(join(candidate, digitsMarker)) { return candidate }
                guard let parent = parentDirectory(directory) else { break }
                directory = parent
            }
        }
        return nil
    }
}

// MARK: - IDX

/// Bytes read per call when converting pixels, so a large file needs no second full-size
/// byte buffer next to its Float array.
private let chunkBytes = 1 << 20

/// `Float(b) / scale` for every byte value: exact division, one lookup per pixel.
private func scaleTable(_ scale: Float) -> [Float] {
    (0..<256).map { Float($0) / scale }
}

/// `target[at + i] = table[bytes[from + i]]` for `i` in `0..<count`; callers keep both
/// ranges in bounds (checked once in debug builds).
@inline(__always)
private func convert(_ bytes: [UInt8], from: Int, count: Int, table: [Float],
                     into target: UnsafeMutableBufferPointer<Float>, at: Int) {
    assert(from >= 0 && from + count <= bytes.count && at >= 0 && at + count <= target.count)
    guard table.count == 256, let output = target.baseAddress else { return }
    bytes.withUnsafeBufferPointer { source in
        table.withUnsafeBufferPointer { lookup in
            guard let input = source.baseAddress, let values = lookup.baseAddress else { return }
            for i in 0..<count { output[at + i] = values[Int(input[from + i])] }
        }
    }
}

/// Checks an IDX header against `magic` (0x0000_08_0D: unsigned bytes, D dimensions) and the
/// file size, and returns the D dimensions. Rejects zero dimensions: such a file holds no
/// samples.
private func readIDXHeader(_ file: InputFile, magic: UInt32) throws -> [Int] {
    let path = file.path
    let rank = Int(magic & 0xFF)
    let headerSize = 4 + 4 * rank
    guard file.size > 0 else { throw ReparoError.format("\(path): empty file") }
    guard file.size >= 4 else {
        throw ReparoError.format("\(path): \(file.size) bytes is too short for an IDX header")
    }
    let found = bigEndianUInt32(try file.bytes(at: 0, count: 4), at: 0)
    if found != magic {
        if found >> 8 == magic >> 8 {
            throw ReparoError.format(
                "\(path): IDX magic 0x\(hex(found)) has \(found & 0xFF) dimensions, expected \(rank) (magic 0x\(hex(magic)))")
        }
        throw ReparoError.format("\(path): bad magic 0x\(hex(found)), expected 0x\(hex(magic)) (IDX, unsigned bytes, \(rank) dimensions)")
    }
    guard file.size >= headerSize else {
        throw ReparoError.format("\(path): \(file.size) bytes is too short for a \(rank)-dimension IDX header")
    }
    let header = try file.bytes(at: 4, count: 4 * rank)
    let dims = (0..<rank).map { Int(bigEndianUInt32(header, at: 4 * $0)) }
    guard !dims.contains(0) else {
        throw ReparoError.format("\(path): dimensions \(dims) hold no samples")
    }
    var expected = headerSize
    var overflow = false
    var payload = 1
    for d in dims where !overflow {
        (payload, overflow) = payload.multipliedReportingOverflow(by: d)
    }
    if !overflow { (expected, overflow) = payload.addingReportingOverflow(headerSize) }
    guard !overflow else {
        throw ReparoError.format("\(path): dimensions \(dims) overflow the addressable size")
    }
    guard expected == file.size else {
        throw ReparoError.format(
            "\(path): dimensions \(dims) need \(expected) bytes with the header, but the file has \(file.size)")
    }
    return dims
}

private func bigEndianUInt32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
    UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16
        | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
}

private func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16, uppercase: true)
    return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}

// MARK: - POSIX files

/// A regular file opened read-only, with its size known before any read; closed on deinit.
private final class InputFile {
    let path: String
    let size: Int
    private let descriptor: Int32

    init(path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw ReparoError.io("cannot open \(path): \(errorText())") }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let text = errorText()
            close(fd)
            throw ReparoError.io("cannot stat \(path): \(text)")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw ReparoError.io("\(path) is not a regular file")
        }
        self.path = path
        self.size = Int(info.st_size)
        self.descriptor = fd
    }

    deinit { close(descriptor) }

    /// Exactly `count` bytes from `offset`; the callers have checked that they lie inside
    /// `size`, so a short read means the file changed underneath us.
    func bytes(at offset: Int, count: Int) throws -> [UInt8] {
        guard offset >= 0, count >= 0, offset <= size, count <= size - offset else {
            throw ReparoError.format("\(path): read of \(count) bytes at \(offset) is past the end (\(size) bytes)")
        }
        return try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            var done = 0
            while done < count {
                let result = pread(descriptor, buffer.baseAddress.map { $0 + done }, count - done,
                                   off_t(offset + done))
                if result < 0 {
                    if errno == EINTR { continue }
                    throw ReparoError.io("cannot read \(path): \(errorText())")
                }
                if result == 0 {
                    throw ReparoError.io("\(path): unexpected end of file (it changed while being read?)")
                }
                done += result
            }
            initialized = count
        }
    }
}

private func errorText() -> String {
    guard let text = strerror(errno) else { return "errno \(errno)" }
    return String(cString: text)
}

private func fileMode(_ path: String) -> mode_t? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return info.st_mode & S_IFMT
}

private func isRegularFile(_ path: String) -> Bool { fileMode(path) == S_IFREG }

private func requireDirectory(_ path: String) throws {
    guard let mode = fileMode(path) else {
        throw ReparoError.io("dataset directory \(path) not found: \(errorText())")
    }
    guard mode == S_IFDIR else { throw ReparoError.io("\(path) is not a directory") }
}

private func join(_ directory: String, _ name: String) -> String {
    directory.hasSuffix("/") ? directory + name : directory + "/" + name
}

/// The directory above `path` (absolute), or nil at the root.
private func parentDirectory(_ path: String) -> String? {
    var trimmed = Substring(path)
    while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
    guard trimmed != "/", let slash = trimmed.lastIndex(of: "/") else { return nil }
    let parent = trimmed[..<slash]
    return parent.isEmpty ? "/" : String(parent)
}

private func currentDirectory() -> String? {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    guard getcwd(&buffer, buffer.count) != nil else { return nil }
    return String(cString: buffer)
}

/// The directory of the running executable (the test bundle under `swift test`).
/// Directory of a loaded libreparo.so (from /proc/self/maps), so a program embedding the
/// library outside the checkout still finds the data beside a library built in it.
private func libraryDirectory() -> String? {
    #if os(Linux)
    guard let file = fopen("/proc/self/maps", "r") else { return nil }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 4096)
    while fgets(&line, Int32(line.count), file) != nil {
        let text = String(cString: line).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasSuffix("/libreparo.so"), let slash = text.firstIndex(of: "/") else { continue }
        return parentDirectory(String(text[slash...]))
    }
    #endif
    return nil
}

private func executableDirectory() -> String? {
    var resolved: String?
    #if os(Linux)
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    if length > 0 {
        buffer[length] = 0
        resolved = String(cString: buffer)
    }
    #endif
    if resolved == nil, let argument = CommandLine.arguments.first,
       let absolute = realpath(argument, nil) {
        resolved = String(cString: absolute)
        free(absolute)
    }
    guard let path = resolved else { return nil }
    return parentDirectory(path)
}
