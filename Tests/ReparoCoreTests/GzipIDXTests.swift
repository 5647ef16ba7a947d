import Foundation
import Testing
@testable import ReparoCore

// Gzip'd IDX files and the fashion-mnist kind. The gzip files are made by /bin/gzip (an
// independent compressor) from IDX bytes assembled here, so every expected value comes from
// the bytes written, never from the reader under test. The Fashion-MNIST checks run when the
// Debian package dataset-fashion-mnist is installed and are skipped (with a message) otherwise.

// MARK: - Helpers

/// Runs /bin/gzip with `arguments`; returns its standard output.
@discardableResult
private func runGzip(_ arguments: [String]) throws -> Data {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/gzip")
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()  // before waiting: no pipe deadlock
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw ReparoError.internalError("gzip \(arguments) exited with \(process.terminationStatus)")
    }
    return data
}

/// `bytes` compressed by /bin/gzip (-n: no name or time stamp in the header).
private func gzipped(_ bytes: [UInt8], in directory: ScratchDirectory) throws -> [UInt8] {
    let file = try directory.write("to-compress-\(UUID().uuidString)", bytes)
    defer { try? FileManager.default.removeItem(atPath: file) }
    return [UInt8](try runGzip(["-c", "-n", file]))
}

/// Bytes that deflate barely compresses (a linear congruential sequence), so that the gzip
/// file spans several of the reader's input chunks.
private func noise(_ count: Int, seed: UInt32) -> [UInt8] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 1_664_525 &+ 1_013_904_223
        return UInt8(state >> 24)
    }
}

private let fashionDirectory = DatasetCatalog.fashionMNISTDebianDirectory
private let fashionMNISTInstalled = ["train", "t10k"].allSatisfy { prefix in
    ["images-idx3", "labels-idx1"].allSatisfy {
        FileManager.default.fileExists(atPath: "\(fashionDirectory)/\(prefix)-\($0)-ubyte.gz")
    }
}
private let fashionSkipped: Comment =
    "Fashion-MNIST is not installed in \(fashionDirectory) (apt-get install dataset-fashion-mnist): skipped"

/// Mean and population std of all values, accumulated in Double.
private func statistics(_ values: [Float]) -> (mean: Double, std: Double) {
    values.withUnsafeBufferPointer { buffer in
        var sum = 0.0
        for value in buffer { sum += Double(value) }
        let mean = sum / Double(buffer.count)
        var squares = 0.0
        for value in buffer { squares += (Double(value) - mean) * (Double(value) - mean) }
        return (mean, (squares / Double(buffer.count)).squareRoot())
    }
}

private func labelCounts(_ labels: [Int32], classes: Int) -> [Int] {
    var counts = [Int](repeating: 0, count: classes)
    for label in labels { counts[Int(label)] += 1 }
    return counts
}

@Suite("Gzip'd IDX and Fashion-MNIST")
struct GzipDatasetTests {
    // MARK: Decoding

    @Test func gzipAndPlainGiveTheSameDataset() throws {
        let dir = try ScratchDirectory()
        // Small and compressible (one input chunk), and large and noisy: 3000 images of 20×20
        // are 1.2 MB, over one 1 MiB conversion chunk, and the gzip file spans several of
        // the reader's 64 KiB input chunks.
        for (count, height, width) in [(3, 2, 5), (3000, 20, 20)] {
            let pixels = count < 10 ? (0..<(count * height * width)).map { UInt8($0 * 17 % 256) }
                                    : noise(count * height * width, seed: 7)
            let labels = noise(count, seed: 11).map { $0 % 10 }
            let plainImages = try dir.write("img-\(count)", idxImages(count, height, width, payload: pixels))
            let plainLabels = try dir.write("lab-\(count)", idxLabels(labels))
            let gzImages = try dir.write("img-\(count).gz", gzipped(idxImages(count, height, width, payload: pixels), in: dir))
            let gzLabels = try dir.write("lab-\(count).gz", gzipped(idxLabels(labels), in: dir))

            let expectedImages = pixels.map { Float($0) / 255 }
            let expectedLabels = labels.map { Int32($0) }
            let plain = try DatasetReader.readIDX(images: plainImages, labels: plainLabels, pixelScale: 255)
            #expect(plain.images == expectedImages && plain.labels == expectedLabels)
            for (images, labels) in [(gzImages, gzLabels), (gzImages, plainLabels), (plainImages, gzLabels)] {
                let read = try DatasetReader.readIDX(images: images, labels: labels, pixelScale: 255)
                #expect(read.shape == FeatureShape(channels: 1, height: height, width: width))
                #expect(read.images == expectedImages, "\(images)")
                #expect(read.labels == expectedLabels, "\(labels)")
            }
        }
    }

