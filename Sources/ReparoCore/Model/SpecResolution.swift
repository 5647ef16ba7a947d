/// A spec resolved without building its network: the resolved spec (as saved in a model
/// file), every layer with its shapes and every tensor with its shape, from the plan
/// `Model` itself is built from (`reparo_spec_resolve`). Bindings ask this instead of
/// re-implementing the presets and the shape arithmetic.
public struct SpecResolution {
    public let spec: ModelSpec
    let plan: NetworkBuilder.Plan

    /// Parses and checks `specJSON` exactly as `Model(specJSON:seed:)` does, allocating nothing
    /// of the model. Errors are those of model creation (`.invalidArgument` naming the field),
    /// except the inference-workspace cap, which creation measures as it allocates.
    public init(specJSON: String) throws {
        try self.init(spec: SpecParser.parse(specJSON))
    }

    public init(spec: ModelSpec) throws {
        self.spec = spec
        self.plan = try NetworkBuilder.plan(spec)
    }

    /// `{"spec": …, "layers": [{"name","type","input","output"}…], "tensors": [{"name","shape"}…]}`.
    public var json: [String: Any] {
        [
            "spec": spec.json,
            "layers": plan.layers.map { layer -> [String: Any] in
                ["name": layer.name, "type": layer.kind.rawValue, "input": layer.input.array, "output": layer.output.array]
            },
            "tensors": plan.tensors.map { ["name": $0.name, "shape": $0.shape] as [String: Any] },
        ]
    }

    public var jsonText: String { ReparoCore.jsonText(json) }
}
