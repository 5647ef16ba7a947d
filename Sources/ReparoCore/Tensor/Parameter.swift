import Synchronization

/// What a saved tensor is for; decides weight decay and whether it is trained.
public enum ParameterKind: Sendable {
    /// Conv or linear weight: trained, weight-decayed.
    case weight
    /// Conv or linear bias: trained, not decayed.
    case bias
    /// BatchNorm γ and β: trained, not decayed by default.
    case normScale, normShift
    /// BatchNorm running statistics: saved, updated by training-mode forward, not trained.
    case runningMean, runningVariance

    public var isTrainable: Bool {
        switch self {
        case .weight, .bias, .normScale, .normShift: return true
        case .runningMean, .runningVariance: return false
        }
    }
}

/// A named tensor owned by a layer: its value and, when trainable, its gradient.
/// Names are PyTorch-style full paths (`features.0.weight`, `layer1.0.bn1.running_mean`).
public final class Parameter {
    public let name: String
    public let shape: [Int]
    public let kind: ParameterKind
    public let value: FloatBuffer
    /// Accumulated by `backward`, zeroed by the trainer; nil for running statistics.
    public let gradient: FloatBuffer?

    public init(name: String, shape: [Int], kind: ParameterKind, value: FloatBuffer) throws {
        let count = shape.reduce(1, *)
        guard count == value.count else {
            throw ReparoError.internalError("parameter \(name): shape \(shape) does not match \(value.count) values")
        }
        self.name = name
        self.shape = shape
        self.kind = kind
        self.value = value
        self.gradient = kind.isTrainable ? try FloatBuffer(count: count) : nil
    }

    public convenience init(name: String, shape: [Int], kind: ParameterKind) throws {
        try self.init(name: name, shape: shape, kind: kind, value: FloatBuffer(count: shape.reduce(1, *)))
    }

    public var count: Int { value.count }

    /// Counts the writes of `value` (a trainer's update, loading tensors): what is derived from
    /// the value and cached (Winograd's transformed weights) is recomputed when it changes.
    public var generation: Int { writes.load(ordering: .relaxed) }
    /// Call after writing `value` outside the engine's own writers.
    public func valueChanged() { writes.add(1, ordering: .relaxed) }
    private let writes = Atomic<Int>(0)
}
