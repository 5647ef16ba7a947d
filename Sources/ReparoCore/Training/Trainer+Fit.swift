import Foundation

/// Epoch-level training over an in-memory dataset: shuffled mini-batches (seeded), one
/// `Trainer.step` each, and a progress report per step so callers can show or log it.
public struct FitProgress: Sendable {
    public var epoch: Int           // 1-based
    public var epochs: Int
    public var batchInEpoch: Int    // 1-based
    public var batchesPerEpoch: Int
    public var step: StepResultSummary
    /// Running means over the epoch so far.
    public var epochLoss: Double
    public var epochAccuracy: Double
    public var samplesPerSecond: Double
    public var elapsedSeconds: Double
    public var isEpochEnd: Bool { batchInEpoch == batchesPerEpoch }
    /// Estimated seconds left for the whole fit.
    public var remainingSeconds: Double {
        let done = Double((epoch - 1) * batchesPerEpoch + batchInEpoch)
        let total = Double(epochs * batchesPerEpoch)
        return done > 0 ? elapsedSeconds * (total - done) / done : 0
    }
}

public typealias StepResultSummary = Trainer.StepResult

extension Trainer {
    /// Trains for `epochs` passes over `dataset` in batches of `batchSize` (the last, smaller
    /// batch included), in `FitOrder`'s order. `progress` is called after every step; return
    /// false to stop early.
    public func fit(_ dataset: Dataset, epochs: Int, batchSize: Int, seed: UInt64,
                    progress: ((FitProgress) -> Bool)? = nil) throws {
        try dataset.images.withUnsafeBufferPointer { images in
            try dataset.labels.withUnsafeBufferPointer { labels in
                guard let imageBase = images.baseAddress, let labelBase = labels.baseAddress else {
                    throw ReparoError.invalidArgument("epochs, batch size and dataset must be non-empty")
                }
                try fit(images: imageBase, labels: labelBase, count: dataset.count, shape: dataset.shape,
                        epochs: epochs, batchSize: batchSize, seed: seed, progress: progress)
            }
        }
    }

    /// `fit` over a data set held elsewhere (the C API's datasets): `count` samples of `shape`
    /// at `images` (NCHW) and their labels, which the caller has checked to be in range.
    public func fit(images source: UnsafePointer<Float>, labels sourceLabels: UnsafePointer<Int32>, count total: Int,
                    shape: FeatureShape, epochs: Int, batchSize: Int, seed: UInt64,
                    progress: ((FitProgress) -> Bool)? = nil) throws {
        guard shape == student.inputShape else {
            throw ReparoError.invalidArgument("dataset images are \(shape) but the model takes \(student.inputShape)")
        }
        guard epochs >= 1, batchSize >= 1, total >= 1 else {
            throw ReparoError.invalidArgument("epochs, batch size and dataset must be non-empty")
        }
        let sample = shape.count
        let batch = min(batchSize, total)
        let batches = (total + batch - 1) / batch
        let images = try FloatBuffer(count: batch * sample)
        var labels = [Int32](repeating: 0, count: batch)
        var order = Array(0..<total)
        var shuffle = FitOrder(seed: seed)
        let start = Date()
        var seen = 0
        for epoch in 1...epochs {
            shuffle.advance(&order)
            var lossSum = 0.0, correct = 0.0, count = 0
            for b in 0..<batches {
                let lower = b * batch, upper = min(lower + batch, total)
                let size = upper - lower
                for (slot, index) in order[lower..<upper].enumerated() {
                    (images.pointer + slot * sample).update(from: source + index * sample, count: sample)
                    labels[slot] = sourceLabels[index]
                }
                let result = try labels.withUnsafeBufferPointer { labelBuffer -> Trainer.StepResult in
                    guard let labelBase = labelBuffer.baseAddress else { throw ReparoError.internalError("no labels") }
                    return try step(images: images.pointer, labels: labelBase, batch: size)
                }
                lossSum += result.loss * Double(size)
                correct += result.accuracy * Double(size)
                count += size
                seen += size
                let elapsed = Date().timeIntervalSince(start)
                let report = FitProgress(epoch: epoch, epochs: epochs, batchInEpoch: b + 1, batchesPerEpoch: batches,
                                         step: result, epochLoss: lossSum / Double(count),
                                         epochAccuracy: correct / Double(count),
                                         samplesPerSecond: elapsed > 0 ? Double(seen) / elapsed : 0,
                                         elapsedSeconds: elapsed)
                if let progress, !progress(report) { return }
            }
        }
    }
}
