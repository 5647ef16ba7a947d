import Foundation
import Testing
@testable import ReparoCore

/// Pruning exactness. Oracle: the dense model with the removed channels' BatchNorm γ and β
/// set to 0, so those channels' post-activation values are exactly 0 — computed by the dense
/// network, with the kept channels chosen by an L1 ranking written here, independently of
/// `Pruning`. Tolerance 1e-5 relative: both sides run the same float32 kernels on the same
/// kept values; only GEMM summation order over the removed (zero) inputs differs.
@Suite("Pruning")
struct PruningTests {
    /// Kept filter indices of a conv by L1 norm, highest first then by index, ⌈(1−r)·C⌉ of them.
    static func keptByL1(_ weight: Parameter, ratio: Double, extra: [Parameter] = []) -> [Int] {
        let outputs = weight.shape[0]
        var scores = [Double](repeating: 0, count: outputs)
        for tensor in [weight] + extra {
            let perFilter = tensor.count / outputs
            for o in 0..<outputs {
                for i in 0..<perFilter { scores[o] += Double(abs(tensor.value.pointer[o * perFilter + i])) }
            }
        }
        let keep = max(1, Int(((1 - ratio) * Double(outputs) - 1e-9).rounded(.up)))
        return Array(scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }.prefix(keep))
    }

    /// Zeroes γ and β of every BatchNorm channel not in `kept`.
    static func silence(_ model: Model, batchNorm: String, kept: [Int]) throws {
        let gamma = try #require(TestSupport.parameter(model, batchNorm + ".weight"))
        let beta = try #require(TestSupport.parameter(model, batchNorm + ".bias"))
        let keep = Set(kept)
        for c in 0..<gamma.count where !keep.contains(c) {
            gamma.value.pointer[c] = 0
            beta.value.pointer[c] = 0
        }
    }

    /// Conv → following BatchNorm name, for every conv the default ("block") mode prunes:
    /// top-level convs followed by BN (not feeding a residual block), and each block's conv1.
    static func prunedPairs(_ spec: ModelSpec) -> [(conv: String, batchNorm: String)] {
        var pairs: [(String, String)] = []
        let layers = spec.layers
        for (index, layer) in layers.enumerated() {
            if layer.kind == .basicBlock {
                pairs.append((layer.main[0].name, layer.main[1].name))
            } else if layer.kind == .conv, index + 1 < layers.count, layers[index + 1].kind == .batchnorm {
                // Prunable unless a residual block consumes its output.
                let next = layers[(index + 1)...].first { $0.kind == .conv || $0.kind == .basicBlock || $0.kind == .linear }
                if next?.kind != .basicBlock { pairs.append((layer.name, layers[index + 1].name)) }
            }
        }
        return pairs
    }

    @Test("pruned output equals the dense output with removed channels zeroed", arguments: [0.3, 0.5, 0.9])
    func exactness(ratio: Double) throws {
        for (label, specText) in TestSupport.equivalenceSpecs {
            let dense = try Model(specJSON: specText, seed: 3)
            TestSupport.randomizeBatchNorm(dense, seed: 4)
            let pruned = try Pruning.prune(dense, options: PruneOptions(ratio: ratio))
            let oracle = try dense.clone()
            for (conv, batchNorm) in Self.prunedPairs(dense.spec) {
                let weight = try #require(TestSupport.parameter(dense, conv + ".weight"))
                try Self.silence(oracle, batchNorm: batchNorm, kept: Self.keptByL1(weight, ratio: ratio))
            }
            let batch = 3
            let images = TestSupport.randomImages(batch * dense.inputShape.count, seed: 5)
            let expected = try oracle.infer(images, batch: batch)
            let actual = try pruned.infer(images, batch: batch)
            let error = TestSupport.relativeError(actual, expected)
            #expect(error <= 1e-5, "\(label) ratio \(ratio): relative error \(error)")
            #expect(pruned.state == .pruned)
            #expect(pruned.parameterCount < dense.parameterCount, "\(label)")
            #expect(pruned.multiplyAdds < dense.multiplyAdds, "\(label)")
        }
    }

    @Test("coupled residual pruning: one channel set per stage, chosen by summed L1")
    func coupledResidual() throws {
        let dense = try Model(specJSON: #"{"preset":"resnet20","width":0.5}"#, seed: 8)
        TestSupport.randomizeBatchNorm(dense, seed: 9)
        let options = try PruneOptions(ratio: 0.5, residual: .coupled)
        let pruned = try Pruning.prune(dense, options: options)
        let oracle = try dense.clone()
        // Producers tied by the residual additions of each stage (ResNet-20: 3 blocks a stage).
        for stage in 1...3 {
            var producers: [(conv: String, batchNorm: String)] = stage == 1 ? [("conv1", "bn1")] : []
            for block in 0..<3 {
                producers.append(("layer\(stage).\(block).conv2", "layer\(stage).\(block).bn2"))
                if stage > 1 && block == 0 {
                    producers.append(("layer\(stage).0.shortcut.0", "layer\(stage).0.shortcut.1"))
                }
            }
            let weights = try producers.map { try #require(TestSupport.parameter(dense, $0.conv + ".weight")) }
            let kept = Self.keptByL1(weights[0], ratio: 0.5, extra: Array(weights.dropFirst()))
            for producer in producers { try Self.silence(oracle, batchNorm: producer.batchNorm, kept: kept) }
            // Block-internal convs are pruned too (their own groups).
            for block in 0..<3 {
                let weight = try #require(TestSupport.parameter(dense, "layer\(stage).\(block).conv1.weight"))
                try Self.silence(oracle, batchNorm: "layer\(stage).\(block).bn1", kept: Self.keptByL1(weight, ratio: 0.5))
            }
        }
        let images = TestSupport.randomImages(2 * 3 * 32 * 32, seed: 10)
        let error = TestSupport.relativeError(try pruned.infer(images, batch: 2), try oracle.infer(images, batch: 2))
        #expect(error <= 1e-5, "relative error \(error)")
        let linear = try #require(TestSupport.parameter(pruned, "linear.weight"))
        #expect(linear.shape == [10, 16])
    }

    @Test("per-layer ratios, criteria and option errors")
    func optionsAndCriteria() throws {
        let dense = try Model(specJSON: TestSupport.smallVGGLike, seed: 1)
        TestSupport.randomizeBatchNorm(dense, seed: 2)
        var options = try PruneOptions(json: #"{"ratio":0.5,"layers":{"layers.3":0.9}}"#)
        let pruned = try Pruning.prune(dense, options: options)
        #expect(pruned.spec.layers[0].out == 5)   // ⌈0.5·9⌉
        #expect(pruned.spec.layers[3].out == 2)   // ⌈0.1·11⌉
        for criterion in ["l2", "bn_gamma", "random"] {
            options = try PruneOptions(json: #"{"ratio":0.5,"criterion":"\#(criterion)","seed":3}"#)
            let model = try Pruning.prune(dense, options: options)
            #expect(model.spec.layers[0].out == 5, "\(criterion)")
        }
        // bn_gamma keeps the largest |γ|: check against the γ values directly.
        options = try PruneOptions(json: #"{"ratio":0.5,"criterion":"bn_gamma"}"#)
        let byGamma = try Pruning.prune(dense, options: options)
        let gamma = try #require(TestSupport.parameter(dense, "layers.1.weight")).value.array
        let expectedKept = gamma.indices.sorted { abs(gamma[$0]) > abs(gamma[$1]) }.prefix(5).sorted()
        let keptGamma = try #require(TestSupport.parameter(byGamma, "layers.1.weight")).value.array
        #expect(keptGamma == expectedKept.map { gamma[$0] })
        #expect(throws: ReparoError.self) { try PruneOptions(json: #"{"ratio":1.5}"#) }
        #expect(throws: ReparoError.self) { try PruneOptions(json: #"{"criterion":"l3"}"#) }
        #expect(throws: ReparoError.self) { try PruneOptions(json: #"{"ratios":0.5}"#) }
        #expect(throws: ReparoError.self) {
            try Pruning.prune(dense, options: try PruneOptions(json: #"{"layers":{"nope":0.5}}"#))
        }
    }

    @Test("the dense model is untouched and an expanded model cannot be pruned")
    func denseUntouchedAndStates() throws {
        let dense = try Model(specJSON: TestSupport.smallVGGLike, seed: 1)
        let before = try dense.snapshot().map { $0.values.array }
        _ = try Pruning.prune(dense, options: PruneOptions())
        #expect(try dense.snapshot().map { $0.values.array } == before)
        let expanded = try Expansion.expand(dense, options: ExpandOptions())
        #expect {
            try Pruning.prune(expanded, options: PruneOptions())
        } throws: { error in
            guard case ReparoError.state = error else { return false }
            return true
        }
    }
}
