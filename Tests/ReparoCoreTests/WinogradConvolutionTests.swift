import Foundation
import Testing
@testable import ReparoCore

// Winograd F(2×2, 3×3) inference (`WinogradConvolution`) against two oracles: the conv by its
// definition in Double (seven loops, written here) and the engine's own direct paths (im2col /
// padded width), which share no code with the Winograd transforms.
//
// Tolerances. The direct conv's Float32 sums of K = 9·Cin products carry about √K·u of the
// terms' size (u = 2⁻²⁴); F(2×2, 3×3) sums 16-entry tiles built by additions (Bᵀ·d·B sums up to
// 4 inputs, Aᵀ·M·A up to 9 products), so its error is that of the direct conv times a small
// factor: measured ≤ 4.2e-7 of max |y| on the random shapes (K ≤ 630; the direct conv ≤ 7e-7)
// and 1.5–3.8e-7 on VGG-16's layers (K ≤ 4608; the direct conv 1.5–2.9e-7; printed by the VGG
// test). 2e-5 of max |y| leaves room for other BLAS cores' summation orders, while a wrong
// tile, a missing border or a dropped bias gives errors of the order of max |y|.

/// Conv2D by definition in Double: 3×3, stride 1, zero padding, output channels `channels`
/// only (all when nil) — the VGG test samples channels of its largest layers.
private func reference(_ x: UnsafePointer<Float>, batch: Int, conv: Conv2D, outputChannels channels: [Int]? = nil)
    -> [Double] {
    let cin = conv.inputShape.channels, h = conv.inputShape.height, w = conv.inputShape.width
    let ho = conv.outputShape.height, wo = conv.outputShape.width, p = conv.padding
    let selected = channels ?? Array(0..<conv.outputShape.channels)
    let weight = conv.weight.value.pointer, bias = conv.bias?.value.pointer
    var y = [Double](repeating: 0, count: batch * selected.count * ho * wo)
    for n in 0..<batch {
        for (i, o) in selected.enumerated() {
            for oh in 0..<ho {
                for ow in 0..<wo {
                    var total = bias.map { Double($0[o]) } ?? 0
                    for c in 0..<cin {
                        for u in 0..<3 {
                            let ih = oh - p + u
                            guard ih >= 0, ih < h else { continue }
                            for v in 0..<3 {
                                let iw = ow - p + v
                                guard iw >= 0, iw < w else { continue }
                                total += Double(weight[((o * cin + c) * 3 + u) * 3 + v]) * Double(x[((n * cin + c) * h + ih) * w + iw])
                            }
                        }
                    }
                    y[((n * selected.count + i) * ho + oh) * wo + ow] = total
                }
            }
        }
    }
    return y
}

/// The output channels `channels` of y [N, Cout, Ho, Wo].
private func select(_ y: FloatBuffer, batch: Int, conv: Conv2D, outputChannels channels: [Int]) -> [Float] {
    let plane = conv.outputShape.spatial, cout = conv.outputShape.channels
    var result: [Float] = []
    for n in 0..<batch {
        for o in channels { result += Array(UnsafeBufferPointer(start: y.pointer + (n * cout + o) * plane, count: plane)) }
    }
    return result
}

/// max |actual − expected|, max |expected|.
private func error(_ actual: [Float], _ expected: [Double]) -> (error: Double, scale: Double) {
    var error = 0.0, scale = 0.0
    for (a, e) in zip(actual, expected) {
        error = a.isNaN ? .infinity : max(error, abs(Double(a) - e))
        scale = max(scale, abs(e))
    }
    return (error, scale)
}

/// y of `conv` on x through a workspace with Winograd forced on or off (NaN-filled first: every
/// output must be written).
private func forward(_ conv: Conv2D, _ x: FloatBuffer, batch: Int, winograd: Bool, rectify: Bool = false,
                     cache: Conv2D.Cache? = nil) throws -> FloatBuffer {
    let cache = try cache ?? conv.makeCache(batch: batch, training: false, path: conv.path(batch: batch), winograd: winograd)
    #expect((cache.winograd != nil) == winograd)
    let y = try FloatBuffer(count: batch * conv.outputShape.count)
    y.buffer.update(repeating: .nan)
    conv.forward(x.pointer, y.pointer, cache: cache, weight: conv.weight.value.pointer, rectify: rectify)
    return y
}

