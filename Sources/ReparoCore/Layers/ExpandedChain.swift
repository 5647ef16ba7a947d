/// A compact conv or linear layer over-parameterized as three consecutive linear factors
/// (ExpandNets, Guo et al. 2020; Qian et al. 2022): for a conv, 1×1 F₀ (Cin → r·Cin) → k×k F₁
/// (r·Cin → r·Cout, the original stride and padding) → 1×1 F₂ (r·Cout → Cout, the original
/// bias). No nonlinearity inside, so the chain equals one layer with the product weight
/// W[:,:,t] = F₂·F₁[:,:,t]·F₀ for every kernel tap t.
///
/// Two ways to train it, with the same gradients for the factors:
/// - `.naive`: the chain itself, three convs (the paper's form; costs ≈ r²× the compact conv).
/// - `.online`: collapse W once per step, run ONE compact conv, and push dW back onto the
///   factors: dF₂ = Σₜ dWₜ·(F₁ₜF₀)ᵀ, dF₁ₜ = F₂ᵀ·dWₜ·F₀ᵀ, dF₀ = Σₜ (F₂F₁ₜ)ᵀ·dWₜ. Its extra cost is
///   ≈ 3·r²·Cin²·Cout·k² multiply-adds per step, independent of the batch. The products are
///   grouped around G = F₂·F₁ and E = dW·F₀ᵀ (both [Cout, h₁, taps]) so that F₁ and its
///   gradient are only ever read and written in their own layout: the tap permutes touch
///   Cout-sized tensors, not the r²-times larger middle factor.
/// `.automatic` picks, per layer and batch size, the mode with fewer multiply-adds. The mode is
/// the workspace owner's choice (`WorkspaceOptions.chainMode`: a trainer's `chain_mode`), made
/// when its training workspace is made; nothing is written on the chain.
/// Inference (eval-mode caches) always runs the chain: it is read-only and thread-safe.
public final class ExpandedChain: Layer {
    public enum TrainingMode: String, Sendable, CaseIterable {
        case naive, online
        case automatic = "auto"
    }

    public let name: String
    public let inputShape: FeatureShape
    public let factors: [Layer]
    let path: Sequential

    // Chain geometry: W [Cout, Cin·taps] = F₂ [Cout, h₂] · F₁ [h₂, h₁, taps] · F₀ [h₁, Cin].
    let inputs: Int, hiddenIn: Int, hiddenOut: Int, outputs: Int, taps: Int
    /// The compact conv that runs the collapsed kernel (nil for a linear chain).
    let compactConv: Conv2D?

    init(name: String, input: FeatureShape, factors: [Layer]) throws {
        self.name = name
        self.inputShape = input
        self.factors = factors
        self.path = Sequential(name: name, input: input, layers: factors)
        let weights = factors.compactMap { $0.parameters.first(where: { $0.kind == .weight }) }
        guard weights.count == 3 else { throw ReparoError.internalError("chain \(name) needs three weighted factors") }
        first = weights[0]
        middle = weights[1]
        last = weights[2]
        lastBias = factors[2].parameters.count > 1 ? factors[2].parameters[1] : nil
        hiddenIn = weights[0].shape[0]
        inputs = weights[0].shape[1]
        hiddenOut = weights[1].shape[0]
        outputs = weights[2].shape[0]
        taps = weights[1].shape.count == 4 ? weights[1].shape[2] * weights[1].shape[3] : 1
        if let middle = factors[1] as? Conv2D, let last = factors[2] as? Conv2D {
            compactConv = try Conv2D(name: name, input: input, outputChannels: outputs, kernelSize: middle.kernelSize,
                                     stride: middle.stride, padding: middle.padding, sharedBias: last.bias)
        } else {
            compactConv = nil
        }
    }

    public var outputShape: FeatureShape { path.outputShape }
    public var children: [Layer] { factors }
    public var kind: LayerSpec.Kind? { compactConv == nil ? .linear : .conv }
    public var multiplyAdds: Int { path.multiplyAdds }

    // The factors' weights and the last bias, kept (a layer's `parameters` builds a new array
    // on every call, and collapse/distribute run every step).
    let first: Parameter, middle: Parameter, last: Parameter
    let lastBias: Parameter?