    @Test func concatenatedMembersAreOneStream() throws {
        // `cat a.gz b.gz` is one gzip file (RFC 1952 §2.2); gzip -d reads it as a + b.
        let dir = try ScratchDirectory()
        let pixels = noise(4 * 3 * 3, seed: 3)
        let file = idxImages(4, 3, 3, payload: pixels)
        let split = 9  // inside the header: the dims straddle the two members
        let images = try dir.write("img.gz", gzipped(Array(file[..<split]), in: dir) + gzipped(Array(file[split...]), in: dir))
        #expect([UInt8](try runGzip(["-dc", images])) == file)  // the oracle agrees on the format
        let labels = try dir.write("lab", idxLabels([1, 2, 3, 4]))
        let read = try DatasetReader.readIDX(images: images, labels: labels, pixelScale: 255)
        #expect(read.images == pixels.map { Float($0) / 255 })
    }

    // MARK: Hostile gzip files

    /// A gzip'd image file built from the good one; each must be `.format` naming the file.
    struct HostileGzip: Sendable, CustomStringConvertible {
        var description: String
        var make: @Sendable (_ good: [UInt8], _ gzip: ([UInt8]) throws -> [UInt8]) throws -> [UInt8]
        var mention: String
    }

    static let goodPixels = noise(6 * 4 * 4, seed: 5)
    static let goodImages = idxImages(6, 4, 4, payload: goodPixels)

    static let hostile: [HostileGzip] = [
        HostileGzip(description: "empty file", make: { _, _ in [] }, mention: "empty"),
        HostileGzip(description: "plain IDX bytes under a .gz name", make: { good, _ in good }, mention: "gzip"),
        HostileGzip(description: "text under a .gz name", make: { _, _ in Array("not gzip at all\n".utf8) },
                    mention: "gzip"),
        HostileGzip(description: "gzip of nothing", make: { _, gzip in try gzip([]) }, mention: "empty"),
        HostileGzip(description: "gzip of a truncated header", make: { good, gzip in try gzip(Array(good.prefix(10))) },
                    mention: "short"),
        HostileGzip(description: "huge dims from a tiny file",
                    make: { _, gzip in try gzip(idx(magic: 0x0000_0803, dims: [60000, 10000, 10000], payload: [1, 2, 3])) },
                    mention: "1032"),
        HostileGzip(description: "dims product overflows",
                    make: { _, gzip in try gzip(idx(magic: 0x0000_0803, dims: [0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF], payload: [])) },
                    mention: "overflow"),
        HostileGzip(description: "zero samples",
                    make: { _, gzip in try gzip(idxImages(0, 4, 4, payload: [])) }, mention: "no samples"),
        HostileGzip(description: "wrong magic inside",
                    make: { good, gzip in try gzip([0, 0, 8, 1] + good.dropFirst(4)) }, mention: "magic"),
        HostileGzip(description: "payload shorter than declared (valid stream)",
                    make: { good, gzip in try gzip(Array(good.dropLast(5))) }, mention: "ends inside"),
        HostileGzip(description: "payload longer than declared (a lying header)",
                    make: { good, gzip in try gzip(good + [1]) }, mention: "holds more"),
        HostileGzip(description: "a second member after the declared payload",
                    make: { good, gzip in try gzip(good) + gzip([9, 9]) }, mention: "holds more"),
        HostileGzip(description: "garbage after the member",
                    make: { good, gzip in try gzip(good) + Array("trailing".utf8) }, mention: "gzip"),
        HostileGzip(description: "zeros after the member",
                    make: { good, gzip in try gzip(good) + [UInt8](repeating: 0, count: 16) }, mention: "gzip"),
        HostileGzip(description: "CRC-32 flipped",
                    make: { good, gzip in var z = try gzip(good); z[z.count - 8] ^= 0x01; return z }, mention: "gzip"),
        HostileGzip(description: "ISIZE trailer lies (claims 4 GiB - 1)",
                    make: { good, gzip in
                        var z = try gzip(good)
                        for i in (z.count - 4)..<z.count { z[i] = 0xFF }
                        return z
                    }, mention: "gzip"),
        HostileGzip(description: "gzip header flags byte corrupted",
                    make: { good, gzip in var z = try gzip(good); z[3] = 0xE0; return z }, mention: "gzip"),
    ] + [1, 2, 10, 20, 0.5, -9, -8, -4, -1].map { (cut: Double) in
        // Cut points: inside the gzip header, inside the deflate data, at the trailer
        // (-8: deflate complete, no CRC), inside the ISIZE field, one byte short.
        HostileGzip(description: "truncated at \(cut)", make: { good, gzip in
            let z = try gzip(good)
            let keep = cut > 0 && cut < 1 ? Int(Double(z.count) * cut) : cut < 0 ? z.count + Int(cut) : Int(cut)
            return Array(z.prefix(keep))
        }, mention: "truncated")
    }

