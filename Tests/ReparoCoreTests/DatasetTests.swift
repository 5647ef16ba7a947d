import Foundation
import Testing
@testable import ReparoCore

// The files these tests read are assembled byte by byte here, following the published
// formats (IDX: http://yann.lecun.com/exdb/mnist/, CIFAR-10 binary:
// https://www.cs.toronto.edu/~kriz/cifar.html), so the expected values never come from the
// readers under test.

// MARK: - Helpers (the IDX builders, ScratchDirectory and expectError are in DatasetFixtures.swift)

/// A CIFAR-10 record: label byte, then the R, G and B planes (1024 bytes each).
private func cifarRecord(label: UInt8, red: [UInt8], green: [UInt8], blue: [UInt8]) -> [UInt8] {
    [label] + red + green + blue
}

/// A 32×32 plane whose pixel (y, x) is `(seed + 7y + 3x) mod 256`.
private func plane(_ seed: Int) -> [UInt8] {
    (0..<1024).map { UInt8((seed + 7 * ($0 / 32) + 3 * ($0 % 32)) % 256) }
}

/// Per-channel mean and population std by the most naive loop, in Double.
private func naiveChannelStatistics(_ dataset: Dataset) -> (mean: [Double], std: [Double]) {
    let c = dataset.shape.channels, plane = dataset.shape.height * dataset.shape.width
    var mean = [Double](repeating: 0, count: c), std = [Double](repeating: 0, count: c)
    for channel in 0..<c {
        var values: [Double] = []
        for n in 0..<dataset.count {
            for i in 0..<plane { values.append(Double(dataset.images[(n * c + channel) * plane + i])) }
        }
        let m = values.reduce(0, +) / Double(values.count)
        mean[channel] = m
        std[channel] = (values.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(values.count)).squareRoot()
    }
    return (mean, std)
}

// MARK: - IDX

@Suite("Dataset readers")
struct DatasetTests {
    @Test func readIDXScalesPixelsAndKeepsLabels() throws {
        let dir = try ScratchDirectory()
        // Three 2×3 images; pixel k of image n is 16 - (n * 6 + k) % 17.
        let pixels: [UInt8] = (0..<18).map { UInt8(16 - $0 % 17) }
        let images = try dir.write("img", idxImages(3, 2, 3, payload: pixels))
        let labels = try dir.write("lab", idxLabels([2, 0, 9]))

        let digits = try DatasetReader.readIDX(images: images, labels: labels, pixelScale: 16)
        #expect(digits.shape == FeatureShape(channels: 1, height: 2, width: 3))
        #expect(digits.classes == 10)
        #expect(digits.count == 3)
        #expect(digits.labels == [2, 0, 9])
        #expect(digits.images == pixels.map { Float($0) / 16 })

        let mnistStyle = try DatasetReader.readIDX(images: images, labels: labels, pixelScale: 255, classes: 12)
        #expect(mnistStyle.classes == 12)
        #expect(mnistStyle.images == pixels.map { Float($0) / 255 })
    }

    @Test func readIDXRejectsBadParameters() throws {
        let dir = try ScratchDirectory()
        let images = try dir.write("img", idxImages(1, 1, 1, payload: [3]))
        let labels = try dir.write("lab", idxLabels([0]))
        expectError(.invalidArgument, mentioning: "pixelScale") {
            try DatasetReader.readIDX(images: images, labels: labels, pixelScale: 0)
        }
        expectError(.invalidArgument, mentioning: "pixelScale") {
            try DatasetReader.readIDX(images: images, labels: labels, pixelScale: .nan)
        }
        expectError(.invalidArgument, mentioning: "classes") {
            try DatasetReader.readIDX(images: images, labels: labels, pixelScale: 1, classes: 0)
        }
    }

    /// One malformed image or label file per case; each must be `.format` naming that file.
    struct MalformedIDX: Sendable, CustomStringConvertible {
        var description: String
        var images: [UInt8]
        var labels: [UInt8]
        /// "img" or "lab": the file the message must name.
        var culprit: String
        var mention: String
    }

    static let goodImages = idxImages(2, 2, 2, payload: [0, 1, 2, 3, 4, 5, 6, 7])
    static let goodLabels = idxLabels([1, 3])

