/// Where a model is in the method's pipeline (reported by `describe` and saved with it).
public enum ModelState: String, Sendable, CaseIterable {
    case dense, pruned, expanded, collapsed
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
