/// Options of `Collapse.collapse`. The C API's `reparo_collapse` JSON becomes one with
/// `CollapseOptions(json:)` (CollapseOptions+JSON.swift).
public struct CollapseOptions: Equatable, Sendable {
    /// Also fold each BatchNorm into the conv before it (inference only: no BN left to train).
    public let foldBatchNorm: Bool

    public init(foldBatchNorm: Bool = false) {
        self.foldBatchNorm = foldBatchNorm
    }
}