    static let malformedIDX: [MalformedIDX] = [
        MalformedIDX(description: "image magic of another format",
                     images: [0x1F, 0x8B, 0x08, 0x03] + Array(goodImages.dropFirst(4)),
                     labels: goodLabels, culprit: "img", mention: "magic"),
        MalformedIDX(description: "label file given as images (wrong dims count)",
                     images: goodLabels, labels: goodLabels, culprit: "img", mention: "dimensions"),
        MalformedIDX(description: "images given as labels (wrong dims count)",
                     images: goodImages, labels: goodImages, culprit: "lab", mention: "dimensions"),
        MalformedIDX(description: "int32 element type",
                     images: [0, 0, 0x0C, 3] + Array(goodImages.dropFirst(4)),
                     labels: goodLabels, culprit: "img", mention: "magic"),
        MalformedIDX(description: "dims product overflows",
                     images: idx(magic: 0x0000_0803, dims: [0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF],
                                 payload: [1, 2, 3]),
                     labels: goodLabels, culprit: "img", mention: "overflow"),
        MalformedIDX(description: "huge dims on a small file",
                     images: idx(magic: 0x0000_0803, dims: [60000, 4096, 4096], payload: [1, 2, 3]),
                     labels: goodLabels, culprit: "img", mention: "bytes"),
        MalformedIDX(description: "truncated image payload",
                     images: Array(goodImages.dropLast()), labels: goodLabels, culprit: "img", mention: "bytes"),
        MalformedIDX(description: "trailing bytes after images",
                     images: goodImages + [9], labels: goodLabels, culprit: "img", mention: "bytes"),
        MalformedIDX(description: "truncated label payload",
                     images: goodImages, labels: Array(goodLabels.dropLast()), culprit: "lab", mention: "bytes"),
        MalformedIDX(description: "truncated header",
                     images: Array(goodImages.prefix(10)), labels: goodLabels, culprit: "img", mention: "short"),
        MalformedIDX(description: "header shorter than the magic",
                     images: [0, 0], labels: goodLabels, culprit: "img", mention: "short"),
        MalformedIDX(description: "zero samples",
                     images: idxImages(0, 2, 2, payload: []), labels: idxLabels([]),
                     culprit: "img", mention: "no samples"),
        MalformedIDX(description: "image and label counts differ",
                     images: goodImages, labels: idxLabels([1, 3, 5]), culprit: "lab", mention: "labels"),
        MalformedIDX(description: "label not below classes",
                     images: goodImages, labels: idxLabels([1, 10]), culprit: "lab", mention: "label 10"),
        MalformedIDX(description: "empty image file",
                     images: [], labels: goodLabels, culprit: "img", mention: "empty"),
        MalformedIDX(description: "empty label file",
                     images: goodImages, labels: [], culprit: "lab", mention: "empty"),
    ]

    @Test(arguments: malformedIDX)
    func readIDXRejectsMalformedFile(_ malformed: MalformedIDX) throws {
        let dir = try ScratchDirectory()
        let images = try dir.write("img", malformed.images)
        let labels = try dir.write("lab", malformed.labels)
        let culprit = malformed.culprit == "img" ? images : labels
        expectError(.format, mentioning: culprit) {
            try DatasetReader.readIDX(images: images, labels: labels, pixelScale: 255)
        }
        expectError(.format, mentioning: malformed.mention) {
            try DatasetReader.readIDX(images: images, labels: labels, pixelScale: 255)
        }
    }

    @Test func readIDXReportsMissingOrUnreadableFilesAsIO() throws {
        let dir = try ScratchDirectory()
        let labels = try dir.write("lab", Self.goodLabels)
        expectError(.io, mentioning: dir.path + "/nothing") {
            try DatasetReader.readIDX(images: dir.path + "/nothing", labels: labels, pixelScale: 255)
        }
        expectError(.io, mentioning: "regular file") {
            try DatasetReader.readIDX(images: dir.path, labels: labels, pixelScale: 255)
        }
    }

    // MARK: MNIST and digits file naming

