#if canImport(Glibc)
import Foundation
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Readers for the image formats Reparo trains on: MNIST-style IDX, plain or gzipped (the
/// bundled digits, MNIST, Fashion-MNIST) and the CIFAR-10 binary batches.
///
/// Every header is checked against the file's size (a gzip file's: 1032 times it, deflate's
/// largest expansion) before anything sized by the header is allocated, so a corrupt or
/// hostile file costs an error, never a trap or a huge allocation: `.io` for files or
/// directories that cannot be opened, `.format` (naming the file) for bad contents,
/// `.invalidArgument` for an unknown split or a bad parameter.
public enum DatasetReader {
    /// File names of the bundled digits inside the directory `locateBundledData()` returns.
    static let digitsMarker = "digits-train-images.idx3-ubyte"

    /// Reads an IDX image file (magic 0x00000803: uint8, dims N, H, W, big-endian) and its
    /// label file (magic 0x00000801: uint8, dim N) into a `[1, H, W]` dataset, pixels divided
    /// by `pixelScale` (255 for MNIST, 16 for the digits). A path ending in ".gz" is a gzip
    /// file, inflated as it is read (`GzipFile`); either file may be one.
    public static func readIDX(images: String, labels: String, pixelScale: Float,
                               classes: Int = 10) throws -> Dataset {
        guard pixelScale.isFinite, pixelScale > 0 else {
            throw ReparoError.invalidArgument("pixelScale must be finite and positive, got \(pixelScale)")
        }
        guard classes > 0 else {
            throw ReparoError.invalidArgument("classes must be positive, got \(classes)")
        }
        let imageFile = try openByteStream(images)
        let labelFile = try openByteStream(labels)
        let imageHeader = try IDXHeader(from: imageFile, magic: 0x0000_0803)
        let labelHeader = try IDXHeader(from: labelFile, magic: 0x0000_0801)
        let (count, height, width) = (imageHeader.dims[0], imageHeader.dims[1], imageHeader.dims[2])
        guard labelHeader.dims[0] == count else {
            throw ReparoError.format(
                "\(images) holds \(count) images but \(labels) holds \(labelHeader.dims[0]) labels")
        }

        let labelBytes = try labelFile.read(exactly: count, declared: labelHeader.declaredPayload)
        try labelFile.expectEnd(declared: labelHeader.declaredPayload)
        var labelValues = [Int32]()
        labelValues.reserveCapacity(count)
        for (index, byte) in labelBytes.enumerated() {
            guard Int(byte) < classes else {
                throw ReparoError.format(
                    "\(labels): label \(byte) of sample \(index) is not below the \(classes) classes")
            }
            labelValues.append(Int32(byte))
        }

        // Checked against what the file can hold by IDXHeader, so the allocation is bounded by
        // the file's size (its size exactly, or 1032 times it for gzip).
        let pixelCount = imageHeader.payloadCount
        let table = scaleTable(pixelScale)
        let pixels = try [Float](unsafeUninitializedCapacity: pixelCount) { buffer, initialized in
            var done = 0
            while done < pixelCount {
                let chunk = min(chunkBytes, pixelCount - done)
                let bytes = try imageFile.read(exactly: chunk, declared: imageHeader.declaredPayload)
                convert(bytes, from: 0, count: chunk, table: table, into: buffer, at: done)
                done += chunk
            }
            initialized = pixelCount
        }
        try imageFile.expectEnd(declared: imageHeader.declaredPayload)
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

    /// MNIST, or Fashion-MNIST, which keeps its file names: `directory` holds
    /// `train-images-idx3-ubyte`, `train-labels-idx1-ubyte` ("train") and
    /// `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte` ("test"), each as it is or gzipped
    /// (`<name>.gz`, read when `<name>` is absent). Pixels are divided by 255.
    public static func readMNIST(directory: String, split: String) throws -> Dataset {
        let prefix: String
        switch split {
        case "train": prefix = "train"
        case "test": prefix = "t10k"
        default:
            throw ReparoError.invalidArgument("unknown MNIST split \"\(split)\": use \"train\" or \"test\"")
        }
        try requireDirectory(directory)
        return try readIDX(images: try plainOrGzipped(join(directory, "\(prefix)-images-idx3-ubyte")),
                           labels: try plainOrGzipped(join(directory, "\(prefix)-labels-idx1-ubyte")),
                           pixelScale: 255, classes: 10)
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

// MARK: - POSIX files

private func fileMode(_ path: String) -> mode_t? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return info.st_mode & S_IFMT
}

private func isRegularFile(_ path: String) -> Bool { fileMode(path) == S_IFREG }

/// `path` if it exists, else `path.gz` if that does (anything else at `path`, such as a
/// directory, is left for the reader to refuse by name).
private func plainOrGzipped(_ path: String) throws -> String {
    if fileMode(path) != nil { return path }
    if fileMode(path + ".gz") != nil { return path + ".gz" }
    throw ReparoError.io("\(path) not found (nor \(path).gz)")
}

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
