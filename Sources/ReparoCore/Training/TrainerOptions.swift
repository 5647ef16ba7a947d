import Foundation

/// Options of a `Trainer` (the C API's options JSON). Defaults are documented in reparo.h.
public struct TrainerOptions: Equatable, Sendable {
    public var learningRate: Double = 0.05
    public var momentum: Double = 0.9
    public var nesterov = false
    public var weightDecay: Double = 5e-4
    public var schedule: LearningRateSchedule = .constant
    public var cropPadding = 0
    public var flip = false
    /// Weight of the SP-KD loss, averaged over the layer pairs (0 = off). nil: the default,
    /// `defaultKDWeight` when the trainer has a teacher, else 0.
    public var kdWeight: Double? = nil
    /// Chosen from a sweep over 30…3000 with 5 seeds on the bundled digits (README).
    public static let defaultKDWeight = 300.0
    /// The learning rates the options accept.
    public static let learningRateRange = 1e-12...100.0
    /// "pruned", "all", or explicit layer names.
    public var kdLayers: KDLayers = .pruned
    public var clipNorm: Double = 0
    public var seed: UInt64 = 0
    /// 0 = every core the process may use (`Parallel.cores`: its affinity mask).
    public var threads = 0
    /// How expanded chains are trained (`ExpandedChain.TrainingMode`).
    public var chainMode: ExpandedChain.TrainingMode = .automatic

    public enum KDLayers: Equatable, Sendable {
        case pruned, all
        case names([String])
    }

    public init() {}

    public static func parse(_ text: String?) throws -> TrainerOptions {
        var object = try JSONObject.parse(text, context: "options")
        var options = TrainerOptions()
        options.learningRate = try object.double("lr", default: options.learningRate, in: TrainerOptions.learningRateRange)
        guard options.learningRate > 0 else { throw ReparoError.invalidArgument("options.lr: must be > 0") }
        options.momentum = try object.double("momentum", default: options.momentum, in: 0...0.999999)
        options.nesterov = try object.bool("nesterov", default: false)
        options.weightDecay = try object.double("weight_decay", default: options.weightDecay, in: 0...1)
        let schedule = try object.string("schedule", default: "constant", allowed: ["constant", "step", "cosine"])
        let totalSteps = try object.int("total_steps", default: 0, in: 0...1_000_000_000)
        let stepSize = try object.int("step_size", default: 1000, in: 1...1_000_000_000)
        let gamma = try object.double("gamma", default: 0.1, in: 0...1)
        switch schedule {
        case "step": options.schedule = .step(every: stepSize, gamma: gamma)
        case "cosine":
            guard totalSteps > 0 else {
                throw ReparoError.invalidArgument("options.total_steps: required (> 0) with \"schedule\": \"cosine\"")
            }
            options.schedule = .cosine(totalSteps: totalSteps)
        default: options.schedule = .constant
        }
        if var augment = try object.optionalObject("augment") {
            options.cropPadding = try augment.int("crop_padding", default: 0, in: 0...64)
            options.flip = try augment.bool("flip", default: false)
            try augment.finish()
        }
        options.kdWeight = try object.optionalDouble("kd_weight", in: 0...1e9)
        if let layers = object.any("kd_layers") {
            if let word = layers as? String {
                switch word {
                case "pruned": options.kdLayers = .pruned
                case "all": options.kdLayers = .all
                default: throw ReparoError.invalidArgument("options.kd_layers: \"\(word)\" is not \"pruned\", \"all\" or a list of layer names")
                }
            } else if let list = layers as? [Any] {
                let names = try list.enumerated().map { index, value -> String in
                    guard let name = value as? String else {
                        throw ReparoError.invalidArgument("options.kd_layers[\(index)]: expected a layer name")
                    }
                    return name
                }
                options.kdLayers = .names(names)
            } else {
                throw ReparoError.invalidArgument("options.kd_layers: expected \"pruned\", \"all\" or a list of names")
            }
        }
        options.clipNorm = try object.double("clip_norm", default: 0, in: 0...1e9)
        options.seed = UInt64(try object.int("seed", default: 0, in: 0...Int(Int64.max)))
        options.threads = try object.int("threads", default: 0, in: 0...256)
        let mode = try object.string("chain_mode", default: "auto", allowed: ExpandedChain.TrainingMode.allCases.map(\.rawValue))
        options.chainMode = ExpandedChain.TrainingMode(rawValue: mode) ?? .automatic
        try object.finish()
        return options
    }
}

/// Learning rate as a function of the step index (0-based).
public enum LearningRateSchedule: Equatable, Sendable {
    case constant
    /// Multiply by `gamma` every `every` steps.
    case step(every: Int, gamma: Double)
    /// Half-cosine from the base rate to 0 over `totalSteps` (Loshchilov & Hutter 2017).
    case cosine(totalSteps: Int)

    public func rate(base: Double, step: Int) -> Double {
        switch self {
        case .constant: return base
        case .step(let every, let gamma): return base * pow(gamma, Double(step / every))
        case .cosine(let total):
            let progress = Double(min(step, total)) / Double(total)
            return base * 0.5 * (1 + cos(Double.pi * progress))
        }
    }
}