    @Test func readMNISTUsesTheStandardNames() throws {
        let dir = try ScratchDirectory()
        try dir.write("train-images-idx3-ubyte", idxImages(2, 1, 2, payload: [0, 255, 51, 102]))
        try dir.write("train-labels-idx1-ubyte", idxLabels([7, 1]))
        try dir.write("t10k-images-idx3-ubyte", idxImages(1, 1, 2, payload: [255, 0]))
        try dir.write("t10k-labels-idx1-ubyte", idxLabels([4]))

        let train = try DatasetReader.readMNIST(directory: dir.path, split: "train")
        #expect(train.labels == [7, 1])
        #expect(train.images == [0, 1, Float(51) / 255, Float(102) / 255])
        let test = try DatasetReader.readMNIST(directory: dir.path + "/", split: "test")
        #expect(test.labels == [4])
        #expect(test.images == [1, 0])

        expectError(.invalidArgument, mentioning: "validation") {
            try DatasetReader.readMNIST(directory: dir.path, split: "validation")
        }
    }

    @Test func readersReportMissingDirectoryAsIO() throws {
        let dir = try ScratchDirectory()
        let missing = dir.path + "/absent"
        let file = try dir.write("plain", [1, 2, 3])
        for directory in [missing, file] {
            expectError(.io, mentioning: directory) { try DatasetReader.readMNIST(directory: directory, split: "train") }
            expectError(.io, mentioning: directory) { try DatasetReader.readDigits(directory: directory, split: "test") }
            expectError(.io, mentioning: directory) { try DatasetReader.readCIFAR10(directory: directory, split: "train") }
        }
    }

    @Test func readDigitsRejectsUnknownSplit() throws {
        let dir = try ScratchDirectory()
        expectError(.invalidArgument, mentioning: "Train") {
            try DatasetReader.readDigits(directory: dir.path, split: "Train")
        }
    }

    // MARK: CIFAR-10

    @Test func readCIFAR10KeepsChannelPlanesInOrder() throws {
        let dir = try ScratchDirectory()
        let first = cifarRecord(label: 3, red: plane(0), green: plane(100), blue: plane(200))
        let second = cifarRecord(label: 9, red: plane(17), green: plane(0),
                                 blue: [UInt8](repeating: 255, count: 1024))
        try dir.write("test_batch.bin", first + second)

        let test = try DatasetReader.readCIFAR10(directory: dir.path, split: "test")
        #expect(test.shape == FeatureShape(channels: 3, height: 32, width: 32))
        #expect(test.classes == 10)
        #expect(test.labels == [3, 9])
        // NCHW index of (n, c, y, x) is ((n·3 + c)·32 + y)·32 + x.
        func pixel(_ n: Int, _ c: Int, _ y: Int, _ x: Int) -> Float {
            test.images[((n * 3 + c) * 32 + y) * 32 + x]
        }
        #expect(pixel(0, 0, 0, 0) == 0)
        #expect(pixel(0, 0, 1, 2) == Float(13) / 255)             // 7·1 + 3·2
        #expect(pixel(0, 1, 0, 1) == Float(103) / 255)            // green plane, seed 100
        #expect(pixel(0, 2, 31, 31) == Float((200 + 217 + 93) % 256) / 255)
        #expect(pixel(1, 0, 0, 0) == Float(17) / 255)
        #expect(pixel(1, 2, 5, 7) == 1)
        let expected = (first.dropFirst() + second.dropFirst()).map { Float($0) / 255 }
        #expect(test.images == expected)
    }

    @Test func readCIFAR10TrainConcatenatesTheBatchesPresent() throws {
        let dir = try ScratchDirectory()
        let a = cifarRecord(label: 0, red: plane(1), green: plane(2), blue: plane(3))
        let b = cifarRecord(label: 5, red: plane(4), green: plane(5), blue: plane(6))
        let c = cifarRecord(label: 8, red: plane(7), green: plane(8), blue: plane(9))
        try dir.write("data_batch_3.bin", c)
        try dir.write("data_batch_1.bin", a + b)

        let train = try DatasetReader.readCIFAR10(directory: dir.path, split: "train")
        #expect(train.labels == [0, 5, 8])
        #expect(train.images == (a.dropFirst() + b.dropFirst() + c.dropFirst()).map { Float($0) / 255 })

        expectError(.io, mentioning: "test_batch.bin") {
            try DatasetReader.readCIFAR10(directory: dir.path, split: "test")
        }
        expectError(.invalidArgument, mentioning: "val") {
            try DatasetReader.readCIFAR10(directory: dir.path, split: "val")
        }
    }

