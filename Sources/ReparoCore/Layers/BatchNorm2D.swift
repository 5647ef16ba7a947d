import Foundation

/// Batch normalization over N·H·W per channel (Ioffe & Szegedy 2015), PyTorch semantics:
/// training normalizes with the batch's biased variance and updates the running averages
/// (momentum 0.1, unbiased variance); eval uses the running statistics. ε = 1e-5.
///   y = γ · x̂ + β,   x̂ = (x − μ) / √(σ² + ε)
///   backward (training): dx = (γ/√(σ²+ε)) · (dy − mean(dy) − x̂ · mean(dy · x̂))
public final class BatchNorm2D: Layer {
    public static let epsilon: Float = 1e-5
    public static let momentum: Float = 0.1

    public let name: String
    public let inputShape: FeatureShape
    public var outputShape: FeatureShape { inputShape }
    public let scale: Parameter          // γ, "weight"
    public let shift: Parameter          // β, "bias"
    public let runningMean: Parameter
    public let runningVariance: Parameter

    public init(name: String, input: FeatureShape) throws {
        self.name = name
        self.inputShape = input
        let c = input.channels
        scale = try Parameter(name: name + ".weight", shape: [c], kind: .normScale)
        shift = try Parameter(name: name + ".bias", shape: [c], kind: .normShift)
        runningMean = try Parameter(name: name + ".running_mean", shape: [c], kind: .runningMean)
        runningVariance = try Parameter(name: name + ".running_var", shape: [c], kind: .runningVariance)
        scale.value.buffer.update(repeating: 1)
        runningVariance.value.buffer.update(repeating: 1)
    }

    public var parameters: [Parameter] { [scale, shift, runningMean, runningVariance] }
    public var multiplyAdds: Int { inputShape.count }

    final class Cache: LayerCache {
        let normalized: FloatBuffer?   // x̂ [N, C, H, W]
        let inverseStd: FloatBuffer    // [C] of the batch (training) or running stats (eval)
        init(batch: Int, training: Bool, count: Int, channels: Int) throws {
            normalized = training ? try FloatBuffer(count: count) : nil
            inverseStd = try FloatBuffer(count: channels)
            super.init(batch: batch, training: training)
        }
    }

    public func makeCache(batch: Int, training: Bool) throws -> LayerCache {
        try Cache(batch: batch, training: training, count: batch * inputShape.count, channels: inputShape.channels)
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, cache: LayerCache, training: Bool) {
        let cache = unsafeDowncast(cache, to: Cache.self)
        let channels = inputShape.channels
        let plane = inputShape.spatial
        let batch = cache.batch
        let gamma = scale.value.pointer, beta = shift.value.pointer
        guard training, let normalized = cache.normalized?.pointer else {
            let mean = runningMean.value.pointer, variance = runningVariance.value.pointer
            for c in 0..<channels {
                let inverse = 1 / (variance[c] + Self.epsilon).squareRoot()
                let a = gamma[c] * inverse, b = beta[c] - mean[c] * a
                for n in 0..<batch {
                    let offset = (n * channels + c) * plane
                    let source = x + offset, target = y + offset
                    for p in 0..<plane { target[p] = source[p] * a + b }
                }
            }
            return
        }
        let m = Float(batch * plane)
        let runningMean = runningMean.value.pointer, runningVariance = runningVariance.value.pointer
        let inverseStd = cache.inverseStd.pointer
        Parallel.forEach(channels, minimumWork: batch * plane * 3) { c in
            // Two-pass mean and variance in Double: activations can be large and M large.
            var total = 0.0
            for n in 0..<batch {
                total += Double(Vector.sum(x + (n * channels + c) * plane, count: plane))
            }
            let mean = total / Double(m)
            var squares = 0.0
            let meanFloat = Float(mean)
            for n in 0..<batch {
                squares += Double(Vector.squaredDeviation(x + (n * channels + c) * plane, mean: meanFloat, count: plane))
            }
            let variance = squares / Double(m)
            let inverse = Float(1 / (variance + Double(Self.epsilon)).squareRoot())
            inverseStd[c] = inverse
            let unbiased = m > 1 ? variance * Double(m) / Double(m - 1) : variance
            runningMean[c] = (1 - Self.momentum) * runningMean[c] + Self.momentum * meanFloat
            runningVariance[c] = (1 - Self.momentum) * runningVariance[c] + Self.momentum * Float(unbiased)
            let g = gamma[c], b = beta[c]
            for n in 0..<batch {
                let offset = (n * channels + c) * plane
                let source = x + offset, target = y + offset, xhat = normalized + offset
                for p in 0..<plane {
                    let value = (source[p] - meanFloat) * inverse
                    xhat[p] = value
                    target[p] = value * g + b
                }
            }
        }
    }

    public func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, cache: LayerCache) {
        let cache = unsafeDowncast(cache, to: Cache.self)
        guard let normalized = cache.normalized?.pointer,
              let scaleGradient = scale.gradient?.pointer, let shiftGradient = shift.gradient?.pointer else { return }
        let channels = inputShape.channels
        let plane = inputShape.spatial
        let batch = cache.batch
        let m = Float(batch * plane)
        let gamma = scale.value.pointer
        let inverseStd = cache.inverseStd.pointer
        Parallel.forEach(channels, minimumWork: batch * plane * 3) { c in
            var sumDy: Float = 0, sumDyXhat: Float = 0
            for n in 0..<batch {
                let offset = (n * channels + c) * plane
                sumDy += Vector.sum(dy + offset, count: plane)
                sumDyXhat += Vector.dot(dy + offset, normalized + offset, count: plane)
            }
            scaleGradient[c] += sumDyXhat
            shiftGradient[c] += sumDy
            guard let dx else { return }
            let k = gamma[c] * inverseStd[c]
            let meanDy = sumDy / m, meanDyXhat = sumDyXhat / m
            for n in 0..<batch {
                let offset = (n * channels + c) * plane
                let g = dy + offset, xhat = normalized + offset, target = dx + offset
                for p in 0..<plane { target[p] = k * (g[p] - meanDy - xhat[p] * meanDyXhat) }
            }
        }
    }
}
