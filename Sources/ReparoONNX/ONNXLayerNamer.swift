/// Names the layers of an imported graph. The names become tensor names, and SP-KD matches a
/// teacher's layers with a student's by name, so they come from what the exporters keep of
/// the PyTorch module tree (the same for a dense and a pruned export of one model), in order:
///  1. the weight initializer's name when it ends in ".weight" ("layer1.0.conv1.weight");
///  2. the dynamo exporter's node metadata `pkg.torch.onnx.name_scopes`
///     (`['', 'layer1', 'layer1.0', 'layer1.0.relu', 'relu_1']` → "layer1.0.relu");
///  3. the legacy exporter's scoped node name ("/layer1/layer1.0/conv1/Conv" → "layer1.0.conv1");
///  4. any other node name that is not an exporter's counter ("node_…", "Relu_12"), as Reparo's
///     own export writes them ("layer1.0.relu");
///  5. "<op>_<node index>".
/// A model Reparo exported (producer "reparo") names its nodes after its layers: those names
/// are taken as they are, so export → import gives the same spec. A name already taken gets
/// "_1", "_2", …; every name obeys the spec's rules (1 to 200 characters, no quote), so a saved
/// import reloads, and none is one the exporter would rename (the graph's input or output, a
/// tensor name).
struct ONNXLayerNamer {
    private var used: Set<String>
    private let verbatim: Bool
    /// The next suffix to try per base name (no quadratic search when many nodes share one).
    private var nextSuffix: [String: Int] = [:]

    init(reservedNames: Set<String>, verbatim: Bool) {
        used = reservedNames.union(["input", "logits"])
        self.verbatim = verbatim
    }

    static let tensorSuffixes = [".weight", ".bias", ".running_mean", ".running_var"]

    static func isValid(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 190 && !name.contains("\"") && !name.contains("\\")
            && !name.unicodeScalars.contains { $0.value < 0x20 } && !tensorSuffixes.contains { name.hasSuffix($0) }
    }

    /// A unique name for `node` (index `index`); `weight` is the name of its weight input.
    mutating func name(_ node: Onnx_NodeProto, index: Int, weight: String? = nil) -> String {
        if verbatim, Self.isValid(node.name) { return unique(node.name) }
        if let weight, weight.hasSuffix(".weight"), !weight.hasPrefix("onnx::") {
            let base = String(weight.dropLast(".weight".count))
            if Self.isValid(base) { return unique(base) }
        }
        return unique(Self.moduleName(node) ?? Self.plainName(node) ?? Self.fallback(node, index))
    }

    /// The name of a residual block made of `add` and the Relu after it: Reparo's export names
    /// the Relu after the block; the exporters from PyTorch scope the Add inside the block.
    mutating func blockName(add: Onnx_NodeProto, addIndex: Int, relu: Onnx_NodeProto) -> String {
        if verbatim, Self.isValid(relu.name) { return unique(relu.name) }
        return unique(Self.plainName(relu) ?? Self.moduleName(add) ?? Self.plainName(add) ?? Self.fallback(add, addIndex))
    }

    static func fallback(_ node: Onnx_NodeProto, _ index: Int) -> String {
        "\(node.opType.lowercased().prefix(40))_\(index)"
    }

    /// The module path from dynamo metadata or from a legacy scoped name.
    static func moduleName(_ node: Onnx_NodeProto) -> String? {
        for entry in node.metadataProps where entry.key == "pkg.torch.onnx.name_scopes" {
            if let name = scopesModule(entry.value), isValid(name) { return name }
        }
        if node.name.hasPrefix("/"), let name = scopedModule(node.name), isValid(name) { return name }
        return nil
    }

    /// `['', 'layer1', 'layer1.0', 'layer1.0.relu', 'relu_1']` → "layer1.0.relu": the last
    /// scope before the op's own entry.
    static func scopesModule(_ text: String) -> String? {
        guard text.utf8.count <= 4_096, text.hasPrefix("["), text.hasSuffix("]") else { return nil }
        let items = text.dropFirst().dropLast().split(separator: ",", omittingEmptySubsequences: false).map { item in
            item.trimmed(" '\"")
        }
        guard items.count >= 2 else { return nil }
        return items.dropLast().last { !$0.isEmpty }
    }

    /// "/layer1/layer1.1/downsample/downsample.0/Conv" → "layer1.1.downsample.0": each scope
    /// names a child of the previous one, either by its own name ("conv1") or by the name it
    /// has in its parent Sequential ("layer1.0" inside "layer1", which replaces it).
    static func scopedModule(_ name: String) -> String? {
        guard name.utf8.count <= 4_096 else { return nil }
        let scopes = name.split(separator: "/").dropLast()
        var parts: [Substring] = []
        for scope in scopes {
            if let last = parts.last, scope.hasPrefix(last + ".") {
                parts[parts.count - 1] = scope
            } else {
                parts.append(scope)
            }
        }
        return parts.isEmpty ? nil : parts.joined(separator: ".")
    }

    /// A node name that is not an exporter's counter: dynamo's "node_…", the legacy
    /// exporter's "<Op>_<n>", or a scoped name.
    static func plainName(_ node: Onnx_NodeProto) -> String? {
        let name = node.name
        guard isValid(name), !name.hasPrefix("/"), !name.hasPrefix("node_") else { return nil }
        if name == node.opType { return nil }
        if name.hasPrefix(node.opType + "_"), name.dropFirst(node.opType.count + 1).allSatisfy(\.isNumber) { return nil }
        return name
    }

    private mutating func unique(_ base: String) -> String {
        if used.insert(base).inserted { return base }
        var suffix = nextSuffix[base] ?? 1
        while !used.insert("\(base)_\(suffix)").inserted { suffix += 1 }
        nextSuffix[base] = suffix + 1
        return "\(base)_\(suffix)"
    }
}

private extension Substring {
    /// Without the leading and trailing `characters`.
    func trimmed(_ characters: String) -> String {
        var slice = self[...]
        while let first = slice.first, characters.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, characters.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}
