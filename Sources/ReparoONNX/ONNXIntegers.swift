/// A short integer list the importer knows without running the network: a shape being
/// computed for Reshape (the legacy exporter's `x.view(x.size(0), -1)` is Shape → Gather →
/// Unsqueeze → Concat → Reshape), axes or indices. An entry may be the batch size, which only
/// inference knows; it is carried as a symbol rather than refused.
struct ONNXIntegers: Equatable {
    enum Entry: Equatable, CustomStringConvertible {
        case value(Int64)
        case batch

        var description: String {
            switch self {
            case .value(let value): return "\(value)"
            case .batch: return "N"
            }
        }
    }

    var entries: [Entry]
    /// A rank-0 tensor (Gather with a scalar index gives one; Unsqueeze makes it a list).
    var isScalar: Bool

    init(_ entries: [Entry], isScalar: Bool = false) {
        self.entries = entries
        self.isScalar = isScalar
    }

    /// The entries when all are known.
    var values: [Int64]? {
        var result: [Int64] = []
        for entry in entries {
            guard case .value(let value) = entry else { return nil }
            result.append(value)
        }
        return result
    }
}

/// A value of the graph that is not an activation: a tensor (an initializer or a Constant's
/// value, read when a layer takes it) or integers computed from shapes.
enum ONNXStaticValue {
    case tensor(Onnx_TensorProto, name: String)
    case integers(ONNXIntegers)
}
