import CVectorKernels

/// Max pooling, square window `kernelSize`, `stride`, `padding` (floor mode), exactly PyTorch's
/// `nn.MaxPool2d(kernelSize, stride, padding)`: padded cells are −∞, so they never win, and
/// every window holds at least one real cell because `padding` ≤ `kernelSize`/2 (checked by
/// `LayerSpec.outputShape(input:)`, as PyTorch does). Backward routes each output gradient to
/// the arg-max input (first maximum on ties, first NaN if any), an index in the unpadded plane.
public final class MaxPool2D: Layer {
    public let name: String
    public let inputShape: FeatureShape
    public let outputShape: FeatureShape
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int
    public var kind: LayerSpec.Kind? { .maxpool }

    public init(name: String, input: FeatureShape, kernelSize: Int, stride: Int, padding: Int = 0) {
        self.name = name
        self.inputShape = input
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.outputShape = Window(kernel: kernelSize, stride: stride, padding: padding).output(input, channels: input.channels)
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
        // 2×2 windows, stride 2, no padding (every pool of VGG): the vector kernel, same results.
        // (Argmax indices are Int32: a plane of more than 2³¹ floats cannot be allocated.)
        let vector = kernelSize == 2 && stride == 2 && padding == 0 && VectorKernels.available
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

    /// One plane, any window, stride and padding: the first maximum of each window's real cells
    /// in row-major scan order wins, or its first NaN (a NaN beats any number; NaNs propagate
    /// like PyTorch's). Clipping the window to the plane is the same as padding with −∞.
    private func pool(_ source: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>,
                      argmax: UnsafeMutablePointer<Int32>?) {
        let (h, w) = (inputShape.height, inputShape.width)
        for oh in 0..<outputShape.height {
            let top = oh * stride - padding
            let rows = max(top, 0)..<min(top + kernelSize, h)
            for ow in 0..<outputShape.width {
                let left = ow * stride - padding
                let columns = max(left, 0)..<min(left + kernelSize, w)
                var bestIndex = rows.lowerBound * w + columns.lowerBound
                var best = source[bestIndex]
                for u in rows {
                    let row = u * w
                    for v in columns where source[row + v] > best || (source[row + v].isNaN && !best.isNaN) {
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
