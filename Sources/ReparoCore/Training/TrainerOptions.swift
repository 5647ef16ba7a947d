/// Options of a `Trainer`. Defaults are documented in reparo.h, where the C API's options JSON
/// is; `TrainerOptions(json:)` (TrainerOptions+JSON.swift) decodes it into one.
public struct TrainerOptions: Equatable, Sendable {
    public let learningRate: Double
    public let momentum: Double
    public let nesterov: Bool
    public let weightDecay: Double
    public let schedule: LearningRateSchedule
    public let cropPadding: Int
    public let flip: Bool
    /// Weight of the SP-KD loss, averaged over the layer pairs (0 = off). nil: the default,
    /// `defaultKDWeight` when the trainer has a teacher, else 0.
    public let kdWeight: Double?
    /// "pruned", "all", or explicit layer names.
    public let kdLayers: KDLayers
    public let clipNorm: Double
    public let seed: UInt64
    /// 0 = every core the process may use (`Parallel.cores`: its affinity mask).
    public let threads: Int
    /// How expanded chains are trained (`ExpandedChain.TrainingMode`).
    public let chainMode: ExpandedChain.TrainingMode

    /// Chosen from a sweep over 30…3000 with 5 seeds on the bundled digits (README).
    public static let defaultKDWeight = 300.0

    // The values the options accept.
    public static let learningRateRange = 1e-12...100.0
    public static let momentumRange = 0.0...0.999999
    public static let weightDecayRange = 0.0...1.0
    /// Steps of a schedule: the cosine's length, the step schedule's period.
    public static let stepsRange = 1...1_000_000_000
    public static let gammaRange = 0.0...1.0
    public static let cropPaddingRange = 0...64
    public static let kdWeightRange = 0.0...1e9
    public static let clipNormRange = 0.0...1e9
    public static let threadsRange = 0...256

    public enum KDLayers: Equatable, Sendable {
        case pruned, all
        case names([String])
    }

    /// Throws `.invalidArgument` naming the option (as its JSON key) that is out of range.
    public init(learningRate: Double = 0.05, momentum: Double = 0.9, nesterov: Bool = false, weightDecay: Double = 5e-4,
                schedule: LearningRateSchedule = .constant, cropPadding: Int = 0, flip: Bool = false,
                kdWeight: Double? = nil, kdLayers: KDLayers = .pruned, clipNorm: Double = 0, seed: UInt64 = 0,
                threads: Int = 0, chainMode: ExpandedChain.TrainingMode = .automatic) throws {
        self.learningRate = try Self.learningRateRange.validate(learningRate, "options.lr")
        self.momentum = try Self.momentumRange.validate(momentum, "options.momentum")
        self.nesterov = nesterov
        self.weightDecay = try Self.weightDecayRange.validate(weightDecay, "options.weight_decay")
        switch schedule {
        case .constant: break
        case .step(let every, let gamma):
            _ = try Self.stepsRange.validate(every, "options.step_size")
            _ = try Self.gammaRange.validate(gamma, "options.gamma")
        case .cosine(let totalSteps):
            guard totalSteps > 0 else {
                throw ReparoError.invalidArgument("options.total_steps: required (> 0) with \"schedule\": \"cosine\"")
            }
            _ = try Self.stepsRange.validate(totalSteps, "options.total_steps")
        }
        self.schedule = schedule
        self.cropPadding = try Self.cropPaddingRange.validate(cropPadding, "options.augment.crop_padding")
        self.flip = flip
        self.kdWeight = try kdWeight.map { try Self.kdWeightRange.validate($0, "options.kd_weight") }
        self.kdLayers = kdLayers
        self.clipNorm = try Self.clipNormRange.validate(clipNorm, "options.clip_norm")
        self.seed = seed
        self.threads = try Self.threadsRange.validate(threads, "options.threads")
        self.chainMode = chainMode
    }
}
