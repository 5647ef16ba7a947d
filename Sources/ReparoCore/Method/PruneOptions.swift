/// Options of `Pruning.prune`. The C API's `reparo_prune` JSON becomes one with
/// `PruneOptions(json:)` (PruneOptions+JSON.swift).
public struct PruneOptions: Equatable, Sendable {
    /// Fraction of filters removed from each prunable conv; at least one filter stays.
    public let ratio: Double
    public let criterion: Criterion
    public let seed: UInt64
    /// Per-conv ratios overriding `ratio`, by conv name.
    public let layerRatios: [String: Double]
    /// `.block`: prune inside residual blocks only; `.coupled`: also block outputs, one
    /// channel set per group of tensors tied by residual additions.
    public let residual: Residual

    /// The ratios the options accept (`ratio` and each of `layerRatios`).
    public static let ratioRange = 0.0...1.0

    public enum Criterion: String, Sendable, CaseIterable {
        case l1, l2
        case batchNormGamma = "bn_gamma"
        case random
    }

    public enum Residual: String, Sendable, CaseIterable {
        case block, coupled
    }

    /// Throws `.invalidArgument` naming the option (as its JSON key) that is out of range.
    public init(ratio: Double = 0.5, criterion: Criterion = .l1, seed: UInt64 = 0, layerRatios: [String: Double] = [:],
                residual: Residual = .block) throws {
        self.ratio = try Self.ratioRange.validate(ratio, "options.ratio")
        for (name, layerRatio) in layerRatios.sorted(by: { $0.key < $1.key }) {
            _ = try Self.ratioRange.validate(layerRatio, "options.layers.\(name)")
        }
        self.criterion = criterion
        self.seed = seed
        self.layerRatios = layerRatios
        self.residual = residual
    }

    /// Filters kept out of `count` at `ratio`: ⌈(1 − ratio)·count⌉, at least 1.
    public static func kept(_ count: Int, ratio: Double) -> Int {
        max(1, min(count, Int(((1 - ratio) * Double(count) - 1e-9).rounded(.up))))
    }
}
