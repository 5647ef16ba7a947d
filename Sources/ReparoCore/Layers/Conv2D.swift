/// 2-D convolution, weight W `[Cout, Cin, kH, kW]`, optional bias `[Cout]`, square stride and
/// zero padding. Computed as im2col + one GEMM over the whole batch:
///   forward   Yᵀ[Cout, N·P] = W[Cout, K] · cols[K, N·P],      K = Cin·kH·kW, P = Hout·Wout
///   backward  dW += dYᵀ · colsᵀ,  db += Σ dYᵀ,  dcols = Wᵀ · dYᵀ,  dx = col2im(dcols)
public final class Conv2D: Layer {
    public let name: String
    public let inputShape: FeatureShape
    public let outputShape: FeatureShape
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int
    public let weight: Parameter
    public let bias: Parameter?

    public convenience init(name: String, input: FeatureShape, outputChannels: Int, kernelSize: Int, stride: Int,
                            padding: Int, bias: Bool) throws {
        let biasParameter = bias ? try Parameter(name: name + ".bias", shape: [outputChannels], kind: .bias) : nil
        try self.init(name: name, input: input, outputChannels: outputChannels, kernelSize: kernelSize, stride: stride,
                      padding: padding, sharedBias: biasParameter)
    }

    /// A conv whose bias is an existing parameter (the online-collapsed chain uses the bias of
    /// its last factor, so gradients land there).
    init(name: String, input: FeatureShape, outputChannels: Int, kernelSize: Int, stride: Int,
         padding: Int, sharedBias: Parameter?) throws {
        self.name = name
        self.inputShape = input
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        let outputHeight = (input.height + 2 * padding - kernelSize) / stride + 1
        let outputWidth = (input.width + 2 * padding - kernelSize) / stride + 1
        self.outputShape = FeatureShape(channels: outputChannels, height: outputHeight, width: outputWidth)
        self.weight = try Parameter(name: name + ".weight",
                                    shape: [outputChannels, input.channels, kernelSize, kernelSize], kind: .weight)
        self.bias = sharedBias
    }

    public var parameters: [Parameter] { bias.map { [weight, $0] } ?? [weight] }
    public var patchSize: Int { inputShape.channels * kernelSize * kernelSize }
    public var multiplyAdds: Int { outputShape.count * patchSize }

    func geometry(batch: Int) -> ConvolutionGeometry {
        ConvolutionGeometry(batch: batch, inputChannels: inputShape.channels, inputHeight: inputShape.height,
                            inputWidth: inputShape.width, kernelHeight: kernelSize, kernelWidth: kernelSize,
                            stride: stride, padding: padding, outputHeight: outputShape.height,
                            outputWidth: outputShape.width)
    }

    final class Cache: LayerCache {
        let columns: FloatBuffer      // [K, N·P], kept from forward for dW
        let transposed: FloatBuffer   // [Cout, N·P] output (forward) or gradient (backward)
        let columnGradient: FloatBuffer?
        init(batch: Int, training: Bool, patch: Int, columns: Int, outputChannels: Int) throws {
            self.columns = try FloatBuffer(count: patch * columns)
            self.transposed = try FloatBuffer(count: outputChannels * columns)
            self.columnGradient = training ? try FloatBuffer(count: patch * columns) : nil
            super.init(batch: batch, training: training)
        }
    }

    public func makeCache(batch: Int, training: Bool) throws -> LayerCache {
        try Cache(batch: batch, training: training, patch: patchSize, columns: batch * outputShape.spatial,
                  outputChannels: outputShape.channels)
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, cache: LayerCache, training: Bool) {
        let cache = unsafeDowncast(cache, to: Cache.self)
        let g = geometry(batch: cache.batch)
        im2col(x, g, cache.columns.pointer)
        forwardFromColumns(cache: cache, weight: weight.value.pointer, y)
    }

    /// Yᵀ = W · cols, then to NCHW with the bias added. Shared with the online-collapsed chain.
    func forwardFromColumns(cache: Cache, weight w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        let cout = outputShape.channels
        let positions = outputShape.spatial
        let columns = cache.batch * positions
        let transposed = cache.transposed.pointer
        BLAS.gemm(transposeA: false, transposeB: false, m: cout, n: columns, k: patchSize,
                  a: w, lda: patchSize, b: cache.columns.pointer, ldb: columns, beta: 0, c: transposed, ldc: columns)
        // [Cout, N, P] → [N, Cout, P], adding the bias on the way.
        let biasPointer = bias?.value.pointer
        for n in 0..<cache.batch {
            for c in 0..<cout {
                let source = transposed + (c * cache.batch + n) * positions
                let target = y + (n * cout + c) * positions
                if let biasPointer {
                    let b = biasPointer[c]
                    for p in 0..<positions { target[p] = source[p] + b }
                } else {
                    target.update(from: source, count: positions)
                }
            }
        }
    }

    public func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, cache: LayerCache) {
        let cache = unsafeDowncast(cache, to: Cache.self)
        backward(dy, dx, cache: cache, weight: weight.value.pointer, weightGradient: weight.gradient?.pointer)
    }

    /// Backward given the weight used in forward; `weightGradient` receives += dW.
    func backward(_ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>?, cache: Cache,
                  weight w: UnsafePointer<Float>, weightGradient: UnsafeMutablePointer<Float>?) {
        let cout = outputShape.channels
        let positions = outputShape.spatial
        let columns = cache.batch * positions
        let dyT = cache.transposed.pointer
        Vector.permuteBlocks(dy, to: dyT, a: cache.batch, b: cout, inner: positions)
        if let weightGradient {
            BLAS.gemm(transposeA: false, transposeB: true, m: cout, n: patchSize, k: columns,
                      a: dyT, lda: columns, b: cache.columns.pointer, ldb: columns,
                      beta: 1, c: weightGradient, ldc: patchSize)
        }
        if let gradient = bias?.gradient?.pointer {
            for c in 0..<cout { gradient[c] += Vector.sum(dyT + c * columns, count: columns) }
        }
        guard let dx, let columnGradient = cache.columnGradient?.pointer else { return }
        BLAS.gemm(transposeA: true, transposeB: false, m: patchSize, n: columns, k: cout,
                  a: w, lda: patchSize, b: dyT, ldb: columns, beta: 0, c: columnGradient, ldc: columns)
        col2im(columnGradient, geometry(batch: cache.batch), dx)
    }
}
