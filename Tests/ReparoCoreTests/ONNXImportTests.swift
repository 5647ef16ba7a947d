import Foundation
@testable import ReparoCore
import SwiftProtobuf
import Testing
@testable import ReparoONNX

/// The importer: Reparo → ONNX → Reparo round trips keep the spec, every tensor bit for bit and
/// the logits; hand-built graphs check each op's mapping and each refusal (with the error kind
/// and a message naming the node and op). The numeric check against onnxruntime and PyTorch is
/// bindings/python/tests/test_onnx_import.py.
@Suite("ONNX import")
struct ONNXImportTests {
    // MARK: Round trips

    /// Export, import, and compare: the same spec (with `state`), the same tensors bit for bit
    /// (the importer only moves bytes, so no tolerance), the same logits.
    static func roundTrip(_ model: Model, _ label: String, state: ModelState = .dense) throws {
        let data = try ONNXExport.data(model)
        let imported = try ONNXImport.model(from: data, options: ONNXImportOptions(state: state))
        var expected = model.spec
        expected.state = state
        #expect(imported.spec == expected, "\(label): spec")
        let original = Dictionary(uniqueKeysWithValues: model.namedTensors.map { ($0.name, $0) })
        #expect(Set(imported.namedTensors.map(\.name)) == Set(original.keys), "\(label): tensor names")
        for tensor in imported.namedTensors {
            guard let source = original[tensor.name] else { continue }
            #expect(tensor.shape == source.shape, "\(label): \(tensor.name) shape")
            #expect(tensor.values.array.map(\.bitPattern) == source.values.array.map(\.bitPattern), "\(label): \(tensor.name) values")
        }
        let batch = 3
        let images = TestSupport.randomImages(batch * model.inputShape.count, seed: 5)
        #expect(try imported.infer(images, batch: batch) == (try model.infer(images, batch: batch)), "\(label): logits")
    }

