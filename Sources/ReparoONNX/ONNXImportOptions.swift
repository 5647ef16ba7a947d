import ReparoCore

/// Options of `ONNXImport` (the `options_json` of `reparo_model_import_onnx`).
public struct ONNXImportOptions: Equatable, Sendable {
    /// The image shape [C, H, W]; required when the graph input's C, H or W is symbolic, and
    /// must agree with every dimension the graph fixes.
    public var input: FeatureShape?
    /// The state the imported model reports (`describe`): `.dense` or `.pruned`.
    public var state: ModelState

    public init(input: FeatureShape? = nil, state: ModelState = .dense) {
        self.input = input
        self.state = state
    }

    /// Decodes `{"input":[C,H,W],"state":"dense"|"pruned"}`; empty or nil text gives the
    /// defaults, unknown keys are refused.
    public init(json text: String?) throws {
        var object = try JSONObject.parse(text, context: "options")
        var input: FeatureShape?
        if let values = try object.optionalArray("input") {
            guard values.count == 3 else { throw ReparoError.invalidArgument("options.input: expected [C, H, W]") }
            let sides = try values.enumerated().map { index, value in
                try JSONObject.integer(value, name: "options.input[\(index)]", in: 1...4_096)
            }
            input = FeatureShape(channels: sides[0], height: sides[1], width: sides[2])
        }
        let state = try object.string("state", default: "dense", allowed: ["dense", "pruned"])
        try object.finish()
        self.init(input: input, state: state == "pruned" ? .pruned : .dense)
    }
}
