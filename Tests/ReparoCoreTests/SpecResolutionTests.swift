import Foundation
import Testing
@testable import ReparoCore

/// `SpecResolution` (behind `reparo_spec_resolve`) answers names and shapes from the spec
/// alone; the oracle is the network `Model` builds from the same spec.
@Suite("Spec resolution")
struct SpecResolutionTests {
    static let specs: [(String, String)] = [
        ("vgg16 3×32×32", #"{"preset":"vgg16","width":0.125}"#),
        ("vgg16 1×28×28", #"{"preset":"vgg16","input":[1,28,28],"width":0.125}"#),
        ("resnet20", #"{"preset":"resnet20","width":0.5,"classes":7}"#),
        ("padded max-pool (ResNet-18's stem)", #"{"input":[3,13,12],"classes":3,"layers":[{"type":"conv","out":4,"kernel":7,"stride":2,"padding":3},{"type":"batchnorm"},{"type":"relu"},{"type":"maxpool","kernel":3,"stride":2,"padding":1},{"type":"maxpool","kernel":2,"padding":1},{"type":"flatten"},{"type":"linear","out":3}]}"#),
        ("chains", #"{"input":[3,6,6],"classes":3,"layers":[{"type":"conv","out":4,"kernel":3,"padding":1,"chain":[8,16]},{"type":"relu"},{"type":"conv","out":5,"kernel":3,"stride":2,"padding":1,"bias":true,"chain":[6,10]},{"type":"basic_block","out":6,"stride":2},{"type":"avgpool"},{"type":"flatten"},{"type":"linear","out":3,"chain":[6,9]}]}"#),
    ]

    /// The resolution as a caller of the C API reads it: parsed back from its JSON text.
    static func resolved(_ json: String) throws -> [String: Any] {
        let text = try SpecResolution(specJSON: json).jsonText
        return try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    /// The built network's layers, depth-first pre-order, with their type words.
    static func builtLayers(_ layer: Layer) -> [(name: String, type: String, input: [Int], output: [Int])] {
        func entry(_ type: String) -> [(name: String, type: String, input: [Int], output: [Int])] {
            [(layer.name, type, layer.inputShape.array, layer.outputShape.array)]
        }
        switch layer {
        case let sequential as Sequential: return sequential.layers.flatMap(builtLayers)
        case let block as BasicBlock: return entry("basic_block") + builtLayers(block.main) + builtLayers(block.shortcut)
        case let chain as ExpandedChain: return entry(chain.factors[1] is Conv2D ? "conv" : "linear")
        case is Conv2D: return entry("conv")
        case is BatchNorm2D: return entry("batchnorm")
        case is ReLU: return entry("relu")
        case is MaxPool2D: return entry("maxpool")
        case is AvgPool2D: return entry("avgpool")
        case is Flatten: return entry("flatten")
        case is Linear: return entry("linear")
        default: return entry("?")
        }
    }

    @Test("tensors and layer shapes equal the built model's", arguments: specs)
    func matchesBuiltModel(_ label: String, _ json: String) throws {
        let model = try Model(specJSON: json, seed: 1)
        let object = try Self.resolved(json)
        let tensors = try #require(object["tensors"] as? [[String: Any]])
        #expect(tensors.map { $0["name"] as? String } == model.parameters.map(\.name), "\(label)")
        #expect(tensors.map { $0["shape"] as? [Int] } == model.parameters.map(\.shape), "\(label)")
        let layers = try #require(object["layers"] as? [[String: Any]])
        let built = Self.builtLayers(model.network)
        #expect(layers.count == built.count, "\(label)")
        for (layer, expected) in zip(layers, built) {
            #expect(layer["name"] as? String == expected.name, "\(label)")
            #expect(layer["type"] as? String == expected.type, "\(label) \(expected.name)")
            #expect(layer["input"] as? [Int] == expected.input, "\(label) \(expected.name)")
            #expect(layer["output"] as? [Int] == expected.output, "\(label) \(expected.name)")
        }
        // The resolved spec is the one the model saves, and it resolves to itself.
        let spec = try #require(object["spec"] as? [String: Any])
        let specText = try #require(String(data: JSONSerialization.data(withJSONObject: spec), encoding: .utf8))
        #expect(try SpecParser.parse(specText) == model.spec, "\(label)")
        #expect(try SpecResolution(specJSON: specText).jsonText == SpecResolution(specJSON: json).jsonText, "\(label)")
    }

    @Test("resnet20 lists each block before its main path and shortcut")
    func blockOrder() throws {
        let layers = try #require(try Self.resolved(#"{"preset":"resnet20"}"#)["layers"] as? [[String: Any]])
        let names = layers.compactMap { $0["name"] as? String }
        let start = try #require(names.firstIndex(of: "layer2.0"))
        #expect(Array(names[start...].prefix(9)) == ["layer2.0", "layer2.0.conv1", "layer2.0.bn1", "layer2.0.relu",
                                                      "layer2.0.conv2", "layer2.0.bn2", "layer2.0.shortcut.0",
                                                      "layer2.0.shortcut.1", "layer2.1"])
        #expect(layers[start]["input"] as? [Int] == [16, 32, 32])
        #expect(layers[start]["output"] as? [Int] == [32, 16, 16])
        #expect(layers.last?["output"] as? [Int] == [10, 1, 1])
    }

    @Test("max-pool padding: written only when non-zero (unpadded specs stay byte-identical), shapes as PyTorch's")
    func maxPoolPadding() throws {
        let vgg = try #require(try Self.resolved(#"{"preset":"vgg16","width":0.125}"#)["spec"] as? [String: Any])
        let pools = (vgg["layers"] as? [[String: Any]] ?? []).filter { $0["type"] as? String == "maxpool" }
        #expect(pools.count == 5)
        #expect(pools.allSatisfy { Set($0.keys) == ["type", "name", "kernel", "stride"] })
        let object = try Self.resolved(Self.specs[3].1)
        let spec = try #require(object["spec"] as? [String: Any])
        let padded = (spec["layers"] as? [[String: Any]] ?? []).filter { $0["type"] as? String == "maxpool" }
        #expect(padded.map { $0["padding"] as? Int } == [1, 1])
        #expect(padded.map { $0["stride"] as? Int } == [2, 2])
        // PyTorch's floor((H + 2p − k)/s) + 1: 13×12 → conv 7/2/3 → 7×6 → pool 3/2/1 → 4×3 → pool 2/2/1 → 3×2.
        let layers = try #require(object["layers"] as? [[String: Any]])
        #expect(layers.filter { $0["type"] as? String == "maxpool" }.map { $0["output"] as? [Int] } == [[4, 4, 3], [4, 3, 2]])
    }

    @Test("an invalid spec gives the error model creation gives", arguments: [
        #"{"preset":"vgg16","depth":3}"#,
        #"{"input":[1,4,4],"classes":2,"layers":[{"type":"conv","out":2,"kernel":7},{"type":"flatten"},{"type":"linear","out":2}]}"#,
        #"{"input":[1,4,4],"classes":3,"layers":[{"type":"flatten"},{"type":"linear","out":2}]}"#,
        #"{"input":[1,4,4],"classes":2,"layers":[{"type":"flatten","name":"a"},{"type":"linear","out":2,"name":"a"}]}"#,
        #"{"input":[1,4,4],"classes":2,"layers":[{"type":"maxpool","kernel":5},{"type":"flatten"},{"type":"linear","out":2}]}"#,
        #"{"input":[2,8,8],"classes":2,"layers":[{"type":"basic_block","main":[{"type":"conv","out":3,"kernel":3,"padding":1}]},{"type":"flatten"},{"type":"linear","out":2}]}"#,
        "",
    ])
    func sameError(_ json: String) throws {
        var created: ReparoError?
        do { _ = try Model(specJSON: json, seed: 1) } catch let error as ReparoError { created = error }
        var resolved: ReparoError?
        do { _ = try SpecResolution(specJSON: json) } catch let error as ReparoError { resolved = error }
        let expected = try #require(created, "model creation accepted \(json)")
        #expect(expected == .invalidArgument(expected.message))
        #expect(resolved == expected)   // same case, same message
    }
}
