/// An in-memory labelled image set, NCHW Float32.
///
/// Sample `i` occupies `images[i * shape.count ..< (i + 1) * shape.count]` in `[C, H, W]`
/// order; its class is `labels[i]`. The initializer checks these invariants, so code that
/// takes a `Dataset` can index it without further checks.
public struct Dataset: Sendable {
    /// Per-sample `[C, H, W]`.
    public var shape: FeatureShape
    public var classes: Int
    /// `count * shape.count` values.
    public var images: [Float]
    /// `count` values in `0..<classes`.
    public var labels: [Int32]

    public var count: Int { labels.count }

    /// Throws `.invalidArgument` if a dimension or `classes` is not positive, if `images` does
    /// not hold exactly `labels.count * shape.count` values, or if a label is outside
    /// `0..<classes`.
    public init(shape: FeatureShape, classes: Int, images: [Float], labels: [Int32]) throws {
        guard shape.channels > 0, shape.height > 0, shape.width > 0 else {
            throw ReparoError.invalidArgument("dataset sample shape \(shape) must be positive in every dimension")
        }
        guard classes > 0, classes <= Int(Int32.max) else {
            throw ReparoError.invalidArgument("dataset classes must be positive, got \(classes)")
        }
        let (expected, overflow) = labels.count.multipliedReportingOverflow(by: shape.count)
        guard !overflow, images.count == expected else {
            throw ReparoError.invalidArgument(
                "dataset holds \(images.count) image values, expected \(labels.count) samples × \(shape.count)")
        }
        if let bad = labels.firstIndex(where: { $0 < 0 || Int($0) >= classes }) {
            throw ReparoError.invalidArgument(
                "dataset label \(labels[bad]) at sample \(bad) is outside 0..<\(classes)")
        }
        self.shape = shape
        self.classes = classes
        self.images = images
        self.labels = labels
    }

    /// Builds without checking; for code in this file that preserves the invariants itself.
    private init(unchecked shape: FeatureShape, classes: Int, images: [Float], labels: [Int32]) {
        self.shape = shape
        self.classes = classes
        self.images = images
        self.labels = labels
    }

    /// Per-channel mean and (population) standard deviation over all images.
    ///
    /// Accumulates in Double, two passes, so that 50 000 CIFAR images do not lose digits.
    /// An empty dataset gives zeros.
    public func channelStatistics() -> (mean: [Float], std: [Float]) {
        let channels = shape.channels
        let plane = shape.spatial
        let values = Double(count * plane)
        guard count > 0, plane > 0 else {
            return ([Float](repeating: 0, count: channels), [Float](repeating: 0, count: channels))
        }
        var mean = [Double](repeating: 0, count: channels)
        var variance = [Double](repeating: 0, count: channels)
        images.withUnsafeBufferPointer { buffer in
            guard let x = buffer.baseAddress else { return }
            for c in 0..<channels {
                var sum = 0.0
                for n in 0..<count {
                    let base = (n * channels + c) * plane
                    for i in 0..<plane { sum += Double(x[base + i]) }
                }
                let m = sum / values
                var squares = 0.0
                for n in 0..<count {
                    let base = (n * channels + c) * plane
                    for i in 0..<plane {
                        let d = Double(x[base + i]) - m
                        squares += d * d
                    }
                }
                mean[c] = m
                variance[c] = squares / values
            }
        }
        return (mean.map { Float($0) }, variance.map { Float($0.squareRoot()) })
    }

    /// Returns a copy with `(x - mean[c]) / std[c]` applied per channel (std 0 treated as 1,
    /// so a constant channel becomes 0 instead of NaN).
    ///
    /// Throws `.invalidArgument` if either array's length is not `shape.channels` or a value is
    /// not finite or a std is negative.
    public func standardized(mean: [Float], std: [Float]) throws -> Dataset {
        let channels = shape.channels
        guard mean.count == channels, std.count == channels else {
            throw ReparoError.invalidArgument(
                "standardize needs \(channels) means and stds, got \(mean.count) and \(std.count)")
        }
        guard mean.allSatisfy({ $0.isFinite }), std.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
            throw ReparoError.invalidArgument("standardize needs finite means and finite, non-negative stds")
        }
        let scale = std.map { $0 == 0 ? Float(1) : 1 / $0 }
        let plane = shape.spatial
        let total = images.count
        let result = images.withUnsafeBufferPointer { source in
            [Float](unsafeUninitializedCapacity: total) { target, initialized in
                guard let x = source.baseAddress, let y = target.baseAddress else { return }
                for n in 0..<count {
                    for c in 0..<channels {
                        let base = (n * channels + c) * plane
                        let m = mean[c], s = scale[c]
                        for i in base..<(base + plane) { y[i] = (x[i] - m) * s }
                    }
                }
                initialized = total
            }
        }
        return Dataset(unchecked: shape, classes: classes, images: result, labels: labels)
    }

    /// The first `min(n, count)` samples (none if `n <= 0`).
    public func prefix(_ n: Int) -> Dataset {
        let kept = Swift.max(0, Swift.min(n, count))
        return Dataset(unchecked: shape, classes: classes,
                       images: Array(images[0..<(kept * shape.count)]),
                       labels: Array(labels[0..<kept]))
    }

    /// The samples at `indices`, in that order (repeats allowed). Throws `.invalidArgument`
    /// for an index outside `0..<count`.
    public func subset(_ indices: [Int]) throws -> Dataset {
        if let bad = indices.first(where: { $0 < 0 || $0 >= count }) {
            throw ReparoError.invalidArgument("subset index \(bad) is outside 0..<\(count)")
        }
        let sample = shape.count
        var newImages = [Float]()
        newImages.reserveCapacity(indices.count * sample)
        var newLabels = [Int32]()
        newLabels.reserveCapacity(indices.count)
        for index in indices {
            newImages.append(contentsOf: images[(index * sample)..<((index + 1) * sample)])
            newLabels.append(labels[index])
        }
        return Dataset(unchecked: shape, classes: classes, images: newImages, labels: newLabels)
    }
}
