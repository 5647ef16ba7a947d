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
    var parameters: [Parameter] { get }
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
    public var multiplyAdds: Int { 0 }
    /// Trainable scalars.
    public var trainableCount: Int { parameters.filter { $0.kind.isTrainable }.reduce(0) { $0 + $1.count } }
}

/// Layers without batch-dependent state use this cache.
final class EmptyCache: LayerCache {}
