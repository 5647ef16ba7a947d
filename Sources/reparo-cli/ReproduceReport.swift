import Foundation
import ReparoCore

/// The results of a reproduction as they accumulate: one record per fine-tuning run, written
/// to CSV after every run (so an interrupted job keeps what it measured), then summarized as
/// a table, paired comparisons against vanilla fine-tuning, JSON and a plot.
struct ReproduceReport {
    struct Run {
        var ratio: Double
        var variant: FineTuningVariant
        var seed: Int
        var accuracy: Double
        var parameters: Int
        var multiplyAdds: Int
        var seconds: Double
        var learningRate: Double
        /// The trainer's message when the run stopped on a non-finite loss or gradient (its
        /// accuracy is then that of its last finite weights), else nil.
        var diverged: String? = nil
    }

    struct Teacher {
        var accuracy: Double
        var parameters: Int
        var multiplyAdds: Int
        var seconds: Double
        var cached: Bool
    }

    /// "test" (the data set's test images) or "validation" (held out of the training images).
    var split: String
    var dataset: String
    /// Classes of the data: a run within one point of 1/classes is at chance (its network died).
    var classes: Int
    var teacher: Teacher
    var runs: [Run] = []
    /// Accuracy of each pruned network before fine-tuning.
    var prunedAccuracy: [Double: Double] = [:]

    var ratios: [Double] { Array(Set(runs.map(\.ratio))).sorted() }
    var variants: [FineTuningVariant] { FineTuningVariant.allCases.filter { v in runs.contains { $0.variant == v } } }

    /// Whether an accuracy (0…1) is within one point of guessing.
    func atChance(_ accuracy: Double) -> Bool { accuracy <= 1 / Double(max(1, classes)) + 0.01 }

    func runs(ratio: Double, variant: FineTuningVariant) -> [Run] {
        runs.filter { $0.ratio == ratio && $0.variant == variant }.sorted { $0.seed < $1.seed }
    }

    /// `treatment − control` at `ratio`, in accuracy points, over the seeds both arms ran.
    func comparison(ratio: Double, _ treatment: FineTuningVariant, _ control: FineTuningVariant) -> PairedComparison? {
        let a = Dictionary(runs(ratio: ratio, variant: treatment).map { ($0.seed, $0.accuracy * 100) }, uniquingKeysWith: { $1 })
        let b = Dictionary(runs(ratio: ratio, variant: control).map { ($0.seed, $0.accuracy * 100) }, uniquingKeysWith: { $1 })
        let seeds = a.keys.filter { b[$0] != nil }.sorted()
        guard !seeds.isEmpty else { return nil }
        return try? PairedComparison(treatment: seeds.map { a[$0]! }, control: seeds.map { b[$0]! })
    }

    /// The comparisons the report makes: every other variant against vanilla fine-tuning, and
    /// the method against each of its two ingredients.
    var comparedPairs: [(FineTuningVariant, FineTuningVariant)] {
        let present = Set(variants)
        return [(.method, .vanilla), (.expandOnly, .vanilla), (.distillOnly, .vanilla),
                (.method, .expandOnly), (.method, .distillOnly)]
            .filter { present.contains($0.0) && present.contains($0.1) }
    }

    // MARK: - Text