    /// Multiply-adds of one training step (forward + both backward products) in each mode, as
    /// the engine computes them at this batch size (a conv on the small-plane path skips the
    /// padding taps, see `Conv2D.computedMultiplyAdds`). The collapse products:
    /// G = F₂·F₁ and dF₁, dF₂ (Cout·h₂·h₁·taps each), W' and dF₀, E' (Cin·h₁·Cout·taps each).
    public func trainingCost(batch: Int) -> (naive: Int, online: Int) {
        func computed(_ layer: Layer) -> Int {
            (layer as? Conv2D)?.computedMultiplyAdds(batch: batch) ?? batch * layer.multiplyAdds
        }
        let naive = 3 * factors.reduce(0) { $0 + computed($1) }
        let compact = 3 * (compactConv.map(computed) ?? batch * outputs * inputs)
        let collapse = 3 * outputs * hiddenOut * hiddenIn * taps + 3 * inputs * hiddenIn * outputs * taps
        return (naive, compact + collapse)
    }

    /// The mode a training workspace of `batch` samples runs when `mode` is asked for.
    func resolvedMode(_ mode: TrainingMode, batch: Int) -> TrainingMode {
        switch mode {
        case .naive, .online: return mode
        case .automatic:
            let cost = trainingCost(batch: batch)
            return cost.online <= cost.naive ? .online : .naive
        }
    }

    final class OnlineCache: LayerCache {
        let compact: LayerCache?            // Conv2D cache (conv chains)
        let weight: FloatBuffer             // W [Cout, Cin·taps]
        let weightGradient: FloatBuffer     // dW
        let outer: FloatBuffer              // G = F₂·F₁ [Cout, h₁·taps]; in backward E [Cout, h₁·taps]
        let outerPermuted: FloatBuffer      // G' [h₁, Cout·taps] (kept for backward); then E'
        let weightPermuted: FloatBuffer     // W' [Cin, Cout·taps]; in backward dW'
        init(batch: Int, chain: ExpandedChain) throws {
            compact = try chain.compactConv?.makeCache(batch: batch, training: true)
            let k = chain.inputs * chain.taps
            weight = try FloatBuffer(count: chain.outputs * k)
            weightGradient = try FloatBuffer(count: chain.outputs * k)
            outer = try FloatBuffer(count: chain.outputs * chain.hiddenIn * chain.taps)
            outerPermuted = try FloatBuffer(count: chain.outputs * chain.hiddenIn * chain.taps)
            weightPermuted = try FloatBuffer(count: chain.outputs * k)
            super.init(batch: batch, training: true)
        }
    }

    public func makeCache(batch: Int, training: Bool) throws -> LayerCache {
        try makeCache(batch: batch, training: training, options: WorkspaceOptions())
    }

    public func makeCache(batch: Int, training: Bool, options: WorkspaceOptions) throws -> LayerCache {
        if training && resolvedMode(options.chainMode, batch: batch) == .online {
            return try OnlineCache(batch: batch, chain: self)
        }
        return try path.makeCache(batch: batch, training: training, options: options)
    }

    /// W[co, c, t] = Σᵢ G[co, i, t] · F₀[i, c] with G = F₂·F₁ (F₁ read as [h₂, h₁·taps], its
    /// layout): G = F₂·F₁, G' = G as [h₁, Cout·taps], W' = F₀ᵀ·G' [Cin, Cout·taps], W = W' as
    /// [Cout, Cin·taps]. G' stays in the cache for `distribute`.
    func collapse(into cache: OnlineCache) {
        let (cin, h1, h2, cout, t) = (inputs, hiddenIn, hiddenOut, outputs, taps)
        BLAS.gemm(transposeA: false, transposeB: false, m: cout, n: h1 * t, k: h2,
                  a: last.value.pointer, lda: h2, b: middle.value.pointer, ldb: h1 * t,
                  beta: 0, c: cache.outer.pointer, ldc: h1 * t)
        Vector.permuteBlocks(cache.outer.pointer, to: cache.outerPermuted.pointer, a: cout, b: h1, inner: t)
        BLAS.gemm(transposeA: true, transposeB: false, m: cin, n: cout * t, k: h1,
                  a: first.value.pointer, lda: cin, b: cache.outerPermuted.pointer, ldb: cout * t,
                  beta: 0, c: cache.weightPermuted.pointer, ldc: cout * t)
        Vector.permuteBlocks(cache.weightPermuted.pointer, to: cache.weight.pointer, a: cin, b: cout, inner: t)
    }