    @Test func readCIFAR10RejectsMalformedBatches() throws {
        let record = cifarRecord(label: 1, red: plane(0), green: plane(1), blue: plane(2))

        let empty = try ScratchDirectory()
        try empty.write("test_batch.bin", [])
        expectError(.format, mentioning: "empty") { try DatasetReader.readCIFAR10(directory: empty.path, split: "test") }

        let ragged = try ScratchDirectory()
        try ragged.write("data_batch_2.bin", record + record.prefix(100))
        expectError(.format, mentioning: "data_batch_2.bin") {
            try DatasetReader.readCIFAR10(directory: ragged.path, split: "train")
        }
        expectError(.format, mentioning: "3073") {
            try DatasetReader.readCIFAR10(directory: ragged.path, split: "train")
        }

        let badLabel = try ScratchDirectory()
        try badLabel.write("test_batch.bin", record + [10] + record.dropFirst())
        expectError(.format, mentioning: "label 10") {
            try DatasetReader.readCIFAR10(directory: badLabel.path, split: "test")
        }

        let noBatches = try ScratchDirectory()
        try noBatches.write("test_batch.bin", record)
        expectError(.io, mentioning: "data_batch_1.bin") {
            try DatasetReader.readCIFAR10(directory: noBatches.path, split: "train")
        }
    }

    // MARK: The bundled digits

