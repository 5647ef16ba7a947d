import Foundation
import Testing
@testable import ReparoCore

/// Expand and collapse are output-preserving. Tolerance 1e-5 relative (max |Δ| / max |y|):
/// the factors are products with semi-orthogonal matrices computed in Double and rounded to
/// float32 once, so the chain differs from the compact layer by a few float32 ulps per
/// layer; measured errors are ~1e-6 on these networks.
@Suite("Expansion and collapse")
struct ExpansionCollapseTests {
    static func expanded(_ model: Model, _ options: String = "{}") throws -> Model {
        try Expansion.expand(model, options: ExpandOptions(json: options))
    }

    @Test("expanded output equals compact output in eval and train mode, every spec")
    func expansionIsExact() throws {
        for (label, specText) in TestSupport.equivalenceSpecs {
            let compact = try Model(specJSON: specText, seed: 11)
            TestSupport.randomizeBatchNorm(compact, seed: 12)
            let expanded = try Self.expanded(compact, #"{"rate":2,"layers":"all","seed":5}"#)
            #expect(expanded.state == .expanded)
            let batch = 4
            let images = TestSupport.randomImages(batch * compact.inputShape.count, seed: 13)
            let error = TestSupport.relativeError(try expanded.infer(images, batch: batch), try compact.infer(images, batch: batch))
            #expect(error <= 1e-5, "\(label) eval: relative error \(error)")
            // Training mode: batch statistics; both networks see the same conv outputs.
            let trainError = try Self.trainModeError(compact, expanded, images: images, batch: batch)
            #expect(trainError <= 1e-5, "\(label) train: relative error \(trainError)")
        }
    }

    static func trainModeError(_ a: Model, _ b: Model, images: [Float], batch: Int) throws -> Double {
        func run(_ model: Model) throws -> [Float] {
            let cache = try model.network.makeCache(batch: batch, training: true)
            var output = [Float](repeating: 0, count: batch * model.classes)
            images.withUnsafeBufferPointer { x in
                output.withUnsafeMutableBufferPointer { y in
                    model.network.forward(x.baseAddress!, y.baseAddress!, cache: cache, training: true)
                }
            }
            return output
        }
        return TestSupport.relativeError(try run(b), try run(a))
    }

    @Test("expansion at the default rate 4 on the bundled digits keeps every prediction")
    func expansionOnDigits() throws {
        let test = try TestSupport.bundledDigits("test")
        let compact = try Model(specJSON: TestSupport.digitsSpec, seed: 2)
        TestSupport.randomizeBatchNorm(compact, seed: 3)
        let expanded = try Self.expanded(compact)
        let batch = 64
        let images = Array(test.images.prefix(batch * test.shape.count))
        let error = TestSupport.relativeError(try expanded.infer(images, batch: batch), try compact.infer(images, batch: batch))
        #expect(error <= 1e-5, "relative error \(error)")
    }

    @Test("chain shapes follow ExpandNets and every factor is dense (no all-zero blocks)")
    func chainShapesAndFactors() throws {
        let compact = try Model(specJSON: TestSupport.smallVGGLike, seed: 1)
        let expanded = try Self.expanded(compact, #"{"rate":3}"#)
        let f0 = try #require(TestSupport.parameter(expanded, "layers.0.factors.0.weight"))
        let f1 = try #require(TestSupport.parameter(expanded, "layers.0.factors.1.weight"))
        let f2 = try #require(TestSupport.parameter(expanded, "layers.0.factors.2.weight"))
        #expect(f0.shape == [9, 3, 1, 1])
        #expect(f1.shape == [27, 9, 3, 3])
        #expect(f2.shape == [9, 27, 1, 1])
        #expect(TestSupport.parameter(expanded, "layers.0.factors.2.bias")?.shape == [9])
        #expect(TestSupport.parameter(expanded, "layers.0.factors.0.bias") == nil)
        #expect(TestSupport.parameter(expanded, "layers.11.weight") != nil)  // linear untouched by "conv"
        for factor in [f0, f1, f2] {
            let zeros = factor.value.array.filter { $0 == 0 }.count
            #expect(zeros == 0, "\(factor.name) has \(zeros) zero entries")
        }
        // Q has orthonormal columns: QᵀQ = I (checked in Double here).
        let q = f0.value.array.map(Double.init)
        for i in 0..<3 {
            for j in 0..<3 {
                var dot = 0.0
                for r in 0..<9 { dot += q[r * 3 + i] * q[r * 3 + j] }
                #expect(abs(dot - (i == j ? 1 : 0)) < 1e-6)
            }
        }
        #expect(expanded.parameterCount > compact.parameterCount)
    }

    @Test("collapse after real fine-tuning steps equals the expanded network; shapes return to compact")
    func collapseAfterTraining() throws {
        for (label, specText) in TestSupport.equivalenceSpecs where label != "resnet56" {
            let dense = try Model(specJSON: specText, seed: 21)
            let pruned = try Pruning.prune(dense, options: PruneOptions())
            let expanded = try Self.expanded(pruned, #"{"layers":"all"}"#)
            try TestSupport.train(expanded, teacher: dense, options: #"{"lr":0.02,"kd_weight":100}"#, steps: 5)
            let collapsed = try Collapse.collapse(expanded, options: CollapseOptions())
            #expect(collapsed.state == .collapsed)
            var prunedSpec = pruned.spec
            prunedSpec.state = .collapsed
            #expect(collapsed.spec == prunedSpec, "\(label)")
            #expect(collapsed.parameterCount == pruned.parameterCount)
            let batch = 3
            let images = TestSupport.randomImages(batch * dense.inputShape.count, seed: 22)
            let error = TestSupport.relativeError(try collapsed.infer(images, batch: batch), try expanded.infer(images, batch: batch))
            #expect(error <= 1e-5, "\(label): relative error \(error)")
        }
    }

    @Test("collapse is W = F2·F1·F0 per tap: checked against a naive product")
    func collapseMatchesNaiveProduct() throws {
        let compact = try Model(specJSON: TestSupport.smallVGGLike, seed: 4)
        let expanded = try Self.expanded(compact, #"{"rate":2}"#)
        try TestSupport.train(expanded, steps: 3)
        let collapsed = try Collapse.collapse(expanded, options: CollapseOptions())
        let f0 = try #require(TestSupport.parameter(expanded, "layers.3.factors.0.weight"))
        let f1 = try #require(TestSupport.parameter(expanded, "layers.3.factors.1.weight"))
        let f2 = try #require(TestSupport.parameter(expanded, "layers.3.factors.2.weight"))
        let w = try #require(TestSupport.parameter(collapsed, "layers.3.weight"))
        let (cout, cin, k) = (w.shape[0], w.shape[1], w.shape[2])
        let (h1, h2) = (f0.shape[0], f1.shape[0])
        var worst = 0.0, scale = 0.0
        for o in 0..<cout {
            for i in 0..<cin {
                for tap in 0..<(k * k) {
                    var total = 0.0
                    for b in 0..<h2 {
                        for a in 0..<h1 {
                            total += Double(f2.value.pointer[o * h2 + b]) * Double(f1.value.pointer[(b * h1 + a) * k * k + tap])
                                * Double(f0.value.pointer[a * cin + i])
                        }
                    }
                    let actual = Double(w.value.pointer[(o * cin + i) * k * k + tap])
                    worst = max(worst, abs(actual - total))
                    scale = max(scale, abs(total))
                }
            }
        }
        #expect(worst / scale < 1e-6, "relative error \(worst / scale)")
    }

    @Test("folding BatchNorm removes layers and keeps outputs")
    func foldBatchNorm() throws {
        for (label, specText) in TestSupport.equivalenceSpecs {
            let model = try Model(specJSON: specText, seed: 31)
            TestSupport.randomizeBatchNorm(model, seed: 32)
            let expanded = try Self.expanded(try Pruning.prune(model, options: PruneOptions()))
            let folded = try Collapse.collapse(expanded, options: CollapseOptions(foldBatchNorm: true))
            #expect(!folded.parameters.contains { $0.kind == .runningMean }, "\(label)")
            let batch = 2
            let images = TestSupport.randomImages(batch * model.inputShape.count, seed: 33)
            let error = TestSupport.relativeError(try folded.infer(images, batch: batch), try expanded.infer(images, batch: batch))
            #expect(error <= 1e-5, "\(label): relative error \(error)")
        }
    }

    @Test("wrong states are refused with .state")
    func states() throws {
        let model = try Model(specJSON: TestSupport.smallVGGLike, seed: 1)
        func isState(_ error: any Error) -> Bool {
            if case ReparoError.state = error { return true }
            return false
        }
        #expect(performing: { try Collapse.collapse(model, options: CollapseOptions()) }, throws: isState)
        let expanded = try Self.expanded(model)
        #expect(performing: { try Self.expanded(expanded) }, throws: isState)
        #expect(throws: ReparoError.self) { try Self.expanded(model, #"{"rate":0}"#) }
        #expect(throws: ReparoError.self) { try Self.expanded(model, #"{"layers":["nope"]}"#) }
        #expect(throws: ReparoError.self) { try Self.expanded(model, #"{"rates":2}"#) }
    }
}

/// Online collapse trains the factors with the same gradients as the naive chain. Tolerance
/// 1e-4 relative after 6 SGD steps (momentum, Nesterov off, weight decay): the two paths sum
/// the same products in different orders, and float32 differences of ~1e-6 per step grow
/// slowly through the updates.
@Suite("Online-collapsed training")
struct OnlineChainTests {
    static func trainedTwins(_ spec: String, rate: Int, layers: String, steps: Int) throws -> (naive: Model, online: Model, losses: [(Double, Double)]) {
        let dense = try Model(specJSON: spec, seed: 41)
        let pruned = try Pruning.prune(dense, options: PruneOptions())
        let naive = try Expansion.expand(pruned, options: ExpandOptions(json: #"{"rate":\#(rate),"layers":"\#(layers)"}"#))
        let online = try naive.clone()
        let base = #"{"lr":0.05,"momentum":0.9,"weight_decay":0.001,"kd_weight":50,"augment":{"flip":true},"seed":3"#
        let naiveTrainer = try Trainer(student: naive, teacher: dense, options: TrainerOptions(json: base + #","chain_mode":"naive"}"#))
        let onlineTrainer = try Trainer(student: online, teacher: dense, options: TrainerOptions(json: base + #","chain_mode":"online"}"#))
        var generator = SeededGenerator(seed: 5)
        var losses: [(Double, Double)] = []
        let batch = 6
        for _ in 0..<steps {
            let images = TestSupport.randomImages(batch * dense.inputShape.count, seed: generator.next())
            let labels = (0..<batch).map { _ in Int32(generator.nextInt(below: dense.classes)) }
            let a = try TrainingTests.step(naiveTrainer, images, labels)
            let b = try TrainingTests.step(onlineTrainer, images, labels)
            losses.append((a.loss, b.loss))
        }
        return (naive, online, losses)
    }

    static let sixteenWide = """
    {"input":[3,16,16],"classes":5,"layers":[
     {"type":"conv","out":6,"kernel":3,"padding":1},{"type":"batchnorm"},{"type":"relu"},
     {"type":"conv","out":7,"kernel":3,"padding":1,"bias":true},{"type":"relu"},{"type":"maxpool","kernel":2,"stride":2},
     {"type":"flatten"},{"type":"linear","out":5}]}
    """

    @Test("naive and online chains give the same losses and factors after several steps")
    func sameTrajectory() throws {
        for (label, spec, layers) in [("vgg-like", TestSupport.smallVGGLike, "all"), ("resnet-like", TestSupport.smallResNet, "conv"),
                                      ("digits", TestSupport.digitsSpec, "all"),
                                      // 16-wide planes: both modes' 3×3 convs take the padded-width path.
                                      ("16-wide", Self.sixteenWide, "all")] {
            let (naive, online, losses) = try Self.trainedTwins(spec, rate: 2, layers: layers, steps: 6)
            for (step, (a, b)) in losses.enumerated() {
                #expect(abs(a - b) <= 1e-4 * max(1, abs(a)), "\(label) step \(step): loss \(a) vs \(b)")
            }
            for (p, q) in zip(naive.parameters, online.parameters) {
                // Scale floored at 1e-2: a conv bias right before BatchNorm has a zero true
                // gradient, so its values are pure rounding noise (~1e-9) in both paths.
                let difference = zip(q.value.array, p.value.array).map { Double(abs($0 - $1)) }.max() ?? 0
                let error = difference / max(p.value.array.map { Double(abs($0)) }.max() ?? 0, 1e-2)
                #expect(error <= 1e-4, "\(label) \(p.name): relative error \(error)")
            }
        }
    }

    @Test("automatic mode picks the cheaper path by multiply-adds")
    func automaticChoice() throws {
        let model = try Expansion.expand(try Model(specJSON: TestSupport.smallVGGLike, seed: 1), options: ExpandOptions())
        let chains = model.network.filterMap { $0 as? ExpandedChain }
        #expect(chains.count == 3)
        for chain in chains {
            let small = chain.trainingCost(batch: 1), large = chain.trainingCost(batch: 4096)
            // The collapse cost does not grow with the batch; the naive chain's does.
            #expect(large.naive > small.naive)
            #expect(large.online - small.online < large.naive - small.naive)
            #expect(chain.resolvedMode(.automatic, batch: 4096) == .online)
        }
    }

    /// A 100-wide 3×3 conv on a 2×2 plane at rate 4 (VGG-16's last layers, scaled down): from
    /// batch 64 the naive chain's 400-wide middle conv takes the small-plane path, which computes
    /// 4 of the 9 taps, and the unrolled chain becomes cheaper than collapsing the 400×400×9
    /// factor (measured on pruned VGG-16's 154-wide layers: 21–23 ms naive against 26 ms online).
    /// At 32 images (im2col, 9 taps) and 256 (the batch term dominates) online is cheaper.
    @Test("automatic mode counts the small-plane path's multiply-adds")
    func automaticChoiceOnSmallPlanes() throws {
        let spec = #"{"input":[100,2,2],"classes":5,"layers":[{"type":"conv","out":100,"kernel":3,"padding":1},"# +
            #"{"type":"flatten"},{"type":"linear","out":5}]}"#
        let model = try Expansion.expand(try Model(specJSON: spec, seed: 1),
                                         options: ExpandOptions(json: #"{"rate":4,"layers":"conv"}"#))
        let chains = model.network.filterMap { $0 as? ExpandedChain }
        try #require(chains.count == 1)
        let chain = chains[0]
        let (c, h, positions) = (100, 400, 4)
        // Closed forms: collapse = 3·Cout·h₂·h₁·9 + 3·Cin·h₁·Cout·9; per image, im2col counts
        // 9 taps per output, the small-plane map 4 (every output sees all 4 inputs).
        let collapse = 3 * c * h * h * 9 + 3 * c * h * c * 9
        let pointwise = positions * (c * h + h * c)
        for (batch, taps) in [(1, 9), (32, 9), (64, 4), (256, 4)] {
            let cost = chain.trainingCost(batch: batch)
            #expect(cost.naive == 3 * batch * (positions * h * h * taps + pointwise), "batch \(batch)")
            #expect(cost.online == 3 * batch * positions * c * c * taps + collapse, "batch \(batch)")
        }
        #expect(chain.resolvedMode(.automatic, batch: 1) == .naive)
        #expect(chain.resolvedMode(.automatic, batch: 32) == .online)
        #expect(chain.resolvedMode(.automatic, batch: 64) == .naive)
        #expect(chain.resolvedMode(.automatic, batch: 256) == .online)
    }
}