    @Test(arguments: hostile)
    func hostileGzipIsAFormatErrorNamingTheFile(_ hostile: HostileGzip) throws {
        let dir = try ScratchDirectory()
        let bytes = try hostile.make(Self.goodImages) { try gzipped($0, in: dir) }
        let images = try dir.write("images.gz", bytes)
        let labels = try dir.write("labels", idxLabels([0, 1, 2, 3, 4, 5]))
        expectError(.format, mentioning: images) {
            try DatasetReader.readIDX(images: images, labels: labels, pixelScale: 255)
        }
        expectError(.format, mentioning: hostile.mention) {
            try DatasetReader.readIDX(images: images, labels: labels, pixelScale: 255)
        }
        // The same bytes as the label file: named as the culprit there too.
        let goodImages = try dir.write("good-images", Self.goodImages)
        let hostileLabels = try dir.write("labels.gz", bytes)
        expectError(.format, mentioning: hostileLabels) {
            try DatasetReader.readIDX(images: goodImages, labels: hostileLabels, pixelScale: 255)
        }
    }

    @Test func everyFlippedByteOfTheDeflateDataIsCaught() throws {
        // Whatever inverting a byte of the deflate data does (an invalid code or block, other
        // bytes that the CRC-32 catches, a different header or length), the result is a
        // .format error, never a dataset. Both a stored block (noise) and Huffman codes.
        let dir = try ScratchDirectory()
        let labels = try dir.write("labels", idxLabels([0, 1, 2, 3, 4, 5]))
        let compressible = idxImages(6, 4, 4, payload: (0..<96).map { UInt8($0 % 7 * 30) })
        for (name, file) in [("noise", Self.goodImages), ("compressible", compressible)] {
            let good = try gzipped(file, in: dir)
            // 10-byte header (gzip -n: no name), 8-byte trailer.
            for index in 10..<(good.count - 8) {
                var bytes = good
                bytes[index] ^= 0xFF
                let images = try dir.write("\(name)-\(index).gz", bytes)
                expectError(.format, mentioning: images) {
                    try DatasetReader.readIDX(images: images, labels: labels, pixelScale: 255)
                }
            }
        }
    }

    @Test func missingGzipFileIsIO() throws {
        let dir = try ScratchDirectory()
        let labels = try dir.write("labels", idxLabels([0]))
        expectError(.io, mentioning: dir.path + "/absent.gz") {
            try DatasetReader.readIDX(images: dir.path + "/absent.gz", labels: labels, pixelScale: 255)
        }
    }

    // MARK: MNIST file naming

    @Test func readMNISTPrefersThePlainFileThenTheGzippedOne() throws {
        let dir = try ScratchDirectory()
        try dir.write("train-images-idx3-ubyte.gz", gzipped(idxImages(2, 1, 2, payload: [0, 255, 51, 102]), in: dir))
        try dir.write("train-labels-idx1-ubyte.gz", gzipped(idxLabels([7, 1]), in: dir))
        let train = try DatasetReader.readMNIST(directory: dir.path, split: "train")
        #expect(train.labels == [7, 1])
        #expect(train.images == [0, 1, Float(51) / 255, Float(102) / 255])

        // With both present, the plain file is read.
        try dir.write("train-labels-idx1-ubyte", idxLabels([3, 4]))
        #expect(try DatasetReader.readMNIST(directory: dir.path, split: "train").labels == [3, 4])

        // Neither: .io naming the missing file.
        expectError(.io, mentioning: dir.path + "/t10k-images-idx3-ubyte") {
            try DatasetReader.readMNIST(directory: dir.path, split: "test")
        }
        try dir.write("t10k-images-idx3-ubyte", idxImages(1, 1, 2, payload: [1, 2]))
        expectError(.io, mentioning: dir.path + "/t10k-labels-idx1-ubyte") {
            try DatasetReader.readMNIST(directory: dir.path, split: "test")
        }
    }

    // MARK: The fashion-mnist kind

