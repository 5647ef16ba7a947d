/// Options of `Expansion.expand`. The C API's `reparo_expand` JSON becomes one with
/// `ExpandOptions(json:)` (ExpandOptions+JSON.swift).
public struct ExpandOptions: Equatable, Sendable {
    /// Width multiplier r of the hidden factors (ExpandNets' default 4).
    public let rate: Int
    public let layers: Selection
    public let seed: UInt64

    /// The expansion rates the options accept.
    public static let rateRange = 1...16

    public enum Selection: Equatable, Sendable {
        case convolutions, all
        case names([String])
    }

    /// Throws `.invalidArgument("options.rate: …")` for a rate outside `rateRange`.
    public init(rate: Int = 4, layers: Selection = .convolutions, seed: UInt64 = 0) throws {
        self.rate = try Self.rateRange.validate(rate, "options.rate")
        self.layers = layers
        self.seed = seed
    }
}
