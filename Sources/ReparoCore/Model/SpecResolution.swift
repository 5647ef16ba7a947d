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
    public var json: JSONValue {
        [
            "spec": spec.json,
            "layers": .array(plan.layers.map { layer in
                ["name": .string(layer.name), "type": .string(layer.kind.rawValue),
                 "input": .ints(layer.input.array), "output": .ints(layer.output.array)]
            }),
            "tensors": .array(plan.tensors.map { ["name": .string($0.name), "shape": .ints($0.shape)] }),
        ]
    }

    public var jsonText: String { JSONWriter.text(json) }
}
