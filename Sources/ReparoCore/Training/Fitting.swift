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
    /// batch included). `progress` is called after every step; return false to stop early.
    public func fit(_ dataset: Dataset, epochs: Int, batchSize: Int, seed: UInt64,
                    progress: ((FitProgress) -> Bool)? = nil) throws {
        guard dataset.shape == student.inputShape else {
            throw ReparoError.invalidArgument("dataset images are \(dataset.shape) but the model takes \(student.inputShape)")
        }
        guard epochs >= 1, batchSize >= 1, dataset.count >= 1 else {
            throw ReparoError.invalidArgument("epochs, batch size and dataset must be non-empty")
        }
        let sample = dataset.shape.count
        let batch = min(batchSize, dataset.count)
        let batches = (dataset.count + batch - 1) / batch
        let images = try FloatBuffer(count: batch * sample)
        var labels = [Int32](repeating: 0, count: batch)
        var order = Array(0..<dataset.count)
        var generator = SeededGenerator(seed: seed)
        let start = Date()
        var seen = 0
        for epoch in 1...epochs {
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, generator.nextInt(below: i + 1)) }
            var lossSum = 0.0, correct = 0.0, count = 0
            for b in 0..<batches {
                let lower = b * batch, upper = min(lower + batch, dataset.count)
                let size = upper - lower
                dataset.images.withUnsafeBufferPointer { source in
                    guard let base = source.baseAddress else { return }
                    for (slot, index) in order[lower..<upper].enumerated() {
                        (images.pointer + slot * sample).update(from: base + index * sample, count: sample)
                        labels[slot] = dataset.labels[index]
                    }
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
