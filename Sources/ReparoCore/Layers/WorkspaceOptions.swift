/// Choices fixed when a workspace (`LayerCache`) is made, passed down the layer tree by
/// `Layer.makeCache(batch:training:options:)`: the owner of the workspace decides, not a
/// setting written on the (shared) layers, so two trainers of one model, or a trainer and the
/// model's own inference, never see each other's choices.
public struct WorkspaceOptions: Sendable, Equatable {
    /// Eval mode only: every Conv2D directly followed by a ReLU, at any depth of the tree
    /// (residual blocks' paths included), applies the ReLU to its output while it is still in
    /// cache, and the ReLU layer is skipped; the conv's own output buffer is then left unwritten.
    /// Only for workspaces whose intermediate outputs no one reads (`Model.infer`; a trainer's
    /// teacher forward reads them). Outputs are bit for bit those of the unfused pass.
    public var fusesRectifiers = false
    /// How expanded chains train (training workspaces only; see `ExpandedChain.TrainingMode`).
    public var chainMode: ExpandedChain.TrainingMode = .automatic

    public init(fusesRectifiers: Bool = false, chainMode: ExpandedChain.TrainingMode = .automatic) {
        self.fusesRectifiers = fusesRectifiers
        self.chainMode = chainMode
    }
}

extension Layer {
    /// Layers whose workspace depends on no option (every leaf but Conv2D) make the plain one.
    public func makeCache(batch: Int, training: Bool, options: WorkspaceOptions) throws -> LayerCache {
        try makeCache(batch: batch, training: training)
    }
}
