// JSON → PruneOptions, for the C API (`reparo_prune`) and the fuzz target; the engine takes
// the struct.

extension PruneOptions {
    /// Decodes the options JSON documented in reparo.h; empty or nil text gives the defaults.
    /// Errors name the key: `.invalidArgument("options.<key>: …")`.
    public init(json text: String?) throws {
        var object = try JSONObject.parse(text, context: "options")
        let defaults = try PruneOptions()
        let ratio = try object.double("ratio", default: defaults.ratio, in: Self.ratioRange)
        let criterion = try object.string("criterion", default: defaults.criterion.rawValue,
                                          allowed: Criterion.allCases.map(\.rawValue))
        let seed = UInt64(try object.int("seed", default: 0, in: 0...Int(Int64.max)))
        let residual = try object.string("residual", default: defaults.residual.rawValue,
                                         allowed: Residual.allCases.map(\.rawValue))
        var layerRatios: [String: Double] = [:]
        if let layers = try object.optionalObject("layers") {
            for (name, value) in layers.members {
                layerRatios[name] = try JSONObject.number(value, name: "options.layers.\(name)", in: Self.ratioRange)
            }
        }
        try self.init(ratio: ratio, criterion: Criterion(rawValue: criterion) ?? defaults.criterion, seed: seed,
                      layerRatios: layerRatios, residual: Residual(rawValue: residual) ?? defaults.residual)
        try object.finish()
    }
}
