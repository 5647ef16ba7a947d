import Foundation
import Testing
@testable import ReparoCore

@Suite("Model specs, files and description")
struct ModelTests {
    @Test("preset parameter counts match the architectures computed by hand")
    func presetParameterCounts() throws {
        // VGG-16 (CIFAR): 13 conv3×3 without bias + BN (γ, β) + Linear 512→10 with bias.
        let channels = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
        var expected = 0
        var previous = 3
        for c in channels { expected += previous * c * 9 + 2 * c; previous = c }
        expected += 512 * 10 + 10
        #expect(try Model(specJSON: #"{"preset":"vgg16"}"#, seed: 0).parameterCount == expected)
        // ResNet-20 with 1×1 projection shortcuts (option B) at the two stage transitions.
        func resnet(_ blocks: Int) -> Int {
            var total = 3 * 16 * 9 + 32
            var input = 16
            for width in [16, 32, 64] {
                for block in 0..<blocks {
                    total += input * width * 9 + 2 * width + width * width * 9 + 2 * width
                    if block == 0 && input != width { total += input * width + 2 * width }
                    input = width
                }
            }
            return total + 64 * 10 + 10
        }
        #expect(try Model(specJSON: #"{"preset":"resnet20"}"#, seed: 0).parameterCount == resnet(3))
        #expect(try Model(specJSON: #"{"preset":"resnet56"}"#, seed: 0).parameterCount == resnet(9))
        // FLOPs (multiply-adds) of a single conv: Cout·H·W·Cin·k².
        let conv = try Model(specJSON: #"{"input":[3,8,8],"classes":4,"layers":[{"type":"conv","out":4,"kernel":3,"padding":1},{"type":"avgpool"},{"type":"flatten"},{"type":"linear","out":4,"bias":false}]}"#, seed: 0)
        #expect(conv.multiplyAdds == 4 * 8 * 8 * 3 * 9 + 4 * 64 + 16)
    }

    @Test("presets on Fashion-MNIST's 1×28×28: VGG-16 pools four times, the ResNets have a 1-channel stem")
    func presetsOn28x28() throws {
        // VGG-16 at width 0.25, by hand: planes 28, 14, 7, 3, then 1 for the last two stages
        // (the fifth pool is left out: the plane is already 1×1). Conv MACs: Cout·H·W·Cin·9;
        // BatchNorm: C·H·W; pools and ReLU count nothing; classifier: 128·10 + bias 10 params.
        let stages: [(widths: [Int], side: Int)] = [([16, 16], 28), ([32, 32], 14), ([64, 64, 64], 7),
                                                    ([128, 128, 128], 3), ([128, 128, 128], 1)]
        var (parameters, macs, previous) = (0, 0, 1)
        for stage in stages {
            for c in stage.widths {
                parameters += previous * c * 9 + 2 * c
                macs += c * stage.side * stage.side * (previous * 9 + 1)
                previous = c
            }
        }
        parameters += 128 * 10 + 10
        macs += 128 * 10
        let vgg = try Model(specJSON: #"{"preset":"vgg16","input":[1,28,28],"width":0.25}"#, seed: 0)
        #expect(vgg.parameterCount == parameters)
        #expect(vgg.multiplyAdds == macs)
        let pools = vgg.spec.layers.filter { $0.kind == .maxpool }.map(\.name)
        #expect(pools == ["features.6", "features.13", "features.23", "features.33"])  // no features.43
        // Names are those of the 32×32 model (the skipped pool keeps its index).
        let cifar = try Model(specJSON: #"{"preset":"vgg16","width":0.25}"#, seed: 0)
        #expect(vgg.spec.layers.filter { $0.kind == .conv }.map(\.name)
                == cifar.spec.layers.filter { $0.kind == .conv }.map(\.name))
        // ResNet-20 on one channel: the stem conv loses 2 of its 3 input channels (2·16·9 weights).
        let gray = try Model(specJSON: #"{"preset":"resnet20","input":[1,28,28]}"#, seed: 0)
        let color = try Model(specJSON: #"{"preset":"resnet20"}"#, seed: 0)
        #expect(color.parameterCount - gray.parameterCount == 2 * 16 * 9)
        let logits = try gray.infer([Float](repeating: 0.5, count: 2 * 28 * 28), batch: 2)
        #expect(logits.count == 2 * 10 && logits.allSatisfy(\.isFinite))
    }

    @Test("bad specs are rejected with a message naming the field", arguments: [
        (#"{"input":[1,8,8],"classes":10,"layers":[{"type":"conv2d","out":4}]}"#, "type"),
        (#"{"input":[1,8,8],"classes":10,"layers":[{"type":"conv","out":-4}]}"#, "out"),
        (#"{"input":[1,8,8],"classes":10,"layers":[{"type":"conv","out":4,"kernel":9}]}"#, "kernel"),
        (#"{"input":[1,8,8],"classes":10,"layers":[{"type":"maxpool","kernel":2},{"type":"maxpool","kernel":2},{"type":"maxpool","kernel":2},{"type":"maxpool","kernel":2}]}"#, "max-pool"),
        (#"{"input":[1,8,8],"classes":10,"layers":[{"type":"flatten"},{"type":"linear","out":9}]}"#, "classes"),
        (#"{"input":[1,8,8],"classes":10,"layers":[{"type":"conv","out":65536,"kernel":3},{"type":"conv","out":65536,"kernel":3}]}"#, "parameters"),
        (#"{"input":[3,4096,4096],"classes":10,"layers":[{"type":"conv","out":64,"kernel":3,"padding":1}]}"#, "activations"),
        // Max-pool padding is at most half the window (PyTorch's bound); average pools take none.
        (#"{"input":[1,8,8],"classes":10,"layers":[{"type":"maxpool","name":"pool1","kernel":3,"padding":2}]}"#, #"layer "pool1": max-pool padding 2"#),
        (#"{"input":[1,8,8],"classes":10,"layers":[{"type":"maxpool","kernel":2,"padding":-1}]}"#, "padding"),
        (#"{"input":[1,8,8],"classes":10,"layers":[{"type":"maxpool","kernel":64,"padding":33}]}"#, "padding"),
        (#"{"input":[1,8,8],"classes":10,"layers":[{"type":"avgpool","kernel":2,"padding":1}]}"#, "padding"),
        (#"{"input":[1,8,8],"classes":10,"layers":[{"type":"avgpool","padding":0}]}"#, "padding"),
        (#"{"preset":"vgg17"}"#, "preset"),
        (#"{"preset":"vgg16","input":[3,8,8],"width":20}"#, "width"),
        (#"{"input":[1,8,8],"layers":[],"classes":10}"#, "layers"),
        (#"{"input":[1,8],"classes":10,"layers":[{"type":"flatten"}]}"#, "input"),
        (#"{"input":[1,8,8],"classes":10,"layers":[{"type":"conv","out":4,"kernal":3}]}"#, "kernal"),
        (#"{"input":[1,8,8],"classes":10,"layers":[{"type":"conv","out":4.5}]}"#, "out"),
        (#"[1,2,3]"#, "object"),
        (#"{"input":[1,8,8],"classes":10,"layers":[{"type":"conv","out":true}]}"#, "out"),
        (#"{"input":[1,8,8],"classes":10,"layers":[{"type":"conv","out":4,"bias":1}]}"#, "bias"),
        (#"{"input":[1,8,8],"classes":10,"layers":["#, "JSON"),
        (#"{"input":[1,8,8],"classes":10,"layers":[{"type":"conv","out":4,},]}"#, "JSON"),
        (String(repeating: "[", count: 10_000), "nested"),
    ])
    func badSpecs(spec: String, mentions: String) {
        do {
            _ = try Model(specJSON: spec, seed: 0)
            Issue.record("accepted: \(spec.prefix(80))")
        } catch let error as ReparoError {
            guard case .invalidArgument(let message) = error else {
                Issue.record("wrong error \(error) for \(spec.prefix(80))")
                return
            }
            #expect(message.contains(mentions), "message \"\(message)\" does not mention \(mentions)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test("save → load → infer is bit-identical in every state, and the file says so")
    func roundTripEveryState() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("reparo-roundtrip-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let dense = try Model(specJSON: TestSupport.smallResNet, seed: 5)
        TestSupport.randomizeBatchNorm(dense, seed: 6)
        let pruned = try Pruning.prune(dense, options: PruneOptions())
        let expanded = try Expansion.expand(pruned, options: ExpandOptions())
        let collapsed = try Collapse.collapse(expanded, options: CollapseOptions())
        let images = TestSupport.randomImages(2 * dense.inputShape.count, seed: 7)
        for model in [dense, pruned, expanded, collapsed] {
            let path = "\(directory)/\(model.state.rawValue).safetensors"
            try model.save(path: path)
            let loaded = try Model.load(path: path)
            #expect(loaded.state == model.state)
            #expect(loaded.spec == model.spec)
            #expect(try loaded.infer(images, batch: 2) == model.infer(images, batch: 2), "\(model.state)")
            #expect(try loaded.snapshot().map { $0.values.array } == model.snapshot().map { $0.values.array })
        }
    }

    @Test("a file whose tensors disagree with its spec is a format error")
    func specTensorMismatch() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("reparo-mismatch-\(getpid()).safetensors").path
        defer { unlink(path) }
        let model = try Model(specJSON: TestSupport.digitsSpec, seed: 1)
        var tensors = model.namedTensors
        tensors.removeLast()
        try SafeTensors.write(path: path, metadata: ["spec": model.spec.jsonText], tensors: tensors)
        #expect(performing: { try Model.load(path: path) }, throws: { error in
            guard case ReparoError.format(let message) = error else { return false }
            return message.contains("missing")
        })
        try SafeTensors.write(path: path, metadata: ["spec": #"{"preset":"nope"}"#], tensors: model.namedTensors)
        #expect(performing: { try Model.load(path: path) }, throws: { error in
            if case ReparoError.format = error { return true }
            return false
        })
        try SafeTensors.write(path: path, metadata: [:], tensors: model.namedTensors)
        #expect(throws: ReparoError.self) { try Model.load(path: path) }
    }

    @Test("Inference with each conv's ReLU fused in gives the unfused forward's logits bit for bit")
    func fusedRectifiers() throws {
        // Convs on every path: padded width (18 wide), im2col (9×9), stride 2, small plane
        // (2×2 at batch 64) or colsᵀ·Wᵀ (2×2, 200 wide, batch 1); a conv → BN → ReLU is not fused.
        let spec = """
        {"input":[3,18,18],"classes":5,"layers":[
         {"type":"conv","out":16,"kernel":3,"padding":1,"bias":true},{"type":"relu"},{"type":"maxpool","kernel":2},
         {"type":"conv","out":24,"kernel":3,"padding":1,"bias":true},{"type":"relu"},
         {"type":"conv","out":40,"kernel":3,"stride":2,"padding":1},{"type":"batchnorm"},{"type":"relu"},
         {"type":"maxpool","kernel":2},
         {"type":"conv","out":200,"kernel":3,"padding":1,"bias":true},{"type":"relu"},
         {"type":"flatten"},{"type":"linear","out":5}]}
        """
        let model = try Model(specJSON: spec, seed: 3)
        let layers = model.network.layers
        let fusedConvs = layers.indices.filter { layers[$0] is Conv2D && $0 + 1 < layers.count && layers[$0 + 1] is ReLU }
        #expect(fusedConvs.count == 3)
        for batch in [1, 3, 64] {
            let images = try FloatBuffer(TestSupport.randomImages(batch * model.inputShape.count, seed: UInt64(batch)))
            func run(fused: Bool) throws -> (logits: [Float], cache: Sequential.Cache) {
                let options = WorkspaceOptions(fusesRectifiers: fused)
                let cache = try #require(try model.network.makeCache(batch: batch, training: false, options: options)
                    as? Sequential.Cache)
                let logits = try FloatBuffer(count: batch * model.classes)
                model.network.forward(images.pointer, logits.pointer, cache: cache, training: false)
                return (logits.array, cache)
            }
            let fused = try run(fused: true), plain = try run(fused: false)
            #expect(fused.logits.map(\.bitPattern) == plain.logits.map(\.bitPattern), "batch \(batch)")
            #expect(try model.infer(images.array, batch: batch).map(\.bitPattern) == plain.logits.map(\.bitPattern))
            for index in fusedConvs {
                // The fused conv wrote the ReLU's output only (its own buffer stays as allocated: zero).
                #expect(fused.cache.outputs[index].array.allSatisfy { $0 == 0 }, "conv \(index) batch \(batch)")
                #expect(fused.cache.outputs[index + 1].array == plain.cache.outputs[index + 1].array)
            }
        }
    }

    @Test("describe reports state, shapes, parameters, FLOPs and chains")
    func describe() throws {
        let model = try Model(specJSON: TestSupport.smallVGGLike, seed: 1)
        let expanded = try Expansion.expand(try Pruning.prune(model, options: PruneOptions()), options: ExpandOptions())
        let object = try #require(try JSONSerialization.jsonObject(with: Data(expanded.describe().utf8)) as? [String: Any])
        #expect(object["state"] as? String == "expanded")
        #expect(object["input"] as? [Int] == [3, 12, 12])
        #expect(object["classes"] as? Int == 7)
        #expect(object["parameters"] as? Int == expanded.parameterCount)
        #expect(object["flops"] as? Int == expanded.multiplyAdds)
        let layers = try #require(object["layers"] as? [[String: Any]])
        let first = try #require(layers.first)
        #expect(first["weight"] as? [Int] == [5, 3, 3, 3])
        #expect(first["chain"] as? [[Int]] == [[12, 3, 1, 1], [20, 12, 3, 3], [5, 20, 1, 1]])
    }
}