    /// Pushes dW (in cache.weightGradient) onto the factors' gradients (+=), with dW' = dW as
    /// [Cin, Cout·taps] and E[co, i, t] = Σ_c dW[co, c, t]·F₀[i, c]:
    ///   dF₀ += G'·dW'ᵀ,  E' = F₀·dW' [h₁, Cout·taps] → E,  dF₁ += F₂ᵀ·E,  dF₂ += E·F₁ᵀ.
    func distribute(_ cache: OnlineCache) {
        let (cin, h1, h2, cout, t) = (inputs, hiddenIn, hiddenOut, outputs, taps)
        guard let g0 = first.gradient?.pointer, let g1 = middle.gradient?.pointer, let g2 = last.gradient?.pointer else { return }
        let gradientPermuted = cache.weightPermuted.pointer
        Vector.permuteBlocks(cache.weightGradient.pointer, to: gradientPermuted, a: cout, b: cin, inner: t)
        // dF₀ [h₁, Cin] += G' · dW'ᵀ
        BLAS.gemm(transposeA: false, transposeB: true, m: h1, n: cin, k: cout * t,
                  a: cache.outerPermuted.pointer, lda: cout * t, b: gradientPermuted, ldb: cout * t,
                  beta: 1, c: g0, ldc: cin)
        // E' = F₀ · dW' [h₁, Cout·taps] (G' is no longer needed), then E [Cout, h₁·taps]
        BLAS.gemm(transposeA: false, transposeB: false, m: h1, n: cout * t, k: cin,
                  a: first.value.pointer, lda: cin, b: gradientPermuted, ldb: cout * t,
                  beta: 0, c: cache.outerPermuted.pointer, ldc: cout * t)
        Vector.permuteBlocks(cache.outerPermuted.pointer, to: cache.outer.pointer, a: h1, b: cout, inner: t)
        // dF₁ [h₂, h₁·taps] += F₂ᵀ · E, straight into F₁'s layout
        BLAS.gemm(transposeA: true, transposeB: false, m: h2, n: h1 * t, k: cout,
                  a: last.value.pointer, lda: h2, b: cache.outer.pointer, ldb: h1 * t,
                  beta: 1, c: g1, ldc: h1 * t)
        // dF₂ [Cout, h₂] += E · F₁ᵀ
        BLAS.gemm(transposeA: false, transposeB: true, m: cout, n: h2, k: h1 * t,
                  a: cache.outer.pointer, lda: h1 * t, b: middle.value.pointer, ldb: h1 * t,
                  beta: 1, c: g2, ldc: h2)
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, cache: LayerCache, training: Bool) {
        guard let online = cache as? OnlineCache else {
            path.forward(x, y, cache: cache, training: training)
            return
        }
        collapse(into: online)
        if let conv = compactConv, let convCache = online.compact {
            conv.forward(x, y, cache: unsafeDowncast(convCache, to: Conv2D.Cache.self), weight: online.weight.pointer)
        } else {
            Linear.forward(x, y, batch: online.batch, weight: online.weight.pointer, bias: lastBias?.value.pointer,
                           inputs: inputs, outputs: outputs)
        }
    }

    public func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, cache: LayerCache) {
        guard let online = cache as? OnlineCache else {
            path.backward(x, y, dy, dx, cache: cache)
            return
        }
        online.weightGradient.zero()
        if let conv = compactConv, let convCache = online.compact {
            conv.backward(x, dy, dx, cache: unsafeDowncast(convCache, to: Conv2D.Cache.self), weight: online.weight.pointer,
                          weightGradient: online.weightGradient.pointer)
        } else {
            Linear.backward(x, dy, dx, batch: online.batch, weight: online.weight.pointer,
                            weightGradient: online.weightGradient.pointer, biasGradient: lastBias?.gradient?.pointer,
                            inputs: inputs, outputs: outputs)
        }
        distribute(online)
    }
}
