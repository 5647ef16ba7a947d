/// Fully connected layer on flattened features, weight W `[out, in]`, optional bias `[out]`:
///   forward  Y[N, out] = X[N, in] · Wᵀ + b
///   backward dW += dYᵀ · X,  db += Σₙ dY,  dX = dY · W
public final class Linear: Layer {
    public let name: String
    public let inputShape: FeatureShape
    public let outputShape: FeatureShape
    public let weight: Parameter
    public let bias: Parameter?

    public init(name: String, input: FeatureShape, outputFeatures: Int, bias: Bool) throws {
        self.name = name
        self.inputShape = input
        self.outputShape = FeatureShape(channels: outputFeatures, height: 1, width: 1)
        weight = try Parameter(name: TensorName.weight(name), shape: [outputFeatures, input.count], kind: .weight)
        self.bias = bias ? try Parameter(name: TensorName.bias(name), shape: [outputFeatures], kind: .bias) : nil
    }

    public var inputFeatures: Int { inputShape.count }
    public var outputFeatures: Int { outputShape.channels }
    public var parameters: [Parameter] { bias.map { [weight, $0] } ?? [weight] }
    public var kind: LayerSpec.Kind? { .linear }
    public var multiplyAdds: Int { inputFeatures * outputFeatures }

    public func makeCache(batch: Int, training: Bool) throws -> LayerCache { EmptyCache(batch: batch, training: training) }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, cache: LayerCache, training: Bool) {
        Linear.forward(x, y, batch: cache.batch, weight: weight.value.pointer, bias: bias?.value.pointer,
                       inputs: inputFeatures, outputs: outputFeatures)
    }

    static func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, inputs: Int, outputs: Int) {
        if let bias {
            for n in 0..<batch { (y + n * outputs).update(from: bias, count: outputs) }
        }
        BLAS.gemm(transposeA: false, transposeB: true, m: batch, n: outputs, k: inputs,
                  a: x, lda: inputs, b: weight, ldb: inputs, beta: bias == nil ? 0 : 1, c: y, ldc: outputs)
    }

    public func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, cache: LayerCache) {
        Linear.backward(x, dy, dx, batch: cache.batch, weight: weight.value.pointer,
                        weightGradient: weight.gradient?.pointer, biasGradient: bias?.gradient?.pointer,
                        inputs: inputFeatures, outputs: outputFeatures)
    }

    static func backward(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>?,
                         batch: Int, weight: UnsafePointer<Float>, weightGradient: UnsafeMutablePointer<Float>?,
                         biasGradient: UnsafeMutablePointer<Float>?, inputs: Int, outputs: Int) {
        if let weightGradient {
            BLAS.gemm(transposeA: true, transposeB: false, m: outputs, n: inputs, k: batch,
                      a: dy, lda: outputs, b: x, ldb: inputs, beta: 1, c: weightGradient, ldc: inputs)
        }
        if let biasGradient {
            for n in 0..<batch {
                let row = dy + n * outputs
                for o in 0..<outputs { biasGradient[o] += row[o] }
            }
        }
        if let dx {
            BLAS.gemm(transposeA: false, transposeB: false, m: batch, n: inputs, k: outputs,
                      a: dy, lda: outputs, b: weight, ldb: inputs, beta: 0, c: dx, ldc: inputs)
        }
    }
}
