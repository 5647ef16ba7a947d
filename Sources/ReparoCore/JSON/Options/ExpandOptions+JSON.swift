// JSON → ExpandOptions, for the C API (`reparo_expand`) and the fuzz target; the engine takes
// the struct.

extension ExpandOptions {
    /// Decodes the options JSON documented in reparo.h; empty or nil text gives the defaults.
    /// Errors name the key: `.invalidArgument("options.<key>: …")`.
    public init(json text: String?) throws {
        var object = try JSONObject.parse(text, context: "options")
        let defaults = try ExpandOptions()
        let rate = try object.int("rate", default: defaults.rate, in: Self.rateRange)
        let seed = UInt64(try object.int("seed", default: 0, in: 0...Int(Int64.max)))
        let layers = try object.optionalWordOrNames("layers", words: ["conv": .convolutions, "all": .all],
                                                    names: Selection.names) ?? defaults.layers
        try self.init(rate: rate, layers: layers, seed: seed)
        try object.finish()
    }
}
