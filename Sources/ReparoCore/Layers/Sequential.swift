/// Layers applied in order. Its cache holds every intermediate activation (and, for
/// training, every intermediate gradient); the last layer writes straight into the caller's
/// output. The model's top level, a residual block's paths and an expanded chain are all
/// Sequentials.
public final class Sequential: Layer {
    public let name: String
    public let inputShape: FeatureShape
    public let layers: [Layer]

    public init(name: String, input: FeatureShape, layers: [Layer]) {
        self.name = name
        self.inputShape = input
        self.layers = layers
    }

    public var outputShape: FeatureShape { layers.last?.outputShape ?? inputShape }
    public var children: [Layer] { layers }
    public var kind: LayerSpec.Kind? { nil }
    public var multiplyAdds: Int { layers.reduce(0) { $0 + $1.multiplyAdds } }

    final class Cache: LayerCache {
        let caches: [LayerCache]
        let outputs: [FloatBuffer]     // outputs of layers 0..<last
        let gradients: [FloatBuffer]   // ∂L/∂outputs, training only
        /// Eval-mode forward applies each ReLU that follows a Conv2D inside the conv
        /// (`WorkspaceOptions.fusesRectifiers`).
        let fusesRectifiers: Bool
        init(batch: Int, training: Bool, options: WorkspaceOptions, layers: [Layer]) throws {
            caches = try layers.map { try $0.makeCache(batch: batch, training: training, options: options) }
            fusesRectifiers = options.fusesRectifiers && !training
            let inner = layers.dropLast()
            outputs = try inner.map { try FloatBuffer(count: batch * $0.outputShape.count) }
            gradients = training ? try inner.map { try FloatBuffer(count: batch * $0.outputShape.count) } : []
            super.init(batch: batch, training: training)
        }
    }

    public func makeCache(batch: Int, training: Bool) throws -> LayerCache {
        try makeCache(batch: batch, training: training, options: WorkspaceOptions())
    }

    public func makeCache(batch: Int, training: Bool, options: WorkspaceOptions) throws -> LayerCache {
        try Cache(batch: batch, training: training, options: options, layers: layers)
    }

    /// Output of layer `index` after a forward pass on `cache` (not for the last layer).
    func output(_ index: Int, cache: LayerCache) -> UnsafeMutablePointer<Float> {
        unsafeDowncast(cache, to: Cache.self).outputs[index].pointer
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, cache: LayerCache, training: Bool) {
        let cache = unsafeDowncast(cache, to: Cache.self)
        if layers.isEmpty {
            y.update(from: x, count: cache.batch * inputShape.count)
            return
        }
        var input = x
        let fuses = cache.fusesRectifiers && !training
        var index = 0
        while index < layers.count {
            if fuses, index + 1 < layers.count, layers[index + 1] is ReLU, let conv = layers[index] as? Conv2D {
                // Conv + ReLU in one: the ReLU's output, written by the conv.
                let output = index + 1 == layers.count - 1 ? y : cache.outputs[index + 1].pointer
                conv.forward(input, output, cache: unsafeDowncast(cache.caches[index], to: Conv2D.Cache.self),
                             weight: conv.weight.value.pointer, rectify: true)
                input = UnsafePointer(output)
                index += 2
                continue
            }
            let output = index == layers.count - 1 ? y : cache.outputs[index].pointer
            layers[index].forward(input, output, cache: cache.caches[index], training: training)
            input = UnsafePointer(output)
            index += 1
        }
    }

    public func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, cache: LayerCache) {
        backward(x, y, dy, dx, cache: cache, addGradient: nil)
    }

    /// Backward with a hook that may add to ∂L/∂(output of layer i) before layer i's backward
    /// runs (used to inject the distillation gradient at tapped layers).
    func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, cache: LayerCache,
                  addGradient: ((Int, UnsafeMutablePointer<Float>) -> Void)?) {
        let cache = unsafeDowncast(cache, to: Cache.self)
        if layers.isEmpty {
            dx?.update(from: dy, count: cache.batch * inputShape.count)
            return
        }
        let last = layers.count - 1
        for index in stride(from: last, through: 0, by: -1) {
            let input = index == 0 ? x : UnsafePointer(cache.outputs[index - 1].pointer)
            let output = index == last ? y : UnsafePointer(cache.outputs[index].pointer)
            let gradient = index == last ? dy : cache.gradients[index].pointer
            addGradient?(index, gradient)
            let inputGradient = index == 0 ? dx : cache.gradients[index - 1].pointer
            layers[index].backward(input, output, gradient, inputGradient, cache: cache.caches[index])
        }
    }
}