    @Test("presets and generic specs survive export → import unchanged")
    func presetRoundTrips() throws {
        let specs = [("digits", TestSupport.digitsSpec), ("vgg16", #"{"preset":"vgg16","width":0.125}"#),
                     ("resnet20", #"{"preset":"resnet20","width":0.5}"#), ("resnet-like", TestSupport.smallResNet),
                     ("vgg-like", TestSupport.smallVGGLike)]
        for (label, text) in specs {
            let model = try Model(specJSON: text, seed: 3)
            TestSupport.randomizeBatchNorm(model, seed: 4)
            try Self.roundTrip(model, label)
        }
    }

    @Test("a linear layer after a feature map, a conv bias and a windowed avgpool (the export test's spec)")
    func exportersImplicitFlatten() throws {
        let model = try Model(specJSON: ONNXExportTests.spec, seed: 2)
        TestSupport.randomizeBatchNorm(model, seed: 2)
        try Self.roundTrip(model, "export spec")
    }

    @Test("pruned and collapsed models (BatchNorm folded or not) round-trip")
    func prunedAndCollapsedRoundTrips() throws {
        for (label, text) in [("digits", TestSupport.digitsSpec), ("resnet20", #"{"preset":"resnet20","width":0.5}"#)] {
            let dense = try Model(specJSON: text, seed: 7)
            TestSupport.randomizeBatchNorm(dense, seed: 8)
            let pruned = try Pruning.prune(dense, options: PruneOptions(json: #"{"ratio":0.5}"#))
            try Self.roundTrip(pruned, "\(label) pruned", state: .pruned)
            let expanded = try Expansion.expand(pruned, options: ExpandOptions(json: #"{"layers":"all"}"#))
            for fold in [false, true] {
                let collapsed = try Collapse.collapse(expanded, options: CollapseOptions(foldBatchNorm: fold))
                try Self.roundTrip(collapsed, "\(label) collapsed fold=\(fold)", state: .pruned)
            }
        }
    }

    @Test("import → export → import gives the same spec and tensors, whatever the names (the fuzz target's invariant)")
    func reimportIsStable() throws {
        var graph = ONNXGraphFixture(input: [.symbolic("N"), .fixed(2), .fixed(4), .fixed(4)])
        graph.weight("c.weight", [3, 2, 3, 3])
        graph.weight("d.weight", [3, 3, 1, 1], seed: 2)
        graph.weight("fc.weight", [5, 48], seed: 3)
        graph.weight("head.weight", [4, 5], seed: 4)
        graph.integers("shape", [-1, 48])
        graph.node("Conv", ["input", "c.weight"], ["a"], name: "c", [.ints("pads", [1, 1, 1, 1])])
        graph.node("Relu", ["a"], ["b"], name: "node_relu", metadata: ["pkg.torch.onnx.name_scopes": "['', 'node_x', 'relu']"])
        graph.node("Relu", ["b"], ["b2"], name: "logits_relu", metadata: ["pkg.torch.onnx.name_scopes": "['', 'Relu_5', 'relu']"])
        graph.node("Relu", ["b2"], ["b3"], name: "input")   // a name the exporter keeps for the graph input
        graph.node("Conv", ["b3", "d.weight"], ["e"], name: "d")   // a Gemm right on a feature map: lenient
        graph.node("Reshape", ["e", "shape"], ["f"], name: "fc_flatten")
        graph.node("Gemm", ["f", "fc.weight"], ["g"], name: "fc", [.int("transB", 1)])
        graph.node("Gemm", ["g", "head.weight"], ["logits"], name: "head", [.int("transB", 1)])
        let first = try ONNXImport.model(from: try graph.data)
        let second = try ONNXImport.model(from: try ONNXExport.data(first))
        #expect(second.spec == first.spec)
        #expect(second.namedTensors.map(\.name) == first.namedTensors.map(\.name))
        #expect(first.spec.layers.map(\.name) == ["c", "node_x", "Relu_5", "input_1", "d", "fc_flatten", "fc", "head"])
        for seed in [try Self.residual(projection: true).data, try Self.viewModel().data, try Self.nested(depth: 2).data] {
            let original = try ONNXImport.model(from: seed)
            #expect(try ONNXImport.model(from: try ONNXExport.data(original)).spec == original.spec)
        }
    }

    @Test("the same file imported twice gives the same names (teacher and student match by name)")
    func importIsDeterministic() throws {
        let model = try Model(specJSON: #"{"preset":"resnet20","width":0.25}"#, seed: 1)
        let data = try ONNXExport.data(model)
        let first = try ONNXImport.model(from: data).namedTensors.map(\.name)
        let second = try ONNXImport.model(from: data).namedTensors.map(\.name)
        #expect(first == second)
        #expect(first == model.namedTensors.map(\.name))
    }

    // MARK: Hand-built graphs

    /// conv(weight "c.weight") → Relu → GlobalAveragePool → Flatten → Gemm(transB 1): the base
    /// several tests modify.
    static func smallClassifier(convAttributes: [ONNXGraphFixture.Attribute] = [.ints("kernel_shape", [3, 3]), .ints("pads", [1, 1, 1, 1])],
                                kernel: Int64 = 3) -> ONNXGraphFixture {
        var graph = ONNXGraphFixture()
        graph.weight("c.weight", [4, 3, kernel, kernel])
        graph.weight("fc.weight", [5, 4], seed: 2)
        graph.weight("fc.bias", [5], seed: 3)
        graph.node("Conv", ["input", "c.weight"], ["x1"], name: "/c/Conv", convAttributes)
        graph.node("Relu", ["x1"], ["x2"], name: "/act/Relu")
        graph.node("GlobalAveragePool", ["x2"], ["x3"], name: "/pool/GlobalAveragePool")
        graph.node("Flatten", ["x3"], ["x4"], name: "/Flatten", [.int("axis", 1)])
        graph.node("Gemm", ["x4", "fc.weight", "fc.bias"], ["logits"], name: "/fc/Gemm", [.int("transB", 1)])
        return graph
    }

    @Test("a small classifier: layers, names from weights and legacy scopes, fallback names")
    func smallClassifierImports() throws {
        let model = try ONNXImport.model(from: try Self.smallClassifier().data)
        #expect(model.spec.layers.map(\.name) == ["c", "act", "pool", "flatten_3", "fc"])
        #expect(model.spec.layers.map(\.kind) == [.conv, .relu, .avgpool, .flatten, .linear])
        #expect(model.spec.layers[0].operation == .conv(.init(out: 4, bias: false), Window(kernel: 3, stride: 1, padding: 1)))
        #expect(model.spec.input == FeatureShape(channels: 3, height: 8, width: 8))
        #expect(model.classes == 5)
    }

    @Test("Conv: bias, stride, auto_pad SAME_UPPER and VALID map to a symmetric pad")
    func convAttributes() throws {
        // SAME_UPPER, stride 1 on 8×8: total pad (8−1)·1 + 3 − 8 = 2, one on each side.
        var same = Self.smallClassifier(convAttributes: [.string("auto_pad", "SAME_UPPER")])
        same.weight("c.bias", [4], seed: 9)
        same.nodes[0].input.append("c.bias")
        let model = try ONNXImport.model(from: try same.data)
        #expect(model.spec.layers[0].operation == .conv(.init(out: 4, bias: true), Window(kernel: 3, stride: 1, padding: 1)))
        #expect(model.namedTensors.contains { $0.name == "c.bias" })
        // Stride 2 on 5×5: output ⌈5/2⌉ = 3, total pad (3−1)·2 + 3 − 5 = 2.
        var five = Self.smallClassifier(convAttributes: [.ints("strides", [2, 2]), .string("auto_pad", "SAME_LOWER")])
        five.inputs = []
        five.addInput("input", [.symbolic("N"), .fixed(3), .fixed(5), .fixed(5)])
        #expect(try ONNXImport.model(from: try five.data).spec.layers[0].operation
            == .conv(.init(out: 4, bias: false), Window(kernel: 3, stride: 2, padding: 1)))
        let valid = try ONNXImport.model(from: try Self.smallClassifier(convAttributes: [.string("auto_pad", "VALID")]).data)
        #expect(valid.spec.layers[0].operation == .conv(.init(out: 4, bias: false), Window(kernel: 3, stride: 1, padding: 0)))
    }

    @Test("BatchNormalization with ε 1e-3 stores var + ε − 1e-5")
    func batchNormEpsilon() throws {
        var graph = Self.smallClassifier()
        graph.weight("bn.weight", [4], seed: 4, offset: 1)
        graph.weight("bn.bias", [4], seed: 5)
        graph.weight("bn.running_mean", [4], seed: 6)
        let variance = graph.weight("bn.running_var", [4], seed: 7, offset: 1)
        graph.nodes = []
        graph.node("Conv", ["input", "c.weight"], ["x1"], name: "/c/Conv", [.ints("pads", [1, 1, 1, 1])])
        graph.node("BatchNormalization", ["x1", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"], ["b1"],
                   name: "/bn/BatchNormalization", [.float("epsilon", 1e-3), .float("momentum", 0.9)])
        graph.node("Relu", ["b1"], ["x2"], name: "/act/Relu")
        graph.node("GlobalAveragePool", ["x2"], ["x3"])
        graph.node("Flatten", ["x3"], ["x4"])
        graph.node("Gemm", ["x4", "fc.weight", "fc.bias"], ["logits"], [.int("transB", 1)])
        let model = try ONNXImport.model(from: try graph.data)
        #expect(model.spec.layers.map(\.kind) == [.conv, .batchnorm, .relu, .avgpool, .flatten, .linear])
        let stored = try #require(model.namedTensors.first { $0.name == "bn.running_var" }).values.array
        for (value, original) in zip(stored, variance) {
            #expect(abs(Double(value) - (Double(original) + 1e-3 - 1e-5)) <= 1e-7)
        }
    }

    @Test("Gemm transB 0 and MatMul [in, out] are transposed into Reparo's [out, in]; MatMul + Add is the bias")
    func linearLayouts() throws {
        for variant in ["gemm0", "matmul+add", "matmul"] {
            var graph = ONNXGraphFixture(input: [.symbolic("N"), .fixed(2), .fixed(2), .fixed(2)])
            let weight = graph.weight("w", [8, 3])   // [in, out]
            graph.weight("b", [3], seed: 2)
            graph.node("Flatten", ["input"], ["f"], name: "flat")
            switch variant {
            case "gemm0": graph.node("Gemm", ["f", "w", "b"], ["logits"], name: "head", [.int("transB", 0)])
            case "matmul+add":
                graph.node("MatMul", ["f", "w"], ["m"], name: "head")
                graph.node("Add", ["m", "b"], ["logits"], name: "head_bias")
            default: graph.node("MatMul", ["f", "w"], ["logits"], name: "head")
            }
            let model = try ONNXImport.model(from: try graph.data)
            #expect(model.spec.layers.map(\.name) == ["flat", "head"], "\(variant)")
            #expect(model.spec.layers[1].operation == .linear(.init(out: 3, bias: variant != "matmul")), "\(variant)")
            let stored = try #require(model.namedTensors.first { $0.name == "head.weight" })
            #expect(stored.shape == [3, 8])
            for out in 0 ..< 3 {
                for input in 0 ..< 8 {
                    #expect(stored.values.array[out * 8 + input] == weight[input * 3 + out])
                }
            }
        }
    }

    @Test("Reshape: a constant [-1, F] and the legacy x.view(x.size(0), -1) subgraph become a flatten")
    func reshapes() throws {
        for variant in ["constant", "view", "zero"] {
            var graph = ONNXGraphFixture(input: [.symbolic("N"), .fixed(2), .fixed(3), .fixed(3)])
            graph.weight("fc.weight", [4, 18])
            switch variant {
            case "constant":
                graph.integers("shape", [-1, 18])
                graph.node("Reshape", ["input", "shape"], ["r"], name: "node_Reshape_1", [.int("allowzero", 1)])
            case "zero":
                graph.integers("shape", [0, -1])
                graph.node("Reshape", ["input", "shape"], ["r"])
            default:
                graph.node("Shape", ["input"], ["s"], name: "/Shape")
                graph.node("Constant", [], ["i"], name: "/Constant", [.tensor("value", ONNXGraphFixture.int64Tensor("", [0], scalar: true))])
                graph.node("Gather", ["s", "i"], ["g"], name: "/Gather", [.int("axis", 0)])
                graph.node("Constant", [], ["axes"], name: "Constant_7", [.tensor("value", ONNXGraphFixture.int64Tensor("", [0]))])
                graph.node("Unsqueeze", ["g", "axes"], ["u"], name: "/Unsqueeze")
                graph.node("Constant", [], ["minus"], name: "/Constant_1", [.tensor("value", ONNXGraphFixture.int64Tensor("", [-1]))])
                graph.node("Concat", ["u", "minus"], ["c"], name: "/Concat", [.int("axis", 0)])
                graph.node("Reshape", ["input", "c"], ["r"], name: "/Reshape")
            }
            graph.node("Gemm", ["r", "fc.weight"], ["logits"], name: "/fc/Gemm", [.int("transB", 1)])
            let model = try ONNXImport.model(from: try graph.data)
            #expect(model.spec.layers.map(\.kind) == [.flatten, .linear], "\(variant)")
            #expect(model.spec.layers.last?.name == "fc", "\(variant)")
        }
    }

    /// A residual block on 4 channels: conv-BN-less main path of two convs, and either the
    /// identity or a 1×1 conv shortcut, joined by Add + Relu.
    static func residual(projection: Bool, addThenSomethingElse: String = "Relu") -> ONNXGraphFixture {
        var graph = ONNXGraphFixture(input: [.symbolic("N"), .fixed(4), .fixed(6), .fixed(6)])
        graph.weight("block.conv1.weight", [4, 4, 3, 3], seed: 1)
        graph.weight("block.conv2.weight", [4, 4, 3, 3], seed: 2)
        graph.weight("block.shortcut.0.weight", [4, 4, 1, 1], seed: 3)
        graph.weight("fc.weight", [3, 4], seed: 4)
        graph.node("Conv", ["input", "block.conv1.weight"], ["a1"], name: "/block/conv1/Conv", [.ints("pads", [1, 1, 1, 1])])
        graph.node("Relu", ["a1"], ["a2"], name: "/block/relu/Relu")
        graph.node("Conv", ["a2", "block.conv2.weight"], ["a3"], name: "/block/conv2/Conv", [.ints("pads", [1, 1, 1, 1])])
        var shortcut = "input"
        if projection {
            graph.node("Conv", ["input", "block.shortcut.0.weight"], ["s1"], name: "/block/shortcut/shortcut.0/Conv")
            shortcut = "s1"
        }
        graph.node("Add", ["a3", shortcut], ["sum"], name: "/block/Add")
        graph.node(addThenSomethingElse, ["sum"], ["out"], name: "/block/relu_1/\(addThenSomethingElse)")
        graph.node("GlobalAveragePool", ["out"], ["p"], name: "/avgpool/GlobalAveragePool")
        graph.node("Flatten", ["p"], ["f"], name: "/flatten/Flatten")
        graph.node("Gemm", ["f", "fc.weight"], ["logits"], name: "/fc/Gemm", [.int("transB", 1)])
        return graph
    }

    @Test("Add + Relu of two branches is a basic block (identity and 1×1-conv shortcut)")
    func residualBlocks() throws {
        for projection in [false, true] {
            let model = try ONNXImport.model(from: try Self.residual(projection: projection).data)
            let block = try #require(model.spec.layers.first)
            #expect(block.name == "block")
            #expect(block.main.map(\.name) == ["block.conv1", "block.relu", "block.conv2"])
            #expect(block.shortcut.map(\.name) == (projection ? ["block.shortcut.0"] : []))
            #expect(model.spec.layers.map(\.name) == ["block", "avgpool", "flatten", "fc"])
        }
    }

    /// Residual blocks nested `depth` deep: y₀ = input, yₖ = Relu(yₖ₋₁) forks into the next
    /// level and the identity shortcut of its block; the blocks close from the inside out.
    static func nested(depth: Int) -> ONNXGraphFixture {
        var graph = ONNXGraphFixture(input: [.symbolic("N"), .fixed(2), .fixed(4), .fixed(4)])
        graph.weight("fc.weight", [3, 2])
        var levels = ["input"]
        for level in 1 ... depth {
            graph.node("Relu", [levels[level - 1]], ["y\(level)"], name: "r\(level)")
            levels.append("y\(level)")
        }
        var inner = "y\(depth)"
        graph.node("Relu", [inner], ["z"], name: "innermost")
        inner = "z"
        for level in stride(from: depth, through: 1, by: -1) {
            graph.node("Add", [inner, levels[level]], ["s\(level)"], name: "add\(level)")
            graph.node("Relu", ["s\(level)"], ["w\(level)"], name: "block\(level)")
            inner = "w\(level)"
        }
        graph.node("Add", [inner, "input"], ["s0"], name: "add0")
        graph.node("Relu", ["s0"], ["w0"], name: "block0")
        graph.node("GlobalAveragePool", ["w0"], ["p"])
        graph.node("Flatten", ["p"], ["f"])
        graph.node("Gemm", ["f", "fc.weight"], ["logits"], [.int("transB", 1)])
        return graph
    }

    @Test("residual blocks nest up to 4 deep; deeper is refused")
    func nesting() throws {
        let model = try ONNXImport.model(from: try Self.nested(depth: 3).data)
        #expect(model.spec.layers.first?.name == "block0")
        #expect(model.spec.layers.first?.main.last?.main.last?.main.last?.name == "block3")
        try refuses(Self.nested(depth: 4), .invalidArgument, ["nested more than 4 deep"])
    }

    @Test("dynamo names: weights keep theirs, other layers come from pkg.torch.onnx.name_scopes")
    func dynamoNames() throws {
        var graph = Self.smallClassifier()
        graph.nodes[0].name = "node_Conv_3"
        graph.nodes[1].name = "node_relu"
        var entry = Onnx_StringStringEntryProto()
        entry.key = "pkg.torch.onnx.name_scopes"
        entry.value = "['', 'features', 'features.1', 'relu']"
        graph.nodes[1].metadataProps = [entry]
        graph.nodes[2].name = "node_mean"
        let model = try ONNXImport.model(from: try graph.data)
        #expect(model.spec.layers.map(\.name) == ["c", "features.1", "globalaveragepool_2", "flatten_3", "fc"])
    }

    @Test("Identity, Dropout and MaxPool; ReduceMean over H and W is a global average pool")
    func passThroughsAndPools() throws {
        var graph = ONNXGraphFixture(input: [.symbolic("N"), .fixed(2), .fixed(8), .fixed(8)])
        graph.weight("fc.weight", [3, 2])
        graph.integers("axes", [-1, -2])
        graph.node("Identity", ["input"], ["i"])
        graph.node("MaxPool", ["i"], ["m"], name: "pool", [.ints("kernel_shape", [2, 2]), .ints("strides", [2, 2])])
        graph.node("AveragePool", ["m"], ["a"], name: "avg", [.ints("kernel_shape", [2, 2]), .ints("strides", [2, 2])])
        graph.node("Dropout", ["a"], ["d"], name: "drop", [.float("ratio", 0.5)])
        graph.node("ReduceMean", ["d", "axes"], ["r"], name: "mean", [.int("keepdims", 0)])
        graph.node("Gemm", ["r", "fc.weight"], ["logits"], name: "fc", [.int("transB", 1)])
        graph.opset = 18
        let model = try ONNXImport.model(from: try graph.data)
        #expect(model.spec.layers.map(\.name) == ["pool", "avg", "mean", "fc"])
        #expect(model.spec.layers[0].operation == .maxpool(Window(kernel: 2, stride: 2)))
        #expect(model.spec.layers[1].operation == .avgpool(Window(kernel: 2, stride: 2)))
        #expect(model.spec.layers[2].operation == .avgpool(nil))
    }

    @Test("options: input needed for a symbolic C, must agree when fixed; state; unknown keys refused")
    func options() throws {
        var graph = Self.smallClassifier()
        graph.inputs = []
        graph.addInput("input", [.symbolic("N"), .symbolic("C"), .fixed(8), .symbolic("W")])
        let data = try graph.data
        expectError(.invalidArgument, ["symbolic", "\"input\""]) { _ = try ONNXImport.model(from: data) }
        let model = try ONNXImport.model(from: data, options: ONNXImportOptions(json: #"{"input":[3,8,8],"state":"pruned"}"#))
        #expect(model.inputShape == FeatureShape(channels: 3, height: 8, width: 8))
        #expect(model.state == .pruned)
        expectError(.invalidArgument, ["H = 9", "8"]) {
            _ = try ONNXImport.model(from: data, options: ONNXImportOptions(json: #"{"input":[3,9,8]}"#))
        }
        #expect(throws: ReparoError.self) { try ONNXImportOptions(json: #"{"opset":17}"#) }
        #expect(throws: ReparoError.self) { try ONNXImportOptions(json: #"{"state":"collapsed"}"#) }
        #expect(throws: ReparoError.self) { try ONNXImportOptions(json: #"{"input":[3,8]}"#) }
    }

    // MARK: Refusals

    enum Kind { case format, invalidArgument }

    /// Runs `body`, expecting a ReparoError of `kind` whose message holds every fragment.
    func expectError(_ kind: Kind, _ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation,
                     _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("expected an error containing \(fragments)", sourceLocation: sourceLocation)
        } catch let error as ReparoError {
            switch (kind, error) {
            case (.format, .format), (.invalidArgument, .invalidArgument): break
            default: Issue.record("expected \(kind), got \(error)", sourceLocation: sourceLocation)
            }
            for fragment in fragments where !error.message.contains(fragment) {
                Issue.record("message \"\(error.message)\" lacks \"\(fragment)\"", sourceLocation: sourceLocation)
            }
        } catch {
            Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
        }
    }

    func refuses(_ graph: ONNXGraphFixture, _ kind: Kind, _ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let data = try graph.data
        expectError(kind, fragments, sourceLocation: sourceLocation) { _ = try ONNXImport.model(from: data) }
    }

    @Test("unsupported ops and attributes are refused naming the node and op")
    func unsupportedOps() throws {
        var sigmoid = Self.smallClassifier()
        sigmoid.nodes[1].opType = "Sigmoid"
        try refuses(sigmoid, .invalidArgument, ["node 1", "/act/Relu", "Sigmoid"])
        try refuses(Self.smallClassifier(convAttributes: [.int("group", 2)]), .invalidArgument, ["/c/Conv", "(Conv)", "group 2"])
        try refuses(Self.smallClassifier(convAttributes: [.ints("dilations", [2, 2])]), .invalidArgument, ["/c/Conv", "dilations"])
        try refuses(Self.smallClassifier(convAttributes: [.ints("pads", [1, 1, 0, 0])]), .invalidArgument, ["/c/Conv", "asymmetric pads"])
        try refuses(Self.smallClassifier(convAttributes: [.ints("strides", [1, 2])]), .invalidArgument, ["/c/Conv", "strides"])
        try refuses(Self.smallClassifier(convAttributes: [.string("auto_pad", "SAME_UPPER"), .ints("strides", [2, 2])]),
                    .invalidArgument, ["/c/Conv", "auto_pad SAME_UPPER"])
        try refuses(Self.smallClassifier(convAttributes: [.int("mystery", 1)]), .invalidArgument, ["/c/Conv", "\"mystery\""])
        var nonSquare = Self.smallClassifier(convAttributes: [])
        nonSquare.initializers[0] = ONNXGraphFixture.floatTensor("c.weight", [4, 3, 3, 1], Array(repeating: 0.1, count: 36))
        try refuses(nonSquare, .invalidArgument, ["/c/Conv", "square"])

        var ceil = ONNXGraphFixture(input: [.symbolic("N"), .fixed(2), .fixed(8), .fixed(8)])
        ceil.weight("fc.weight", [3, 32])
        ceil.node("MaxPool", ["input"], ["m"], name: "pool", [.ints("kernel_shape", [2, 2]), .ints("strides", [2, 2]), .int("ceil_mode", 1)])
        ceil.node("Flatten", ["m"], ["f"])
        ceil.node("Gemm", ["f", "fc.weight"], ["logits"], [.int("transB", 1)])
        try refuses(ceil, .invalidArgument, ["\"pool\"", "MaxPool", "ceil_mode"])
        var average = ceil
        average.nodes[0] = Onnx_NodeProto()
        average.nodes[0].opType = "AveragePool"
        average.nodes[0].name = "avg"
        average.nodes[0].input = ["input"]
        average.nodes[0].output = ["m"]
        average.nodes[0].attribute = [ONNXGraphFixture.Attribute.ints("kernel_shape", [3, 3]).proto,
                                      ONNXGraphFixture.Attribute.ints("strides", [2, 2]).proto,
                                      ONNXGraphFixture.Attribute.ints("pads", [1, 1, 1, 1]).proto]
        try refuses(average, .invalidArgument, ["\"avg\"", "AveragePool", "pads"])

        var training = Self.smallClassifier()
        training.weight("s", [4]); training.weight("b", [4]); training.weight("m", [4]); training.weight("v", [4], offset: 1)
        training.nodes[1] = Onnx_NodeProto()
        training.nodes[1].opType = "BatchNormalization"
        training.nodes[1].name = "/bn/BatchNormalization"
        training.nodes[1].input = ["x1", "s", "b", "m", "v"]
        training.nodes[1].output = ["x2"]
        training.nodes[1].attribute = [ONNXGraphFixture.Attribute.int("training_mode", 1).proto]
        try refuses(training, .invalidArgument, ["/bn/BatchNormalization", "training_mode"])
    }

    @Test("graph-level refusals: Add without Relu, three readers, two inputs, other domains and opsets")
    func graphRefusals() throws {
        try refuses(Self.residual(projection: true, addThenSomethingElse: "Sigmoid"), .invalidArgument, ["/block/Add", "(Add)", "Relu"])
        var three = Self.residual(projection: false)
        three.nodes.insert(three.nodes[1], at: 2)
        three.nodes[2].output = ["extra"]
        three.nodes[2].input = ["input"]
        three.nodes[2].name = "/extra/Relu"
        try refuses(three, .invalidArgument, ["input", "3 readers"])
        var twoInputs = Self.smallClassifier()
        twoInputs.addInput("mask", [.fixed(1)])
        try refuses(twoInputs, .invalidArgument, ["2 inputs", "mask"])
        var domain = Self.smallClassifier()
        domain.nodes[1].domain = "com.microsoft"
        try refuses(domain, .invalidArgument, ["/act/Relu", "com.microsoft"])
        var old = Self.smallClassifier()
        old.opset = 8
        try refuses(old, .invalidArgument, ["opset 8", "9 to 23"])
        var noDefault = Self.smallClassifier()
        noDefault.domain = "ai.onnx.ml"
        try refuses(noDefault, .format, ["default-domain"])
        var dangling = Self.smallClassifier()
        dangling.node("Relu", ["x2"], ["unused"], name: "/loose/Relu")
        try refuses(dangling, .invalidArgument, ["/act/Relu", "feeds two branches"])
        var order = Self.smallClassifier()
        order.nodes.swapAt(1, 2)
        try refuses(order, .format, ["/pool/GlobalAveragePool", "topological"])
        var twice = Self.smallClassifier()
        twice.nodes[2].output = ["x1"]
        try refuses(twice, .format, ["already"])
        var classes = Self.smallClassifier()
        classes.outputClasses = 7
        try refuses(classes, .format, ["7", "5"])
    }

    @Test("malformed files: not protobuf, truncated, dims lying about the data, external data")
    func malformedFiles() throws {
        let good = try Self.smallClassifier().data
        expectError(.format, ["not a valid ONNX model"]) { _ = try ONNXImport.model(from: Data([0xFF, 0xFF, 0xFF, 0xFF])) }
        expectError(.format, ["not a valid ONNX model"]) { _ = try ONNXImport.model(from: good.prefix(good.count - 7)) }
        expectError(.format, ["no graph"]) {
            var model = Onnx_ModelProto()
            var opset = Onnx_OperatorSetIdProto()
            opset.version = 17
            model.opsetImport = [opset]
            _ = try ONNXImport.model(from: try model.serializedData())
        }
        var lying = Self.smallClassifier()
        lying.initializers[0].dims = [4, 3, 3, 300]
        try refuses(lying, .format, ["c.weight", "raw_data"])
        var huge = Self.smallClassifier()
        huge.initializers[0].dims = [1 << 40, 1 << 40, 3, 3]
        try refuses(huge, .format, ["c.weight"])
        var external = Self.smallClassifier()
        external.initializers[0].dataLocation = .external
        var location = Onnx_StringStringEntryProto()
        location.key = "location"
        location.value = "weights.bin"
        external.initializers[0].externalData = [location]
        external.initializers[0].rawData = Data()
        try refuses(external, .invalidArgument, ["c.weight", "external"])
        var hugeInput = Self.smallClassifier()
        hugeInput.inputs = []
        hugeInput.addInput("input", [.symbolic("N"), .fixed(3), .fixed(5_000), .fixed(8)])
        try refuses(hugeInput, .invalidArgument, ["input", "4096"])
        var doubles = Self.smallClassifier()
        doubles.initializers[0].dataType = 11
        try refuses(doubles, .invalidArgument, ["c.weight", "DOUBLE"])
        var channels = Self.smallClassifier()
        channels.initializers[0] = ONNXGraphFixture.floatTensor("c.weight", [4, 2, 3, 3], Array(repeating: 0.1, count: 72))
        try refuses(channels, .format, ["/c/Conv", "3 channels"])
    }

    /// The legacy exporter's `x.view(x.size(0), -1)` head on a residual block: a seed for the
    /// mutation test that reaches the shape arithmetic.
    static func viewModel() -> ONNXGraphFixture {
        var graph = residual(projection: true)
        graph.nodes.removeLast(2)   // Flatten, Gemm
        graph.node("Shape", ["p"], ["s"], name: "/Shape")
        graph.node("Constant", [], ["i"], name: "/Constant", [.tensor("value", ONNXGraphFixture.int64Tensor("", [0], scalar: true))])
        graph.node("Gather", ["s", "i"], ["g"], name: "/Gather", [.int("axis", 0)])
        graph.node("Unsqueeze", ["g"], ["u"], name: "/Unsqueeze", [.ints("axes", [0])])
        graph.node("Constant", [], ["minus"], name: "/Constant_1", [.ints("value_ints", [-1])])
        graph.node("Concat", ["u", "minus"], ["c"], name: "/Concat", [.int("axis", 0)])
        graph.node("Reshape", ["p", "c"], ["r"], name: "/Reshape")
        graph.node("Gemm", ["r", "fc.weight"], ["logits"], name: "/fc/Gemm", [.int("transB", 1)])
        graph.opset = 11
        return graph
    }

    @Test("damaged copies of real exports never trap: each is a model (which re-imports to itself) or an error")
    func mutatedFilesNeverTrap() throws {
        let model = try Model(specJSON: #"{"preset":"resnet20","width":0.25}"#, seed: 1)
        #expect(try ONNXImport.model(from: try Self.viewModel().data).spec.layers.map(\.kind) == [.basicBlock, .avgpool, .flatten, .linear])
        let seeds = [try ONNXExport.data(model), try Self.viewModel().data, try Self.residual(projection: false).data]
        // REPARO_IMPORT_MUTATIONS raises the count for a longer local run (the fuzz target runs millions).
        let rounds = ProcessInfo.processInfo.environment["REPARO_IMPORT_MUTATIONS"].flatMap { Int($0) } ?? 300
        var generator = SeededGenerator(seed: 99)
        var imported = 0, refused = 0
        for round in 0 ..< rounds {
            var bytes = [UInt8](seeds[round % seeds.count])
            let edits = 1 + round % 4
            for _ in 0 ..< edits {
                let position = min(Int(generator.nextUniform() * Float(bytes.count)), bytes.count - 1)
                bytes[position] = UInt8(truncatingIfNeeded: Int(generator.nextUniform() * 256))
            }
            if round % 7 == 0 { bytes = Array(bytes.prefix(Int(generator.nextUniform() * Float(bytes.count)))) }
            let model: Model
            do {
                model = try ONNXImport.model(from: Data(bytes))
                imported += 1
            } catch is ReparoError {
                refused += 1
                continue
            }
            // What imports exports, and imports back to the same spec and tensors.
            let again = try ONNXImport.model(from: try ONNXExport.data(model))
            #expect(again.spec == model.spec, "round \(round)")
            #expect(again.namedTensors.map { $0.values.array.map(\.bitPattern) } == model.namedTensors.map { $0.values.array.map(\.bitPattern) })
        }
        #expect(imported + refused == rounds)
        #expect(refused > 0 && imported > 0)
    }

    @Test("external data beside the model is read from a path (torch's default); escaping locations are refused")
    func externalData() throws {
        let directory = NSTemporaryDirectory() + "reparo-external-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let inline = Self.smallClassifier()
        let expected = try ONNXImport.model(from: try inline.data)
        // Move the conv weight into "m.onnx.data" after 8 bytes of padding.
        var graph = inline
        let bytes = graph.initializers[0].rawData
        try (Data(count: 8) + bytes).write(to: URL(fileURLWithPath: directory + "/m.onnx.data"))
        func external(_ location: String, offset: Int = 8, length: Int? = nil) throws -> String {
            var tensor = inline.initializers[0]
            tensor.rawData = Data()
            tensor.dataLocation = .external
            tensor.externalData = [("location", location), ("offset", "\(offset)"), ("length", "\(length ?? bytes.count)")].map { key, value in
                var entry = Onnx_StringStringEntryProto()
                entry.key = key
                entry.value = value
                return entry
            }
            graph.initializers[0] = tensor
            let path = directory + "/m.onnx"
            try graph.data.write(to: URL(fileURLWithPath: path))
            return path
        }
        let imported = try ONNXImport.model(path: try external("m.onnx.data"))
        #expect(imported.spec == expected.spec)
        #expect(imported.namedTensors.map { $0.values.array } == expected.namedTensors.map { $0.values.array })
        // The pure entry point reads no files.
        expectError(.invalidArgument, ["c.weight", "external"]) {
            _ = try ONNXImport.model(from: try Data(contentsOf: URL(fileURLWithPath: try external("m.onnx.data"))))
        }
        for location in ["../m.onnx.data", "/etc/passwd", "a/../../m.onnx.data"] {
            let path = try external(location)
            expectError(.format, ["c.weight", "relative path"]) { _ = try ONNXImport.model(path: path) }
        }
        // A symbolic link inside the directory that points outside it is refused too; one that
        // stays inside is followed.
        let outside = directory + "-outside.data"
        try (Data(count: 8) + bytes).write(to: URL(fileURLWithPath: outside))
        defer { try? FileManager.default.removeItem(atPath: outside) }
        try FileManager.default.createSymbolicLink(atPath: directory + "/escape.data", withDestinationPath: outside)
        let escaping = try external("escape.data")
        expectError(.format, ["c.weight", "outside the model's directory"]) { _ = try ONNXImport.model(path: escaping) }
        try FileManager.default.createSymbolicLink(atPath: directory + "/inside.data", withDestinationPath: directory + "/m.onnx.data")
        #expect(try ONNXImport.model(path: try external("inside.data")).spec == expected.spec)
        let past = try external("m.onnx.data", offset: 16)
        expectError(.format, ["c.weight", "outside"]) { _ = try ONNXImport.model(path: past) }
        let missing = try external("other.data")
        #expect(throws: ReparoError.self) { _ = try ONNXImport.model(path: missing) }
        do { _ = try ONNXImport.model(path: missing) } catch ReparoError.io {} catch { Issue.record("\(error)") }
    }

    @Test("a file: missing is .io, a directory is .io, a real export reads back")
    func files() throws {
        expectError(.format, []) { throw ReparoError.format("") }   // the helper itself
        #expect(throws: ReparoError.io("cannot open /nonexistent/model.onnx: No such file or directory")) {
            _ = try ONNXImport.model(path: "/nonexistent/model.onnx")
        }
        do {
            _ = try ONNXImport.model(path: NSTemporaryDirectory())
            Issue.record("a directory was read")
        } catch ReparoError.io {
        }
        let model = try Model(specJSON: TestSupport.digitsSpec, seed: 1)
        let path = NSTemporaryDirectory() + "reparo-import-\(getpid()).onnx"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try ONNXExport.write(model, path: path)
        #expect(try ONNXImport.model(path: path).spec == model.spec)
    }
}
