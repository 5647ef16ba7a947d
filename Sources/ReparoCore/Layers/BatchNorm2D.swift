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
        scale = try Parameter(name: TensorName.weight(name), shape: [c], kind: .normScale)
        shift = try Parameter(name: TensorName.bias(name), shape: [c], kind: .normShift)
        runningMean = try Parameter(name: TensorName.runningMean(name), shape: [c], kind: .runningMean)
        runningVariance = try Parameter(name: TensorName.runningVariance(name), shape: [c], kind: .runningVariance)
        scale.value.buffer.update(repeating: 1)
        runningVariance.value.buffer.update(repeating: 1)
    }

    public var parameters: [Parameter] { [scale, shift, runningMean, runningVariance] }
    public var kind: LayerSpec.Kind? { .batchnorm }
    public var multiplyAdds: Int { inputShape.count }

    /// Per-channel statistics of a training batch. No x̂ is kept: backward recomputes it from x
    /// (one activation-sized write less per step, and that much less memory).
    final class Cache: LayerCache {
        let mean: FloatBuffer          // μ [C] of the batch (training)
        let inverseStd: FloatBuffer    // 1/√(σ²+ε) [C] of the batch (training)
        let channels: Int
        let groups: Int                // runs of images whose partial sums are reduced in order
        let partials: UnsafeMutablePointer<Double>  // [groups, 2, C]
        /// Two values per channel: eval's scale and shift, or backward's Σ dy and Σ dy·x̂.
        let perChannel: FloatBuffer    // [2, C]
        init(batch: Int, training: Bool, channels: Int) throws {
            self.channels = channels
            perChannel = try FloatBuffer(count: 2 * channels)
            mean = try FloatBuffer(count: training ? channels : 0)
            inverseStd = try FloatBuffer(count: training ? channels : 0)
            groups = max(1, min(batch, Parallel.reductionGroups))
            partials = .allocate(capacity: training ? groups * 2 * channels : 1)
            super.init(batch: batch, training: training)
        }
        deinit { partials.deallocate() }

        func images(ofGroup group: Int) -> Range<Int> { (batch * group / groups)..<(batch * (group + 1) / groups) }
    }

    public func makeCache(batch: Int, training: Bool) throws -> LayerCache {
        try Cache(batch: batch, training: training, channels: inputShape.channels)
    }

    /// The work runs image by image (all channels of an image, in memory order), not channel by
    /// channel: on VGG's 2×2 and 4×4 planes a channel's values are 16–64-byte pieces strided
    /// by the whole image, and channel-major passes fetched each cache line once per channel
    /// in it. Statistics are summed per run of images (a fixed number of runs, whatever the
    /// thread count) in Double, then over the runs in order: results do not depend on threads.
    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, cache: LayerCache, training: Bool) {
        let cache = unsafeDowncast(cache, to: Cache.self)
        let channels = inputShape.channels
        let plane = inputShape.spatial
        let batch = cache.batch
        let gamma = scale.value.pointer, beta = shift.value.pointer
        let imageSize = channels * plane
        guard training, cache.training else {
            let mean = runningMean.value.pointer, variance = runningVariance.value.pointer
            let scales = cache.perChannel.pointer, shifts = scales + channels
            for c in 0..<channels {
                let inverse = 1 / (variance[c] + Self.epsilon).squareRoot()
                scales[c] = gamma[c] * inverse
                shifts[c] = beta[c] - mean[c] * scales[c]
            }
            Parallel.forEach(batch, minimumWork: imageSize,
                             context: (x: x, y: y, scales: scales, shifts: shifts, channels: channels, plane: plane)) { b, n in
                let plane = b.plane, imageSize = b.channels * plane
                for c in 0..<b.channels {
                    let offset = n * imageSize + c * plane
                    Vector.affine(b.x + offset, scale: b.scales[c], shift: b.shifts[c], to: b.y + offset, count: plane)
                }
            }
            return
        }
        let m = Double(batch * plane)
        let means = cache.mean.pointer, inverseStd = cache.inverseStd.pointer
        // Two passes (mean, then squared deviations from it): activations can be large and M large.
        reduce(cache, .sum, x: x, dy: nil, means: nil)
        for c in 0..<channels { means[c] = Float(cache.total(c) / m) }
        reduce(cache, .squaredDeviation, x: x, dy: nil, means: means)
        let runningMean = runningMean.value.pointer, runningVariance = runningVariance.value.pointer
        for c in 0..<channels {
            let variance = cache.total(c) / m
            inverseStd[c] = Float(1 / (variance + Double(Self.epsilon)).squareRoot())
            let unbiased = m > 1 ? variance * m / (m - 1) : variance
            runningMean[c] = (1 - Self.momentum) * runningMean[c] + Self.momentum * means[c]
            runningVariance[c] = (1 - Self.momentum) * runningVariance[c] + Self.momentum * Float(unbiased)
        }
        // y = (x − μ)·(γ/σ) + β
        Parallel.forEach(batch, minimumWork: imageSize,
                         context: (x: x, y: y, means: means, inverseStd: inverseStd, gamma: gamma, beta: beta,
                                   channels: channels, plane: plane)) { b, n in
            let plane = b.plane, imageSize = b.channels * plane
            for c in 0..<b.channels {
                let offset = n * imageSize + c * plane
                Vector.affine(b.x + offset, center: b.means[c], scale: b.gamma[c] * b.inverseStd[c], shift: b.beta[c],
                              to: b.y + offset, count: plane)
            }
        }
    }

    /// The per-plane sums `reduce` accumulates.
    private enum Reduction {
        case sum                // Σ x
        case squaredDeviation   // Σ (x − μ)²
        case gradient           // Σ dy, and Σ dy·(x − μ)
    }

    /// partials[g][0][c], partials[g][1][c] = Σ over group g's images of the `kind` sums of
    /// each of their planes (the second 0 except for `.gradient`), the groups in parallel.
    private func reduce(_ cache: Cache, _ kind: Reduction, x: UnsafePointer<Float>, dy: UnsafePointer<Float>?,
                        means: UnsafePointer<Float>?) {
        let context = (cache: cache, kind: kind, x: x, dy: dy, means: means, channels: inputShape.channels,
                       spatial: inputShape.spatial)
        Parallel.forEach(cache.groups, minimumWork: cache.batch * inputShape.count / cache.groups, context: context) { r, g in
            let channels = r.channels, spatial = r.spatial, imageSize = channels * spatial
            let first = r.cache.partials + 2 * g * channels, second = first + channels
            first.update(repeating: 0, count: 2 * channels)
            for n in r.cache.images(ofGroup: g) {
                for c in 0..<channels {
                    let offset = n * imageSize + c * spatial
                    switch r.kind {
                    case .sum:
                        first[c] += Double(Vector.sum(r.x + offset, count: spatial))
                    case .squaredDeviation:
                        guard let means = r.means else { return }
                        first[c] += Double(Vector.squaredDeviation(r.x + offset, mean: means[c], count: spatial))
                    case .gradient:
                        guard let dy = r.dy, let means = r.means else { return }
                        first[c] += Double(Vector.sum(dy + offset, count: spatial))
                        second[c] += Double(Vector.centeredDot(dy + offset, r.x + offset, center: means[c], count: spatial))
                    }
                }
            }
        }
    }

    public func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, cache: LayerCache) {
        let cache = unsafeDowncast(cache, to: Cache.self)
        guard cache.training, let scaleGradient = scale.gradient?.pointer,
              let shiftGradient = shift.gradient?.pointer else { return }
        let channels = inputShape.channels
        let plane = inputShape.spatial
        let imageSize = channels * plane
        let m = Float(cache.batch * plane)
        let gamma = scale.value.pointer
        let means = cache.mean.pointer, inverseStd = cache.inverseStd.pointer
        // Σ dy and Σ dy·x̂ = (1/σ)·Σ dy·(x − μ), per channel, in one pass.
        reduce(cache, .gradient, x: x, dy: UnsafePointer(dy), means: means)
        let sums = cache.perChannel.pointer
        for c in 0..<channels {
            let sumDy = Float(cache.total(c)), sumDyXhat = Float(cache.total(c, second: true)) * inverseStd[c]
            scaleGradient[c] += sumDyXhat
            shiftGradient[c] += sumDy
            sums[c] = sumDy
            sums[channels + c] = sumDyXhat
        }
        guard let dx else { return }
        // dx = k·(dy − mean(dy) − x̂·mean(dy·x̂)), k = γ/σ, x̂ = (x − μ)/σ.
        Parallel.forEach(cache.batch, minimumWork: imageSize,
                         context: (x: x, dy: dy, dx: dx, gamma: gamma, means: means, inverseStd: inverseStd, sums: sums,
                                   m: m, channels: channels, plane: plane)) { b, n in
            let channels = b.channels, plane = b.plane, imageSize = channels * plane
            for c in 0..<channels {
                let k = b.gamma[c] * b.inverseStd[c]
                let meanDy = b.sums[c] / b.m, meanDyXhat = b.sums[channels + c] / b.m
                let offset = n * imageSize + c * plane
                Vector.normalizationGradient(b.dy + offset, b.x + offset, center: b.means[c], gain: k,
                                             offset: k * meanDy, slope: k * b.inverseStd[c] * meanDyXhat,
                                             to: b.dx + offset, count: plane)
            }
        }
    }
}

extension BatchNorm2D.Cache {
    /// Σ over the groups, in order, of partials[g][second][c].
    @inline(__always)
    func total(_ c: Int, second: Bool = false) -> Double {
        var sum = 0.0
        for g in 0..<groups { sum += partials[(2 * g + (second ? 1 : 0)) * channels + c] }
        return sum
    }
}
