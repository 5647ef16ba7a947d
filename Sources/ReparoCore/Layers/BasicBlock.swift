/// The CIFAR ResNet basic block (He et al. 2016): y = ReLU(main(x) + shortcut(x)), with
/// main = conv3×3(stride) → BN → ReLU → conv3×3 → BN and shortcut = identity, or 1×1 conv
/// (stride) → BN when the shape changes (option B). Names follow the common PyTorch CIFAR
/// definition: `conv1`, `bn1`, `conv2`, `bn2`, `shortcut.0`, `shortcut.1`.
public final class BasicBlock: Layer {
    public let name: String
    public let inputShape: FeatureShape
    public let main: Sequential
    public let shortcut: Sequential   // no layers = identity

    public init(name: String, input: FeatureShape, main: Sequential, shortcut: Sequential) throws {
        guard main.outputShape == shortcut.outputShape else {
            throw ReparoError.invalidArgument("block \(name): main path gives \(main.outputShape) but the shortcut gives \(shortcut.outputShape)")
        }
        self.name = name
        self.inputShape = input
        self.main = main
        self.shortcut = shortcut
    }

    public var outputShape: FeatureShape { main.outputShape }
    public var children: [Layer] { [main, shortcut] }
    public var kind: LayerSpec.Kind? { .basicBlock }
    public var multiplyAdds: Int { main.multiplyAdds + shortcut.multiplyAdds + outputShape.count }

    final class Cache: LayerCache {
        let main: LayerCache
        let shortcut: LayerCache
        let mainOutput: FloatBuffer
        let shortcutOutput: FloatBuffer
        let mainGradient: FloatBuffer?
        let shortcutGradient: FloatBuffer?
        init(batch: Int, training: Bool, options: WorkspaceOptions, block: BasicBlock) throws {
            main = try block.main.makeCache(batch: batch, training: training, options: options)
            shortcut = try block.shortcut.makeCache(batch: batch, training: training, options: options)
            let count = batch * block.outputShape.count
            mainOutput = try FloatBuffer(count: count)
            shortcutOutput = try FloatBuffer(count: count)
            mainGradient = training ? try FloatBuffer(count: batch * block.inputShape.count) : nil
            shortcutGradient = training ? try FloatBuffer(count: count) : nil
            super.init(batch: batch, training: training)
        }
    }

    public func makeCache(batch: Int, training: Bool) throws -> LayerCache {
        try makeCache(batch: batch, training: training, options: WorkspaceOptions())
    }

    public func makeCache(batch: Int, training: Bool, options: WorkspaceOptions) throws -> LayerCache {
        try Cache(batch: batch, training: training, options: options, block: self)
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, cache: LayerCache, training: Bool) {
        let cache = unsafeDowncast(cache, to: Cache.self)
        let count = cache.batch * outputShape.count
        let m = cache.mainOutput.pointer, s = cache.shortcutOutput.pointer
        main.forward(x, m, cache: cache.main, training: training)
        shortcut.forward(x, s, cache: cache.shortcut, training: training)
        for i in 0..<count { y[i] = max(m[i] + s[i], 0) }
    }

    /// ReLU's mask comes from y; both paths then receive the same gradient.
    public func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, cache: LayerCache) {
        let cache = unsafeDowncast(cache, to: Cache.self)
        guard let shortcutGradient = cache.shortcutGradient?.pointer,
              let mainGradient = cache.mainGradient?.pointer else { return }
        let count = cache.batch * outputShape.count
        ReLU.gradient(y, dy, dy, count: count)
        // Both paths receive the same gradient; main's backward may overwrite its dy, so copy.
        shortcutGradient.update(from: dy, count: count)
        main.backward(x, cache.mainOutput.pointer, dy, dx == nil ? nil : mainGradient, cache: cache.main)
        shortcut.backward(x, cache.shortcutOutput.pointer, shortcutGradient, dx, cache: cache.shortcut)
        if let dx { Vector.add(mainGradient, into: dx, count: cache.batch * inputShape.count) }
    }
}
