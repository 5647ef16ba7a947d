import Foundation
import ReparoCore

/// One way of fine-tuning the pruned network, all with the same budget, schedule and seeds.
enum FineTuningVariant: String, CaseIterable, Sendable {
    /// Fine-tune the compact network with cross-entropy alone (the baseline).
    case vanilla = "vanilla"
    /// The method: expand every layer into a chain, fine-tune with CE + SP-KD, collapse.
    case method = "expand+spkd"
    /// Ablation: expansion without distillation.
    case expandOnly = "expand"
    /// Ablation: distillation without expansion.
    case distillOnly = "spkd"

    var expands: Bool { self == .method || self == .expandOnly }
    var distills: Bool { self == .method || self == .distillOnly }

    static func parseList(_ text: String, option: String) throws -> [FineTuningVariant] {
        try text.split(separator: ",").map { word in
            let name = word.trimmingCharacters(in: .whitespaces)
            guard let variant = FineTuningVariant(rawValue: name) else {
                throw ReparoError.invalidArgument(
                    "\(option): \"\(name)\" is not one of \(allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return variant
        }
    }
}

/// Everything that defines a reproduction run, with the defaults of each data set. The
/// teacher settings also key the teacher cache (`TeacherCache`).
struct ReproduceProtocol {
    /// Spec JSON or preset name; a preset is resolved for the data's input shape.
    var spec: String
    /// Channel multiplier of a preset.
    var width: Double
    var teacherEpochs: Int
    var teacherLearningRate: Double
    var finetuneEpochs: Int
    var batchSize: Int
    var ratios: [Double]
    var seeds: Int
    var firstSeed: Int
    /// Expansion rate r (chain widths r·Cin, r·Cout).
    var rate: Int
    var kdWeight: Double
    /// Where SP-KD attaches: "pruned" (the outputs of the pruned layers, after BN and ReLU) or
    /// "all" (every conv block present in both networks); the trainer's `kd_layers`.
    var kdLayers = "pruned"
    /// Fine-tuning learning rate (cosine schedule to 0) of each variant, as tuned at some
    /// ratios: a run uses the rate tuned at the ratio nearest its own (`learningRate(_:ratio:)`).
    var learningRates: [FineTuningVariant: [TunedRate]]
    var variants: [FineTuningVariant]

    /// The defaults. `fashion-mnist` (and `mnist`, `cifar10`): VGG-16 at width 0.25 on the
    /// data's resolution, sized to run in under 20 minutes on 2 cores; `long` is the budget
    /// of a serious run (teacher 30 epochs, fine-tuning 10). `digits`: the small demo on the
    /// bundled 8×8 digits. Learning rates and `kd_weight` were chosen on a validation split
    /// held out of the training images (README, "How the settings were chosen").
    static func defaults(dataset: String, long: Bool) -> ReproduceProtocol {
        if dataset == "digits" {
            return ReproduceProtocol(
                spec: Experiment.digitsSpec, width: 1, teacherEpochs: long ? 60 : 30, teacherLearningRate: 0.05,
                finetuneEpochs: long ? 20 : 6, batchSize: 64, ratios: [0.5, 0.7, 0.9], seeds: 5, firstSeed: 0,
                rate: 4, kdWeight: TrainerOptions.defaultKDWeight,
                learningRates: Dictionary(uniqueKeysWithValues: FineTuningVariant.allCases.map { ($0, [TunedRate(ratio: 0.5, rate: 0.01)]) }),
                variants: FineTuningVariant.allCases)
        }
        return ReproduceProtocol(
            spec: "vgg16", width: 0.25, teacherEpochs: long ? 30 : fashionTeacherEpochs, teacherLearningRate: 0.05,
            finetuneEpochs: long ? 10 : 1, batchSize: 64, ratios: [0.5, 0.7, 0.9, 0.95, 0.98], seeds: 5, firstSeed: 0,
            rate: 4, kdWeight: TrainerOptions.defaultKDWeight, learningRates: fashionLearningRates,
            variants: FineTuningVariant.allCases)
    }

    /// Teacher epochs of the default (short) protocol on 28×28 data.
    static let fashionTeacherEpochs = 4
    /// A learning rate and the pruning ratio it was chosen at.
    struct TunedRate: Equatable {
        var ratio: Double
        var rate: Double
    }

    /// Per-variant fine-tuning learning rates of the 28×28 protocol, each chosen at ratios 0.7,
    /// 0.95 and 0.98 as the best of 0.005, 0.01, 0.02, 0.05, 0.1 (and 0.2 where 0.1 was best)
    /// by mean validation accuracy over 2 seeds (10,000 training images held out; README, "How
    /// the settings were chosen"). Ratios 0.5 and 0.9 use the rate of the nearest tuned ratio.
    static let fashionLearningRates: [FineTuningVariant: [TunedRate]] = [
        .vanilla: [TunedRate(ratio: 0.7, rate: 0.01), TunedRate(ratio: 0.95, rate: 0.1), TunedRate(ratio: 0.98, rate: 0.05)],
        .method: [TunedRate(ratio: 0.7, rate: 0.02), TunedRate(ratio: 0.95, rate: 0.02), TunedRate(ratio: 0.98, rate: 0.05)],
        .expandOnly: [TunedRate(ratio: 0.7, rate: 0.01), TunedRate(ratio: 0.95, rate: 0.05), TunedRate(ratio: 0.98, rate: 0.05)],
        .distillOnly: [TunedRate(ratio: 0.7, rate: 0.01), TunedRate(ratio: 0.95, rate: 0.05), TunedRate(ratio: 0.98, rate: 0.05)],
    ]

    /// Parses `--learning-rate`: one number for every variant ("0.02"), or per variant
    /// ("vanilla=0.05,expand+spkd=0.02"; variants not named keep their default), for every ratio.
    mutating func setLearningRates(_ text: String) throws {
        let range = TrainerOptions.learningRateRange
        if let value = Double(text.trimmingCharacters(in: .whitespaces)) {
            guard range.contains(value) else {
                throw ReparoError.invalidArgument("--learning-rate: \(text) is outside \(range.lowerBound) to \(range.upperBound)")
            }
            for variant in FineTuningVariant.allCases { learningRates[variant] = [TunedRate(ratio: 0.5, rate: value)] }
            return
        }
        for item in text.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, let variant = FineTuningVariant(rawValue: parts[0]),
                  let value = Double(parts[1]), range.contains(value) else {
                throw ReparoError.invalidArgument(
                    "--learning-rate: \"\(item)\" is not VARIANT=RATE (variants: \(FineTuningVariant.allCases.map(\.rawValue).joined(separator: ", ")); rate from \(range.lowerBound) to \(range.upperBound))")
            }
            learningRates[variant] = [TunedRate(ratio: 0.5, rate: value)]
        }
    }

    /// The rate tuned at the ratio nearest `ratio` (the lower one on a tie).
    func learningRate(_ variant: FineTuningVariant, ratio: Double) -> Double {
        let tuned = learningRates[variant] ?? []
        return tuned.min { abs($0.ratio - ratio) < abs($1.ratio - ratio) }?.rate ?? 0.01
    }

    var seedList: [Int] { Array(firstSeed..<(firstSeed + seeds)) }
}
