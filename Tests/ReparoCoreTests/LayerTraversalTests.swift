import Testing
@testable import ReparoCore

/// The one traversal of a built network (`Layer.children`, `forEachLayer`, `filterMap`) and
/// the one output-size formula (`Window`).
@Suite("Layer traversal and window geometry")
struct LayerTraversalTests {
    @Test("filterMap finds every expanded chain, nested ones included, in the spec's order")
    func chains() throws {
        let resnet = try Model(specJSON: TestSupport.smallResNet, seed: 2)
        let expanded = try Expansion.expand(resnet, options: ExpandOptions(json: #"{"layers":"all","rate":2}"#))
        let found = expanded.network.filterMap { $0 as? ExpandedChain }
        // The oracle: the spec's layers that carry a chain, depth first (main path, then shortcut).
        func expandedNames(_ layers: [LayerSpec]) -> [String] {
            layers.flatMap { layer in (layer.weight?.chain == nil ? [] : [layer.name]) + expandedNames(layer.main) + expandedNames(layer.shortcut) }
        }
        let expected = expandedNames(expanded.spec.layers)
        #expect(!expected.isEmpty)
        #expect(found.map(\.name) == expected)
        #expect(resnet.network.filterMap { $0 as? ExpandedChain }.isEmpty)
    }

    @Test("forEachLayer visits a block before its main path and shortcut; parameters follow children")
    func preOrder() throws {
        let model = try Model(specJSON: #"{"input":[2,6,6],"classes":2,"layers":[{"type":"conv","out":3,"kernel":3,"padding":1,"name":"stem"},{"type":"basic_block","out":4,"stride":2,"name":"b"},{"type":"avgpool"},{"type":"flatten"},{"type":"linear","out":2,"name":"fc"}]}"#, seed: 1)
        var names: [String] = []
        model.network.forEachLayer { layer in if layer.kind != nil { names.append(layer.name) } }
        #expect(names == ["stem", "b", "b.conv1", "b.bn1", "b.relu", "b.conv2", "b.bn2", "b.shortcut.0", "b.shortcut.1",
                          "layers.2", "layers.3", "fc"])
        let leaves = model.network.filterMap { $0.children.isEmpty ? $0 : nil }
        #expect(model.parameters.map(\.name) == leaves.flatMap { $0.parameters.map(\.name) })
    }

    @Test("the window's output size counts the positions a naive scan finds")
    func windowSize() {
        for input in 1...12 {
            for kernel in 1...5 {
                for stride in 1...3 {
                    for padding in 0..<kernel where input + 2 * padding >= kernel {
                        var positions = 0
                        var start = -padding
                        while start + kernel <= input + padding {
                            positions += 1
                            start += stride
                        }
                        let window = Window(kernel: kernel, stride: stride, padding: padding)
                        #expect(window.outputSize(input) == positions, "\(input) \(kernel) \(stride) \(padding)")
                    }
                }
            }
        }
    }
}
