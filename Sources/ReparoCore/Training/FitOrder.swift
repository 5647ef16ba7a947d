/// The order in which `Trainer.fit` visits a data set: one seeded generator per run, and each
/// epoch a Fisher–Yates shuffle of the previous epoch's order. Epoch e's order is the state
/// after e calls of `advance()`; the C API exposes it (`reparo_fit_order`) so that a loop of
/// single steps (the Python `Trainer.iter_fit`) trains exactly as the native fit.
public struct FitOrder: Sendable {
    /// A permutation of `0..<count`: the current epoch's order.
    public private(set) var indices: [Int]
    private var generator: SeededGenerator

    /// The identity order (before the first epoch) of a run seeded with `seed`.
    public init(count: Int, seed: UInt64) {
        indices = Array(0..<Swift.max(count, 0))
        generator = SeededGenerator(seed: seed)
    }

    /// Shuffles into the next epoch's order.
    public mutating func advance() {
        for i in stride(from: indices.count - 1, to: 0, by: -1) {
            indices.swapAt(i, generator.nextInt(below: i + 1))
        }
    }
}
