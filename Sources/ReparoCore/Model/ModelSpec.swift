/// Where a model is in the method's pipeline (reported by `describe` and saved with it).
public enum ModelState: String, Sendable, CaseIterable {
    case dense, pruned, expanded, collapsed
}

/// One layer of a resolved spec: every size explicit, so the spec alone rebuilds the network
/// (the spec saved in a weights file is always resolved).
public struct LayerSpec: Equatable, Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case conv, batchnorm, relu, maxpool, avgpool, flatten, linear
        case basicBlock = "basic_block"
    }

    public var kind: Kind
    public var name: String
    /// Output channels (conv) or features (linear).
    public var out: Int = 0
    public var kernel: Int = 0
    public var stride: Int = 1
    public var padding: Int = 0
    public var bias: Bool = false
    /// Hidden widths [r·in, r·out] of an expanded conv/linear chain; nil when compact.
    public var chain: [Int]? = nil
    /// basic_block: the main path and the shortcut (empty = identity).
    public var main: [LayerSpec] = []
    public var shortcut: [LayerSpec] = []

    public init(kind: Kind, name: String) {
        self.kind = kind
        self.name = name
    }

    public static func conv(_ name: String, out: Int, kernel: Int, stride: Int = 1, padding: Int = 0, bias: Bool = false) -> LayerSpec {
        var spec = LayerSpec(kind: .conv, name: name)
        spec.out = out
        spec.kernel = kernel
        spec.stride = stride
        spec.padding = padding
        spec.bias = bias
        return spec
    }

    public static func linear(_ name: String, out: Int, bias: Bool = true) -> LayerSpec {
        var spec = LayerSpec(kind: .linear, name: name)
        spec.out = out
        spec.bias = bias
        return spec
    }

    /// A max- or average-pool; stride 0 means the window (as in the JSON form). An average
    /// pool without a window is global: kernel 0 and stride 0, as `SpecParser` also makes it,
    /// so that a spec equals itself after a JSON round trip (the JSON leaves both out).
    public static func pool(_ kind: Kind, _ name: String, kernel: Int = 0, stride: Int = 0) -> LayerSpec {
        var spec = LayerSpec(kind: kind, name: name)
        spec.kernel = kernel
        spec.stride = stride == 0 ? kernel : stride
        return spec
    }

    /// JSON form (what is saved in a weights file's metadata).
    public var json: JSONValue {
        var object: [String: JSONValue] = ["type": .string(kind.rawValue), "name": .string(name)]
        switch kind {
        case .conv:
            object["out"] = .int(out); object["kernel"] = .int(kernel); object["stride"] = .int(stride)
            object["padding"] = .int(padding); object["bias"] = .bool(bias)
            if let chain { object["chain"] = .ints(chain) }
        case .linear:
            object["out"] = .int(out); object["bias"] = .bool(bias)
            if let chain { object["chain"] = .ints(chain) }
        case .maxpool:
            object["kernel"] = .int(kernel); object["stride"] = .int(stride)
        case .avgpool:
            if kernel > 0 { object["kernel"] = .int(kernel); object["stride"] = .int(stride) }
        case .basicBlock:
            object["main"] = .array(main.map(\.json))
            object["shortcut"] = .array(shortcut.map(\.json))
        case .batchnorm, .relu, .flatten:
            break
        }
        return JSONValue(object)
    }

    /// Every conv/linear spec in this layer (recursively), in order.
    public var weightedLayers: [LayerSpec] {
        switch kind {
        case .conv, .linear: return [self]
        case .basicBlock: return main.flatMap(\.weightedLayers) + shortcut.flatMap(\.weightedLayers)
        default: return []
        }
    }
}

/// A model description: input shape, classes, state and resolved layers.
public struct ModelSpec: Equatable, Sendable {
    public var input: FeatureShape
    public var classes: Int
    public var state: ModelState
    public var layers: [LayerSpec]

    public init(input: FeatureShape, classes: Int, state: ModelState = .dense, layers: [LayerSpec]) {
        self.input = input
        self.classes = classes
        self.state = state
        self.layers = layers
    }

    public var json: JSONValue {
        ["input": .ints(input.array), "classes": .int(classes), "state": .string(state.rawValue), "layers": .array(layers.map(\.json))]
    }

    public var jsonText: String { JSONWriter.text(json) }
}

extension Array where Element == LayerSpec {
    /// Visits every layer, depth-first, including those inside residual blocks, allowing edits.
    mutating func rewriteAll(_ body: (inout LayerSpec) throws -> Void) rethrows {
        for index in indices {
            try body(&self[index])
            if self[index].kind == .basicBlock {
                try self[index].main.rewriteAll(body)
                try self[index].shortcut.rewriteAll(body)
            }
        }
    }
}
