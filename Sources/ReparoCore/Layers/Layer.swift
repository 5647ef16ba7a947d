/// One node of a network. A layer owns its parameters; everything that depends on the batch
/// (activations, im2col columns, BatchNorm statistics of the batch) lives in a `LayerCache`
/// made by `makeCache`, so one model can run many batches at once on different caches
/// (concurrent inference) while a trainer keeps its own.
///
/// Shapes: input `[N, inputShape]`, output `[N, outputShape]`, NCHW, contiguous.
public protocol Layer: AnyObject {
    /// PyTorch-style path of the layer (`features.0`, `layer1.0.conv1`).
    var name: String { get }
    var inputShape: FeatureShape { get }
    var outputShape: FeatureShape { get }
    /// Every tensor saved with the model (trained ones and running statistics), stable order.
    /// By default its children's, in order.
    var parameters: [Parameter] { get }
    /// The layers this one is made of, in order (a sequence's layers, a residual block's main
    /// path and shortcut, an expanded chain's factors); empty for a leaf, the default.
    var children: [Layer] { get }
    /// The spec's type word of the layer (`LayerSpec.Kind`); nil for a plain sequence.
    var kind: LayerSpec.Kind? { get }
    /// Forward multiply-adds for one sample.
    var multiplyAdds: Int { get }

    /// Workspace for batches of exactly `batch` samples. `training` adds what backward needs.
    func makeCache(batch: Int, training: Bool) throws -> LayerCache

    /// The same with choices made by the workspace's owner (`WorkspaceOptions`), which a layer
    /// holding other layers passes down to theirs.
    func makeCache(batch: Int, training: Bool, options: WorkspaceOptions) throws -> LayerCache

    /// y = f(x). Training mode uses batch statistics and updates running statistics.
    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, cache: LayerCache, training: Bool)

    /// Given dy = ∂L/∂y (which the layer may overwrite), writes dx = ∂L/∂x when `dx` is not nil
    /// and ADDS ∂L/∂θ to each parameter's gradient. Call only after a training-mode forward on
    /// the same cache.
    func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, cache: LayerCache)
}

/// Per-batch workspace of a layer; layers subclass it.
public class LayerCache {
    public let batch: Int
    public let training: Bool
    init(batch: Int, training: Bool) {
        self.batch = batch
        self.training = training
    }
}

extension Layer {
    public var children: [Layer] { [] }
    public var parameters: [Parameter] { children.flatMap(\.parameters) }
    public var multiplyAdds: Int { 0 }

    /// Visits this layer and every layer inside it, depth-first pre-order: the one traversal
    /// of a network (as MLX Swift's `Module.filterMap` is behind its children and parameters).
    public func forEachLayer(_ body: (Layer) throws -> Void) rethrows {
        try body(self)
        for child in children { try child.forEachLayer(body) }
    }

    /// `transform` of this layer and of every layer inside it (pre-order), nils left out.
    public func filterMap<T>(_ transform: (Layer) throws -> T?) rethrows -> [T] {
        var result: [T] = []
        try forEachLayer { layer in
            if let value = try transform(layer) { result.append(value) }
        }
        return result
    }

    /// Trainable scalars.
    public var trainableCount: Int { parameters.filter { $0.kind.isTrainable }.reduce(0) { $0 + $1.count } }
}

/// Layers without batch-dependent state use this cache.
final class EmptyCache: LayerCache {}

/// A layer without parameters or batch-dependent state (ReLU, Flatten, average pooling).
protocol StatelessLayer: Layer {}

extension StatelessLayer {
    public func makeCache(batch: Int, training: Bool) throws -> LayerCache { EmptyCache(batch: batch, training: training) }
}
