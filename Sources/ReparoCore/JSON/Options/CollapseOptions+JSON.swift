// JSON → CollapseOptions, for the C API (`reparo_collapse`) and the fuzz target; the engine
// takes the struct.

extension CollapseOptions {
    /// Decodes the options JSON documented in reparo.h; empty or nil text gives the defaults.
    /// Errors name the key: `.invalidArgument("options.<key>: …")`.
    public init(json text: String?) throws {
        var object = try JSONObject.parse(text, context: "options")
        self.init(foldBatchNorm: try object.bool("fold_batchnorm", default: false))
        try object.finish()
    }
}