    @Test func bundledDigitsLoad() throws {
        let directory = try #require(DatasetReader.locateBundledData(),
                                     "data/digits-*.idx*-ubyte not found (set REPARO_DATA or run from the package)")
        let train = try DatasetReader.readDigits(directory: directory, split: "train")
        let test = try DatasetReader.readDigits(directory: directory, split: "test")
        #expect(train.count == 1438)
        #expect(test.count == 359)
        #expect(train.count + test.count == 1797)
        for split in [train, test] {
            #expect(split.classes == 10)
            #expect(split.shape == FeatureShape(channels: 1, height: 8, width: 8))
            #expect(split.images.count == split.count * 64)
            #expect(split.images.allSatisfy { $0 >= 0 && $0 <= 1 })
            #expect(split.images.contains(1))  // 16/16: the raw range reaches the top
            #expect(Set(split.labels) == Set(0..<10))
            // Pixels are k/16 exactly.
            #expect(split.images.allSatisfy { ($0 * 16).rounded() == $0 * 16 })
        }
    }

    @Test func locateBundledDataWalksUpFromTheWorkingDirectory() throws {
        // With REPARO_DATA set the walk is skipped; check the walk itself only when it applies.
        guard ProcessInfo.processInfo.environment["REPARO_DATA"] == nil else { return }
        let found = try #require(DatasetReader.locateBundledData())
        #expect(found.hasSuffix("/data"))
        #expect(FileManager.default.fileExists(atPath: found + "/digits-test-labels.idx1-ubyte"))
    }

    // MARK: Dataset

    @Test func standardizedDigitsHaveZeroMeanUnitStd() throws {
        let directory = try #require(DatasetReader.locateBundledData())
        let train = try DatasetReader.readDigits(directory: directory, split: "train")
        let (mean, std) = train.channelStatistics()
        let naive = naiveChannelStatistics(train)
        // Both accumulate in Double; only the final rounding to Float differs.
        #expect(abs(Double(mean[0]) - naive.mean[0]) < 1e-6)
        #expect(abs(Double(std[0]) - naive.std[0]) < 1e-6)

        let standardized = try train.standardized(mean: mean, std: std)
        let after = naiveChannelStatistics(standardized)
        // 1e-4: Float rounding of ~92k values of magnitude < 10, far below this.
        #expect(abs(after.mean[0]) < 1e-4)
        #expect(abs(after.std[0] - 1) < 1e-4)
        #expect(standardized.labels == train.labels)
        #expect(standardized.shape == train.shape)
    }

    @Test func standardizedWorksPerChannelAndTreatsZeroStdAsOne() throws {
        // 4 samples of [3, 2, 2]: channel 0 ramps, channel 1 is constant 5, channel 2 alternates.
        var images = [Float]()
        for n in 0..<4 {
            images += (0..<4).map { Float(n * 4 + $0) }
            images += [5, 5, 5, 5]
            images += (0..<4).map { Float(($0 + n) % 2 == 0 ? -3 : 7) }
        }
        let data = try Dataset(shape: FeatureShape(channels: 3, height: 2, width: 2), classes: 2,
                               images: images, labels: [0, 1, 1, 0])
        let (mean, std) = data.channelStatistics()
        let naive = naiveChannelStatistics(data)
        for c in 0..<3 {
            #expect(abs(Double(mean[c]) - naive.mean[c]) < 1e-5)
            #expect(abs(Double(std[c]) - naive.std[c]) < 1e-5)
        }
        #expect(std[1] == 0)
        // Closed form: channel 0 is 0…15 (mean 7.5, variance (16² − 1)/12); channel 2 is ±5 around 2.
        #expect(abs(mean[0] - 7.5) < 1e-6 && abs(std[0] - Float((255.0 / 12).squareRoot())) < 1e-5)
        #expect(abs(mean[2] - 2) < 1e-6 && abs(std[2] - 5) < 1e-6)

        let standardized = try data.standardized(mean: mean, std: std)
        let after = naiveChannelStatistics(standardized)
        for c in [0, 2] {
            #expect(abs(after.mean[c]) < 1e-4)
            #expect(abs(after.std[c] - 1) < 1e-4)
        }
        // Constant channel: x − mean = 0, divided by 1, not NaN.
        #expect(after.mean[1] == 0 && after.std[1] == 0)

        expectError(.invalidArgument, mentioning: "3 means") { try data.standardized(mean: [0], std: [1]) }
        expectError(.invalidArgument, mentioning: "finite") {
            try data.standardized(mean: [0, 0, .nan], std: [1, 1, 1])
        }
        expectError(.invalidArgument, mentioning: "non-negative") {
            try data.standardized(mean: [0, 0, 0], std: [1, -1, 1])
        }
    }

    @Test func datasetInitValidates() throws {
        let shape = FeatureShape(channels: 1, height: 1, width: 2)
        expectError(.invalidArgument, mentioning: "image values") {
            try Dataset(shape: shape, classes: 3, images: [0, 1, 2], labels: [0, 1])
        }
        expectError(.invalidArgument, mentioning: "label 3") {
            try Dataset(shape: shape, classes: 3, images: [0, 1, 2, 3], labels: [0, 3])
        }
        expectError(.invalidArgument, mentioning: "label -1") {
            try Dataset(shape: shape, classes: 3, images: [0, 1, 2, 3], labels: [-1, 0])
        }
        expectError(.invalidArgument, mentioning: "classes") {
            try Dataset(shape: shape, classes: 0, images: [], labels: [])
        }
        expectError(.invalidArgument, mentioning: "shape") {
            try Dataset(shape: FeatureShape(channels: 0, height: 1, width: 1), classes: 1, images: [], labels: [])
        }
        let empty = try Dataset(shape: shape, classes: 3, images: [], labels: [])
        #expect(empty.count == 0)
        #expect(empty.channelStatistics().mean == [0])
    }

    @Test func prefixAndSubsetCopySamples() throws {
        let shape = FeatureShape(channels: 1, height: 1, width: 2)
        let data = try Dataset(shape: shape, classes: 4, images: [0, 1, 10, 11, 20, 21, 30, 31],
                               labels: [0, 1, 2, 3])
        #expect(data.prefix(2).images == [0, 1, 10, 11])
        #expect(data.prefix(2).labels == [0, 1])
        #expect(data.prefix(99).count == 4)
        #expect(data.prefix(-1).count == 0)
        #expect(data.prefix(0).images.isEmpty)

        let picked = try data.subset([3, 0, 3])
        #expect(picked.images == [30, 31, 0, 1, 30, 31])
        #expect(picked.labels == [3, 0, 3])
        #expect(picked.classes == 4 && picked.shape == shape)
        expectError(.invalidArgument, mentioning: "4") { try data.subset([1, 4]) }
        expectError(.invalidArgument, mentioning: "-1") { try data.subset([-1]) }
    }
}