private func randomConv(cin: Int, cout: Int, height: Int, width: Int, padding: Int, bias: Bool,
                        generator: inout SeededGenerator) throws -> Conv2D {
    let conv = try Conv2D(name: "conv", input: FeatureShape(channels: cin, height: height, width: width),
                          outputChannels: cout, kernelSize: 3, stride: 1, padding: padding, bias: bias)
    for i in 0..<conv.weight.count { conv.weight.value.pointer[i] = generator.nextNormal() }
    if let b = conv.bias { for i in 0..<b.count { b.value.pointer[i] = generator.nextNormal() } }
    return conv
}

private func randomInput(_ count: Int, generator: inout SeededGenerator) throws -> FloatBuffer {
    let x = try FloatBuffer(count: count)
    for i in 0..<count { x.pointer[i] = generator.nextNormal() }
    return x
}

/// F(m×m, 3×3) of one plane pair in Float, by its matrices (Lavin & Gray §4.1–4.2), summing
/// channels in order: an independent estimate of each tile size's rounding error.
private struct GenericWinograd {
    let m: Int
    let bt: [[Float]], g: [[Float]], at: [[Float]]
    var a: Int { m + 2 }   // input tile

    static let f2 = GenericWinograd(m: 2,
        bt: [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
        g: [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
        at: [[1, 1, 1, 0], [0, 1, -1, -1]])
    static let f4 = GenericWinograd(m: 4,
        bt: [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
             [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
        g: [[1.0 / 4, 0, 0], [-1.0 / 6, -1.0 / 6, -1.0 / 6], [-1.0 / 6, 1.0 / 6, -1.0 / 6],
            [1.0 / 24, 1.0 / 12, 1.0 / 6], [1.0 / 24, -1.0 / 12, 1.0 / 6], [0, 0, 1]],
        at: [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]])

    /// L·X·Rᵀ for small dense matrices.
    private func sandwich(_ l: [[Float]], _ x: [[Float]], _ r: [[Float]]) -> [[Float]] {
        let lx = l.map { row in (0..<x[0].count).map { j in zip(row, x).reduce(Float(0)) { $0 + $1.0 * $1.1[j] } } }
        return lx.map { row in r.map { rr in zip(row, rr).reduce(Float(0)) { $0 + $1.0 * $1.1 } } }
    }

    /// Output channels `channels` of `conv` on image 0 of x, [channels, Ho, Wo].
    func run(_ x: UnsafePointer<Float>, conv: Conv2D, outputChannels channels: [Int]) -> [Float] {
        let cin = conv.inputShape.channels, h = conv.inputShape.height, w = conv.inputShape.width
        let ho = conv.outputShape.height, wo = conv.outputShape.width, p = conv.padding
        let th = (ho + m - 1) / m, tw = (wo + m - 1) / m
        let weight = conv.weight.value.pointer, bias = conv.bias?.value.pointer
        // V per (channel, tile).
        var v: [[[Float]]] = []
        for c in 0..<cin {
            for i in 0..<th {
                for j in 0..<tw {
                    var d = [[Float]](repeating: [Float](repeating: 0, count: a), count: a)
                    for r in 0..<a {
                        for s in 0..<a {
                            let ih = i * m - p + r, iw = j * m - p + s
                            if ih >= 0, ih < h, iw >= 0, iw < w { d[r][s] = x[(c * h + ih) * w + iw] }
                        }
                    }
                    v.append(sandwich(bt, d, bt))
                }
            }
        }
        var y = [Float](repeating: 0, count: channels.count * ho * wo)
        for (k, o) in channels.enumerated() {
            let u = (0..<cin).map { c in
                sandwich(g, (0..<3).map { r in (0..<3).map { s in weight[((o * cin + c) * 3 + r) * 3 + s] } }, g)
            }
            for t in 0..<(th * tw) {
                var sum = [[Float]](repeating: [Float](repeating: 0, count: a), count: a)
                for c in 0..<cin {
                    let vt = v[c * th * tw + t]
                    for r in 0..<a { for s in 0..<a { sum[r][s] += u[c][r][s] * vt[r][s] } }
                }
                let tile = sandwich(at, sum, at)
                for r in 0..<m {
                    for s in 0..<m {
                        let oh = (t / tw) * m + r, ow = (t % tw) * m + s
                        if oh < ho, ow < wo { y[(k * ho + oh) * wo + ow] = tile[r][s] + (bias.map { $0[o] } ?? 0) }
                    }
                }
            }
        }
        return y
    }
}

@Suite("Winograd F(2×2, 3×3) convolution")
struct WinogradConvolutionTests {
    @Test("Winograd equals the definition and the direct conv on random shapes (Cin, Cout 1–70, planes 1–17, batch 1–3)")
    func randomShapes() throws {
        var generator = SeededGenerator(seed: 1903)
        var worst = (winograd: 0.0, direct: 0.0)
        for trial in 0..<40 {
            let padding = trial % 4 == 3 ? 0 : 1
            let cin = 1 + generator.nextInt(below: 70), cout = 1 + generator.nextInt(below: 70)
            let low = padding == 0 ? 3 : 1
            let height = low + generator.nextInt(below: 18 - low), width = low + generator.nextInt(below: 18 - low)
            let batch = 1 + generator.nextInt(below: 3)
            let conv = try randomConv(cin: cin, cout: cout, height: height, width: width, padding: padding,
                                      bias: trial % 3 != 0, generator: &generator)
            #expect(WinogradConvolution.applies(to: conv))
            let x = try randomInput(batch * conv.inputShape.count, generator: &generator)
            let expected = reference(x.pointer, batch: batch, conv: conv)
            let winograd = try forward(conv, x, batch: batch, winograd: true).array
            let direct = try forward(conv, x, batch: batch, winograd: false).array
            let (e, scale) = error(winograd, expected), (d, _) = error(direct, expected)
            let label = "\(cin)→\(cout) \(height)×\(width) p\(padding) n\(batch)"
            #expect(e <= 2e-5 * scale, "\(label): Winograd error \(e), direct \(d), scale \(scale)")
            let between = zip(winograd, direct).reduce(0.0) { max($0, abs(Double($1.0) - Double($1.1))) }
            #expect(between <= 2e-5 * scale, "\(label): Winograd vs direct \(between), scale \(scale)")
            worst = (max(worst.winograd, e / scale), max(worst.direct, d / scale))
        }
        print("Winograd random shapes: max error / max |y|: Winograd \(worst.winograd), direct \(worst.direct)")
    }

    @Test("VGG-16 (CIFAR) layer shapes: Winograd's error against the definition, beside the direct conv's and F(4×4)'s")
    func vggLayers() throws {
        // (Cin, Cout, plane) of VGG-16's 13 convs on 32×32 (distinct shapes).
        let layers = [(3, 64, 32), (64, 64, 32), (64, 128, 16), (128, 128, 16), (128, 256, 8), (256, 256, 8),
                      (256, 512, 4), (512, 512, 4), (512, 512, 2)]
        var generator = SeededGenerator(seed: 16)
        for (cin, cout, plane) in layers {
            let conv = try randomConv(cin: cin, cout: cout, height: plane, width: plane, padding: 1, bias: true,
                                      generator: &generator)
            // Kaiming-scaled weights and a ReLU'd input, as in the trained network.
            let std = (2 / Float(9 * cin)).squareRoot()
            for i in 0..<conv.weight.count { conv.weight.value.pointer[i] *= std }
            let batch = 2
            let x = try randomInput(batch * conv.inputShape.count, generator: &generator)
            for i in 0..<x.count { x.pointer[i] = max(x.pointer[i], 0) }
            // Every channel of the small layers, 12 of the wide ones (the Double loop is slow).
            let channels = cout <= 64 ? Array(0..<cout) : (0..<12).map { $0 * cout / 12 }
            let expected = reference(x.pointer, batch: batch, conv: conv, outputChannels: channels)
            let winograd = select(try forward(conv, x, batch: batch, winograd: true), batch: batch, conv: conv,
                                  outputChannels: channels)
            let direct = select(try forward(conv, x, batch: batch, winograd: false), batch: batch, conv: conv,
                                outputChannels: channels)
            let (e, scale) = error(winograd, expected), (d, _) = error(direct, expected)
            let firstImage = Array(expected.prefix(channels.count * conv.outputShape.spatial))
            let (f2, scale0) = error(GenericWinograd.f2.run(x.pointer, conv: conv, outputChannels: channels), firstImage)
            let (f4, _) = error(GenericWinograd.f4.run(x.pointer, conv: conv, outputChannels: channels), firstImage)
            print("VGG-16 \(cin)→\(cout) \(plane)×\(plane): error / max |y|: engine Winograd F(2×2) \(e / scale), engine direct \(d / scale); naive Float F(2×2) \(f2 / scale0), F(4×4) \(f4 / scale0)")
            #expect(e <= 2e-5 * scale, "\(cin)→\(cout) \(plane)×\(plane): Winograd error \(e), direct \(d), scale \(scale)")
        }
    }

    @Test("The transformed weight follows the weight: recomputed after a write the parameter records")
    func staleWeights() throws {
        var generator = SeededGenerator(seed: 7)
        let conv = try randomConv(cin: 5, cout: 7, height: 9, width: 8, padding: 1, bias: true, generator: &generator)
        let x = try randomInput(2 * conv.inputShape.count, generator: &generator)
        let cache = try conv.makeCache(batch: 2, training: false, path: conv.path(batch: 2), winograd: true)
        let before = try forward(conv, x, batch: 2, winograd: true, cache: cache).array
        for i in 0..<conv.weight.count { conv.weight.value.pointer[i] = generator.nextNormal() }
        let generation = conv.weight.generation
        conv.weight.valueChanged()
        #expect(conv.weight.generation > generation)
        let after = try forward(conv, x, batch: 2, winograd: true, cache: cache).array
        let (e, scale) = error(after, reference(x.pointer, batch: 2, conv: conv))
        #expect(e <= 2e-5 * scale, "after the write: error \(e), scale \(scale)")
        #expect(after != before)
    }

    @Test("A trainer's step and loading tensors advance the weights' generation")
    func writersRecordGeneration() throws {
        let model = try Model(specJSON: #"{"input":[1,6,6],"classes":3,"layers":[{"type":"conv","out":4,"kernel":3,"padding":1},{"type":"relu"},{"type":"flatten"},{"type":"linear","out":3}]}"#, seed: 1)
        let weights = model.parameters
        let before = weights.map(\.generation)
        try TestSupport.train(model, steps: 1)
        #expect(zip(weights.map(\.generation), before).allSatisfy { $0 > $1 })
        let loaded = try Model(spec: model.spec, tensors: model.snapshot())
        #expect(loaded.parameters.allSatisfy { $0.generation > 0 })
    }

    @Test("Inference through a model's cache sees a trainer's new weights (Winograd forced on)")
    func inferenceAfterTraining() throws {
        let model = try Model(specJSON: #"{"input":[3,10,10],"classes":3,"layers":[{"type":"conv","out":8,"kernel":3,"padding":1},{"type":"relu"},{"type":"conv","out":6,"kernel":3,"padding":1},{"type":"relu"},{"type":"flatten"},{"type":"linear","out":3}]}"#, seed: 2)
        let convs = model.network.layers.compactMap { $0 as? Conv2D }
        let images = TestSupport.randomImages(2 * model.inputShape.count, seed: 3)
        func run(winograd: Bool) throws -> [Float] {
            // The model's own network with every conv's workspace forced on or off.
            let caches = try model.network.layers.map { layer -> LayerCache in
                guard let conv = layer as? Conv2D else { return try layer.makeCache(batch: 2, training: false) }
                return try conv.makeCache(batch: 2, training: false, path: conv.path(batch: 2), winograd: winograd)
            }
            return try images.withUnsafeBufferPointer { source in
                var input = try FloatBuffer(Array(source))
                for (layer, cache) in zip(model.network.layers, caches) {
                    let output = try FloatBuffer(count: 2 * layer.outputShape.count)
                    layer.forward(input.pointer, output.pointer, cache: cache, training: false)
                    input = output
                }
                return input.array
            }
        }
        #expect(!convs.isEmpty)
        // One cache kept across training, as Model's pool keeps its workspaces.
        let kept = try convs.map { try $0.makeCache(batch: 2, training: false, path: $0.path(batch: 2), winograd: true) }
        func runKept() throws -> [Float] {
            var input = try FloatBuffer(images)
            var c = 0
            for layer in model.network.layers {
                let output = try FloatBuffer(count: 2 * layer.outputShape.count)
                if let conv = layer as? Conv2D {
                    conv.forward(input.pointer, output.pointer, cache: kept[c], weight: conv.weight.value.pointer)
                    c += 1
                } else {
                    layer.forward(input.pointer, output.pointer, cache: try layer.makeCache(batch: 2, training: false),
                                  training: false)
                }
                input = output
            }
            return input.array
        }
        _ = try runKept()
        try TestSupport.train(model, steps: 2)
        let direct = try run(winograd: false), fresh = try run(winograd: true), after = try runKept()
        let scale = direct.map { abs(Double($0)) }.max() ?? 0
        let stale = zip(after, direct).reduce(0.0) { max($0, abs(Double($1.0) - Double($1.1))) }
        let freshError = zip(fresh, direct).reduce(0.0) { max($0, abs(Double($1.0) - Double($1.1))) }
        #expect(stale <= 2e-5 * scale, "kept workspace after training: \(stale), scale \(scale)")
        #expect(freshError <= 2e-5 * scale)
    }

    @Test("Results do not depend on the thread count (1 vs 2, bit for bit), several blocks or one; the fused ReLU is max(y, 0)")
    func threadsAndRectifier() throws {
        var generator = SeededGenerator(seed: 11)
        for (cin, cout, plane, batch) in [(16, 24, 32, 3), (64, 64, 16, 2), (7, 5, 9, 1), (130, 40, 4, 1)] {
            let conv = try randomConv(cin: cin, cout: cout, height: plane, width: plane, padding: 1, bias: true,
                                      generator: &generator)
            let x = try randomInput(batch * conv.inputShape.count, generator: &generator)
            let one = try ExecutionContext(threads: 1).run { try forward(conv, x, batch: batch, winograd: true).array }
            let two = try ExecutionContext(threads: 2).run { try forward(conv, x, batch: batch, winograd: true).array }
            #expect(one.elementsEqual(two, by: { $0.bitPattern == $1.bitPattern }), "\(cin)→\(cout) \(plane) n\(batch)")
            let rectified = try forward(conv, x, batch: batch, winograd: true, rectify: true).array
            #expect(rectified == one.map { max($0, 0) }, "\(cin)→\(cout) \(plane) n\(batch)")
        }
        let plan = WinogradConvolution(conv: try randomConv(cin: 16, cout: 24, height: 32, width: 32, padding: 1, bias: false,
                                                             generator: &generator))
        let workspace = try WinogradConvolution.Workspace(plan: plan, batch: 3)
        #expect(workspace.blocks > 1, "the first shape must run several blocks")
    }

    /// A measurement, not a check (run with REPARO_WINOGRAD_TIMING=1): each VGG-16 layer's
    /// inference forward by Winograd and by the direct path, interleaved in one process
    /// (round by round, so load drift hits both), median of 7 rounds; 2 threads. Meaningful in a
    /// release build only (`swift build -c release --build-tests -Xswiftc -enable-testing`, then
    /// the .xctest with `--testing-library swift-testing --filter vggTiming`): in a debug build
    /// the direct paths' Swift loops run unoptimized.
    @Test("VGG-16 per-layer timing, Winograd vs direct (REPARO_WINOGRAD_TIMING=1)",
          .enabled(if: ProcessInfo.processInfo.environment["REPARO_WINOGRAD_TIMING"] == "1"))
    func vggTiming() throws {
        let layers = [(3, 64, 32), (64, 64, 32), (64, 128, 16), (128, 128, 16), (128, 256, 8), (256, 256, 8),
                      (256, 512, 4), (512, 512, 4), (512, 512, 2)]
        var generator = SeededGenerator(seed: 3)
        for batch in [1, 64] {
            for (cin, cout, plane) in layers {
                let conv = try randomConv(cin: cin, cout: cout, height: plane, width: plane, padding: 1, bias: true,
                                          generator: &generator)
                let x = try randomInput(batch * conv.inputShape.count, generator: &generator)
                let y = try FloatBuffer(count: batch * conv.outputShape.count)
                let caches = try [false, true].map {
                    try conv.makeCache(batch: batch, training: false, path: conv.path(batch: batch), winograd: $0)
                }
                var times: [[Double]] = [[], []]
                ExecutionContext(threads: 2).run {
                    for round in 0..<8 {
                        for (i, cache) in caches.enumerated() {
                            let start = DispatchTime.now().uptimeNanoseconds
                            conv.forward(x.pointer, y.pointer, cache: cache, weight: conv.weight.value.pointer, rectify: true)
                            if round > 0 { times[i].append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6) }
                        }
                    }
                }
                let medians = times.map { $0.sorted()[$0.count / 2] }
                let plan = WinogradConvolution(conv: conv)
                print(String(format: "timing n%d %d→%d %d×%d: direct %.3f ms, Winograd %.3f ms, ratio %.2f (default %@)",
                             batch, cin, cout, plane, plane, medians[0], medians[1], medians[1] / medians[0],
                             plan.pays(batch: batch) ? "Winograd" : "direct"))
            }
        }
    }

    @Test("REPARO_WINOGRAD parses on / off / auto")
    func mode() {
        #expect(WinogradConvolution.Mode("on") == .on)
        #expect(WinogradConvolution.Mode("OFF") == .off)
        #expect(WinogradConvolution.Mode("auto") == .automatic)
        #expect(WinogradConvolution.Mode(nil) == .automatic)
    }
}
