import CVectorKernels

/// Max pooling, square window `kernelSize`, `stride`, no padding (floor mode, as PyTorch).
/// Backward routes each output gradient to the arg-max input (first maximum on ties, first
/// NaN if any).
public final class MaxPool2D: Layer {
    public let name: String
    public let inputShape: FeatureShape
    public let outputShape: FeatureShape
    public let kernelSize: Int
    public let stride: Int
    public var kind: LayerSpec.Kind? { .maxpool }

    public init(name: String, input: FeatureShape, kernelSize: Int, stride: Int) {
        self.name = name
        self.inputShape = input
        self.kernelSize = kernelSize
        self.stride = stride
        self.outputShape = Window(kernel: kernelSize, stride: stride).output(input, channels: input.channels)
    }

    final class Cache: LayerCache {
        let argmax: UnsafeMutablePointer<Int32>  // index within the input plane, per output
        let count: Int
        init(batch: Int, training: Bool, count: Int) throws {
            guard count <= FloatBuffer.maximumCount else { throw ReparoError.outOfMemory("max-pool cache too large") }
            self.count = count
            argmax = UnsafeMutablePointer<Int32>.allocate(capacity: max(count, 1))
            argmax.initialize(repeating: 0, count: max(count, 1))
            super.init(batch: batch, training: training)
        }
        deinit { argmax.deallocate() }
    }

    public func makeCache(batch: Int, training: Bool) throws -> LayerCache {
        try Cache(batch: batch, training: training, count: training ? batch * outputShape.count : 0)
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, cache: LayerCache, training: Bool) {
        let cache = unsafeDowncast(cache, to: Cache.self)
        let record = cache.count > 0
        let planes = cache.batch * inputShape.channels
        let inPlane = inputShape.spatial, outPlane = outputShape.spatial
        // 2×2 windows, stride 2 (every pool of VGG): the AVX-512 kernel, same results.
        // (Argmax indices are Int32: a plane of more than 2³¹ floats cannot be allocated.)
        let vector = kernelSize == 2 && stride == 2 && VectorKernels.available
        // Planes are independent: split them over the engine's threads, in runs of planes.
        let runs = min(planes, 4 * Parallel.reductionGroups)
        let context = (pool: self, x: x, y: y, argmax: record ? cache.argmax : nil, planes: planes, runs: runs,
                       inPlane: inPlane, outPlane: outPlane, vector: vector)
        Parallel.forEach(runs, minimumWork: planes / max(runs, 1) * inPlane, context: context) { p, run in
            let first = p.planes * run / p.runs, end = p.planes * (run + 1) / p.runs
            let (inPlane, outPlane) = (p.inPlane, p.outPlane)
            if p.vector {
                max_pool_2x2(p.x + first * inPlane, end - first, p.pool.inputShape.height, p.pool.inputShape.width,
                             p.y + first * outPlane, p.argmax.map { $0 + first * outPlane })
                return
            }
            for plane in first..<end {
                p.pool.pool(p.x + plane * inPlane, p.y + plane * outPlane, argmax: p.argmax.map { $0 + plane * outPlane })
            }
        }
    }

    /// One plane, any window and stride: the first maximum of each window in row-major scan
    /// order wins, or its first NaN (a NaN beats any number; NaNs propagate like PyTorch's).
    private func pool(_ source: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>,
                      argmax: UnsafeMutablePointer<Int32>?) {
        let w = inputShape.width
        for oh in 0..<outputShape.height {
            for ow in 0..<outputShape.width {
                var bestIndex = (oh * stride) * w + ow * stride
                var best = source[bestIndex]
                for u in 0..<kernelSize {
                    let row = (oh * stride + u) * w + ow * stride
                    for v in 0..<kernelSize where source[row + v] > best || (source[row + v].isNaN && !best.isNaN) {
                        best = source[row + v]
                        bestIndex = row + v
                    }
                }
                let o = oh * outputShape.width + ow
                target[o] = best
                argmax?[o] = Int32(bestIndex)
            }
        }
    }

    public func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, cache: LayerCache) {
        guard let dx else { return }
        let cache = unsafeDowncast(cache, to: Cache.self)
        let planes = cache.batch * inputShape.channels
        let inPlane = inputShape.spatial, outPlane = outputShape.spatial
        Parallel.forEach(planes, minimumWork: inPlane,
                         context: (dx: dx, dy: dy, argmax: cache.argmax, inPlane: inPlane, outPlane: outPlane)) { p, plane in
            let target = p.dx + plane * p.inPlane
            let gradient = p.dy + plane * p.outPlane
            let indices = p.argmax + plane * p.outPlane
            target.update(repeating: 0, count: p.inPlane)
            for o in 0..<p.outPlane { target[Int(indices[o])] += gradient[o] }
        }
    }
}
