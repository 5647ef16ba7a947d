/// The order in which `Trainer.fit` visits a data set: one seeded generator per run, and each
/// epoch a Fisher–Yates shuffle of the previous epoch's order, starting from `0..<count`. The C
/// API exposes it (`reparo_fit_order`) so that a loop of single steps (the Python
/// `Trainer.iter_fit`) trains exactly as the native fit.
public struct FitOrder: Sendable {
    private var generator: SeededGenerator

    /// The generator of a run seeded with `seed`.
    public init(seed: UInt64) { generator = SeededGenerator(seed: seed) }

    /// Shuffles `order` (the previous epoch's order, or `0..<count` before the first epoch)
    /// into the next epoch's order, in place.
    public mutating func advance<Order: MutableCollection & RandomAccessCollection>(_ order: inout Order)
    where Order.Index == Int {
        for i in stride(from: order.count - 1, to: 0, by: -1) {
            order.swapAt(order.startIndex + i, order.startIndex + generator.nextInt(below: i + 1))
        }
    }
}
