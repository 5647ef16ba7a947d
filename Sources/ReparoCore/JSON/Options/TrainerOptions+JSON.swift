// JSON → TrainerOptions, for the callers that receive options as JSON text: the C API
// (`reparo_trainer_create`), the CLI's --options and the fuzz target. The engine itself
// takes the struct.

extension TrainerOptions {
    /// Decodes the options JSON documented in reparo.h; empty or nil text gives the defaults.
    /// Errors name the key: `.invalidArgument("options.<key>: …")`.
    public init(json text: String?) throws {
        try self.init(json: JSONObject.parse(text, context: "options"))
    }

    public init(json object: JSONObject) throws {
        var object = object
        let defaults = try TrainerOptions()
        let learningRate = try object.double("lr", default: defaults.learningRate, in: Self.learningRateRange)
        let momentum = try object.double("momentum", default: defaults.momentum, in: Self.momentumRange)
        let nesterov = try object.bool("nesterov", default: defaults.nesterov)
        let weightDecay = try object.double("weight_decay", default: defaults.weightDecay, in: Self.weightDecayRange)
        let scheduleName = try object.string("schedule", default: "constant", allowed: ["constant", "step", "cosine"])
        // Read (and range-checked) whichever schedule is chosen; 0 total steps means "not given".
        let totalSteps = try object.int("total_steps", default: 0, in: 0...Self.stepsRange.upperBound)
        let stepSize = try object.int("step_size", default: 1000, in: Self.stepsRange)
        let gamma = try object.double("gamma", default: 0.1, in: Self.gammaRange)
        let schedule: LearningRateSchedule
        switch scheduleName {
        case "step": schedule = .step(every: stepSize, gamma: gamma)
        case "cosine": schedule = .cosine(totalSteps: totalSteps)
        default: schedule = .constant
        }
        var cropPadding = defaults.cropPadding, flip = defaults.flip
        if var augment = try object.optionalObject("augment") {
            cropPadding = try augment.int("crop_padding", default: cropPadding, in: Self.cropPaddingRange)
            flip = try augment.bool("flip", default: flip)
            try augment.finish()
        }
        let kdWeight = try object.optionalDouble("kd_weight", in: Self.kdWeightRange)
        let kdLayers = try object.optionalWordOrNames("kd_layers", words: ["pruned": .pruned, "all": .all],
                                                      names: KDLayers.names) ?? defaults.kdLayers
        let clipNorm = try object.double("clip_norm", default: defaults.clipNorm, in: Self.clipNormRange)
        let seed = UInt64(try object.int("seed", default: 0, in: 0...Int(Int64.max)))
        let threads = try object.int("threads", default: defaults.threads, in: Self.threadsRange)
        let mode = try object.string("chain_mode", default: defaults.chainMode.rawValue,
                                     allowed: ExpandedChain.TrainingMode.allCases.map(\.rawValue))
        try self.init(learningRate: learningRate, momentum: momentum, nesterov: nesterov, weightDecay: weightDecay,
                      schedule: schedule, cropPadding: cropPadding, flip: flip, kdWeight: kdWeight, kdLayers: kdLayers,
                      clipNorm: clipNorm, seed: seed, threads: threads,
                      chainMode: ExpandedChain.TrainingMode(rawValue: mode) ?? defaults.chainMode)
        try object.finish()
    }
}