    func table() -> String {
        let seeds = Set(runs.map(\.seed)).count
        var lines = [
            String(format: "dense teacher: %.2f%% %@ accuracy, %d params, %d MACs/image%@", teacher.accuracy * 100, split,
                   teacher.parameters, teacher.multiplyAdds, teacher.cached ? " (cached)" : String(format: " (trained in %.0f s)", teacher.seconds)),
            "",
            "ratio  variant       \(split) accuracy % (mean ± std, \(seeds) seed\(seeds == 1 ? "" : "s"))   params     MACs/image   s/run   lr",
        ]
        for ratio in ratios {
            for variant in variants {
                let group = runs(ratio: ratio, variant: variant)
                guard let first = group.first else { continue }
                let values = group.map { $0.accuracy * 100 }
                let divergedCount = group.filter { $0.diverged != nil }.count
                let chanceCount = group.filter { atChance($0.accuracy) }.count
                let notes = (divergedCount > 0 ? ["\(divergedCount) diverged"] : [])
                    + (chanceCount > 0 ? ["\(chanceCount) at chance"] : [])
                let note = notes.isEmpty ? "" : " (" + notes.joined(separator: ", ") + ")"
                lines.append(String(format: "%.2f   ", ratio) + pad(variant.rawValue, 14)
                             + pad(meanStd(values) + note, 42)
                             + pad(String(first.parameters), 11) + pad(String(first.multiplyAdds), 13)
                             + pad(String(format: "%.1f", group.map(\.seconds).reduce(0, +) / Double(group.count)), 8)
                             + String(format: "%g", first.learningRate))
            }
            if let before = prunedAccuracy[ratio] {
                lines.append(String(format: "%.2f   pruned, before fine-tuning: %.2f%%", ratio, before * 100))
            }
        }
        lines.append("")
        lines.append("paired differences in accuracy points (same seeds), 95 % Student-t interval:")
        for ratio in ratios {
            for (treatment, control) in comparedPairs {
                guard let c = comparison(ratio: ratio, treatment, control) else { continue }
                let interval = c.halfWidth.isFinite ? String(format: "[%+.2f, %+.2f]", c.lower, c.upper) : "(one seed: no interval)"
                lines.append(String(format: "%.2f   ", ratio) + pad("\(treatment.rawValue) − \(control.rawValue)", 26)
                             + String(format: "%+.2f  ", c.mean) + pad(interval, 18) + c.verdict.rawValue)
            }
        }
        return lines.joined(separator: "\n")
    }

    // MARK: - Files

    func csv() -> String {
        var text = "ratio,variant,seed,split,accuracy,parameters,flops,seconds,learning_rate,diverged\n"
        for run in runs {
            text += String(format: "%.2f,%@,%d,%@,%.6f,%d,%d,%.3f,%g,%d\n", run.ratio, run.variant.rawValue, run.seed, split,
                           run.accuracy, run.parameters, run.multiplyAdds, run.seconds, run.learningRate,
                           run.diverged == nil ? 0 : 1)
        }
        return text
    }

    func json(settings: JSONValue, seconds: Double) -> JSONValue {
        var comparisons: [JSONValue] = []
        for ratio in ratios {
            for (treatment, control) in comparedPairs {
                guard let c = comparison(ratio: ratio, treatment, control) else { continue }
                var entry: [String: JSONValue] = [
                    "ratio": .double(ratio), "treatment": .string(treatment.rawValue), "control": .string(control.rawValue),
                    "mean_difference": .double(c.mean), "differences": .array(c.differences.map(JSONValue.double)),
                    "seeds": .int(c.count), "verdict": .string(c.verdict.rawValue)]
                if c.halfWidth.isFinite { entry["ci95"] = [.double(c.lower), .double(c.upper)] }
                comparisons.append(JSONValue(entry))
            }
        }
        let runList: [JSONValue] = runs.map { run in
            var entry: [String: JSONValue] = [
                "ratio": .double(run.ratio), "variant": .string(run.variant.rawValue), "seed": .int(run.seed),
                "accuracy": .double(run.accuracy), "parameters": .int(run.parameters), "flops": .int(run.multiplyAdds),
                "seconds": .double(run.seconds), "learning_rate": .double(run.learningRate)]
            if let diverged = run.diverged { entry["diverged"] = .string(diverged) }
            if atChance(run.accuracy) { entry["at_chance"] = true }
            return JSONValue(entry)
        }
        return ["dataset": .string(dataset), "split": .string(split), "settings": settings, "seconds": .double(seconds),
                "teacher": ["accuracy": .double(teacher.accuracy), "parameters": .int(teacher.parameters),
                            "flops": .int(teacher.multiplyAdds), "seconds": .double(teacher.seconds), "cached": .bool(teacher.cached)],
                "pruned_accuracy": .array(prunedAccuracy.sorted { $0.key < $1.key }.map { ["ratio": .double($0.key), "accuracy": .double($0.value)] }),
                "runs": .array(runList), "comparisons": .array(comparisons)]
    }
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
}

func meanStd(_ values: [Double]) -> String {
    let mean = values.reduce(0, +) / Double(values.count)
    let variance = values.count > 1 ? values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count - 1) : 0
    return String(format: "%6.2f ± %4.2f", mean, variance.squareRoot())
}