    @Test func fashionMNISTIsStandardizedWithTheTrainingStatistics() throws {
        let dir = try ScratchDirectory()
        let pixels: [UInt8] = [0, 255, 128, 7]
        try dir.write("t10k-images-idx3-ubyte.gz", gzipped(idxImages(1, 2, 2, payload: pixels), in: dir))
        try dir.write("t10k-labels-idx1-ubyte.gz", gzipped(idxLabels([9]), in: dir))
        let test = try DatasetCatalog.load(kind: "fashion-mnist", path: dir.path, split: "test")
        #expect(test.classes == 10 && test.labels == [9])
        // The published Fashion-MNIST statistics (pixels / 255): mean 0.2860, std 0.3530;
        // 1e-6: Float rounding of values below 3.
        let expected = pixels.map { (Double($0) / 255 - 0.28604060) / 0.35302424 }
        for (actual, wanted) in zip(test.images, expected) { #expect(abs(Double(actual) - wanted) < 1e-6) }
    }

    @Test func fashionMNISTMissingFilesSayHowToInstallThem() throws {
        let dir = try ScratchDirectory()
        let hint = "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or pass the directory"
        for path in [dir.path, dir.path + "/absent"] {
            expectError(.io, mentioning: path) { try DatasetCatalog.load(kind: "fashion-mnist", path: path, split: "train") }
            expectError(.io, mentioning: hint) { try DatasetCatalog.load(kind: "fashion-mnist", path: path, split: "train") }
        }
        expectError(.invalidArgument, mentioning: "val") {
            try DatasetCatalog.load(kind: "fashion-mnist", path: dir.path, split: "val")
        }
    }

    @Test func fashionMNISTDefaultDirectory() {
        // $REPARO_FASHION_MNIST (if set and non-empty) first, then the Debian directory.
        #expect(DatasetCatalog.fashionMNISTDirectory(override: "/data/fashion") == "/data/fashion")
        #expect(DatasetCatalog.fashionMNISTDirectory(override: "") == "/usr/share/datasets/fashion-mnist")
        #expect(DatasetCatalog.fashionMNISTDirectory(override: nil) == "/usr/share/datasets/fashion-mnist")
    }

    // MARK: The real Fashion-MNIST (Debian package dataset-fashion-mnist)

    @Test(.enabled(if: fashionMNISTInstalled, fashionSkipped))
    func fashionMNISTTrainingSplitAndItsStatistics() throws {
        let raw = try DatasetReader.readMNIST(directory: fashionDirectory, split: "train")
        #expect(raw.count == 60000)
        #expect(raw.shape == FeatureShape(channels: 1, height: 28, width: 28))
        #expect(raw.classes == 10)
        #expect(labelCounts(raw.labels, classes: 10) == [Int](repeating: 6000, count: 10))
        // The constants DatasetCatalog standardizes with, recomputed from the 47 M pixels.
        // 1e-6: both accumulate in Double; the constants are rounded to Float (~3e-8).
        let (mean, std) = statistics(raw.images)
        #expect(abs(mean - Double(DatasetCatalog.fashionMNISTMean)) < 1e-6, "mean \(mean)")
        #expect(abs(std - Double(DatasetCatalog.fashionMNISTStd)) < 1e-6, "std \(std)")

        let standardized = try DatasetCatalog.load(kind: "fashion-mnist", path: fashionDirectory, split: "train")
        #expect(standardized.labels == raw.labels)
        let after = statistics(standardized.images)
        // 1e-3, as asked of the kind; in fact the residue is Float rounding, about 1e-7.
        #expect(abs(after.mean) < 1e-3 && abs(after.std - 1) < 1e-3, "\(after)")
    }

    @Test(.enabled(if: fashionMNISTInstalled, fashionSkipped))
    func fashionMNISTTestSplitMatchesGzipDecoding() throws {
        let test = try DatasetReader.readMNIST(directory: fashionDirectory, split: "test")
        #expect(test.count == 10000)
        #expect(test.shape == FeatureShape(channels: 1, height: 28, width: 28))
        #expect(labelCounts(test.labels, classes: 10) == [Int](repeating: 1000, count: 10))
        // Against /bin/gzip's decoding of the same files, past the 16- and 8-byte headers.
        let images = [UInt8](try runGzip(["-dc", fashionDirectory + "/t10k-images-idx3-ubyte.gz"]))
        let labels = [UInt8](try runGzip(["-dc", fashionDirectory + "/t10k-labels-idx1-ubyte.gz"]))
        #expect(images.count == 16 + 10000 * 784 && labels.count == 8 + 10000)
        #expect(test.images == images.dropFirst(16).map { Float($0) / 255 })
        #expect(test.labels == labels.dropFirst(8).map { Int32($0) })
    }
}
