import ArgumentParser
import Foundation
import ReparoCore

/// The main job: reproduce the paper's claim on real data. Train a dense teacher, then for
/// each pruning ratio fine-tune the pruned network four ways with the same budget and seeds
/// — (a) vanilla, (b) expand + SP-KD (the method), (c) expand only, (d) SP-KD only — collapse
/// and measure test accuracy. Prints a table (mean ± std over seeds), writes CSV, and a PNG
/// plot when python3 with matplotlib is available.
struct Reproduce: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Prune → expand → SP-KD fine-tune → collapse, against vanilla fine-tuning.")
    @OptionGroup var data: DataOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "Teacher spec JSON or preset (vgg16, resnet20, resnet56).") var spec = Experiment.digitsSpec
    @Option(help: "Channel multiplier for presets.") var width = 1.0
    @Option(help: "Load the dense teacher from this file instead of training it.") var teacher: String?
    @Option(help: "Teacher training epochs.") var teacherEpochs = 30
    @Option(help: "Fine-tuning epochs of every variant.") var finetuneEpochs = 6
    @Option(help: "Mini-batch size.") var batchSize = 64
    @Option(help: "Pruning ratios, comma-separated.") var ratios = "0.5,0.7,0.9"
    @Option(help: "Seeds per variant.") var seeds = 5
    @Option(help: "Expansion rate r.") var rate = 4
    @Option(help: "SP-KD weight (averaged over layer pairs).") var kdWeight = Experiment.defaultKDWeight
    @Option(help: "Fine-tuning learning rate (cosine schedule).") var learningRate = 0.01
    @Option(help: "Variants to run, comma-separated (vanilla, expand+spkd, expand, spkd).")
    var variants = "vanilla,expand+spkd,expand,spkd"
    @Option(help: "Directory for reproduce.csv, reproduce.png and teacher.safetensors.") var outDir = "results"

    enum Variant: String, CaseIterable {
        case vanilla = "vanilla"
        case method = "expand+spkd"
        case expandOnly = "expand"
        case distillOnly = "spkd"
        var expands: Bool { self == .method || self == .expandOnly }
        var distills: Bool { self == .method || self == .distillOnly }
    }

    struct Row {
        var ratio: Double
        var variant: Variant
        var accuracies: [Double]
        var seconds: [Double]
        var parameters: Int
        var flops: Int
    }

    func run() throws {
        let ratioList = try ratios.split(separator: ",").map { text -> Double in
            guard let value = Double(text.trimmingCharacters(in: .whitespaces)), value > 0, value < 1 else {
                throw ValidationError("--ratios: \"\(text)\" is not a ratio in (0, 1)")
            }
            return value
        }
        let variantList = try variants.split(separator: ",").map { text -> Variant in
            guard let variant = Variant(rawValue: String(text)) else {
                throw ValidationError("--variants: \"\(text)\" is not one of \(Variant.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return variant
        }
        guard seeds >= 1 else { throw ValidationError("--seeds must be at least 1") }
        let reporter = ProgressReporter(quiet: output.quiet || output.json, label: "")
        let train = try data.load("train"), test = try data.load("test")
        try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
        let started = Date()

        let dense: Model
        if let teacher {
            dense = try Model.load(path: teacher)
        } else {
            dense = try Model(specJSON: Experiment.resolveSpec(spec, for: train, width: width), seed: 0)
            let trainReporter = ProgressReporter(quiet: output.quiet || output.json, label: "teacher")
            try Experiment.train(dense, teacher: nil, data: train, epochs: teacherEpochs, batchSize: batchSize,
                                 options: #"{"lr":0.05,"schedule":"cosine"}"#, seed: 0, reporter: trainReporter)
            try dense.save(path: outDir + "/teacher.safetensors")
        }
        let denseAccuracy = try dense.evaluate(test).accuracy
        reporter.note(String(format: "dense teacher: %.2f%% test accuracy, %d parameters, %d multiply-adds",
                             denseAccuracy * 100, dense.parameterCount, dense.multiplyAdds))

        var rows: [Row] = []
        var prunedAccuracy: [Double: Double] = [:]
        for ratio in ratioList {
            var options = PruneOptions()
            options.ratio = ratio
            let pruned = try Pruning.prune(dense, options: options)
            prunedAccuracy[ratio] = try pruned.evaluate(test).accuracy
            for variant in variantList {
                var row = Row(ratio: ratio, variant: variant, accuracies: [], seconds: [],
                              parameters: pruned.parameterCount, flops: pruned.multiplyAdds)
                for seed in 0..<seeds {
                    let label = String(format: "ratio %.2f %@ seed %d", ratio, variant.rawValue, seed)
                    let start = Date()
                    var student = try pruned.clone()
                    if variant.expands {
                        var expandOptions = ExpandOptions()
                        expandOptions.rate = rate
                        expandOptions.seed = UInt64(seed)
                        student = try Expansion.expand(student, options: expandOptions)
                    }
                    let trainerOptions: [String: Any] = ["lr": learningRate, "schedule": "cosine",
                                                         "kd_weight": variant.distills ? kdWeight : 0]
                    try Experiment.train(student, teacher: variant.distills ? dense : nil, data: train,
                                         epochs: finetuneEpochs, batchSize: batchSize, options: jsonText(trainerOptions),
                                         seed: UInt64(seed), reporter: ProgressReporter(quiet: output.quiet || output.json, label: label))
                    if variant.expands { student = try Collapse.collapse(student, options: CollapseOptions()) }
                    guard student.parameterCount == pruned.parameterCount else {
                        throw ReparoError.internalError("collapsed model has \(student.parameterCount) parameters, pruned has \(pruned.parameterCount)")
                    }
                    row.accuracies.append(try student.evaluate(test).accuracy)
                    row.seconds.append(Date().timeIntervalSince(start))
                }
                rows.append(row)
                reporter.note(String(format: "ratio %.2f  ", ratio) + Self.padded(variant.rawValue, 13) + Self.meanStd(row.accuracies))
            }
        }
        let total = Date().timeIntervalSince(started)
        try writeCSV(rows, path: outDir + "/reproduce.csv")
        let plotted = plot(csv: outDir + "/reproduce.csv", png: outDir + "/reproduce.png", dense: denseAccuracy)
        if output.json {
            let json: [[String: Any]] = rows.map {
                ["ratio": $0.ratio, "variant": $0.variant.rawValue, "accuracies": $0.accuracies,
                 "parameters": $0.parameters, "flops": $0.flops, "seconds": $0.seconds]
            }
            print(jsonText(["dense_accuracy": denseAccuracy, "dense_parameters": dense.parameterCount,
                            "dense_flops": dense.multiplyAdds, "rows": json, "seconds": total] as [String: Any]))
            return
        }
        print(table(rows, dense: dense, denseAccuracy: denseAccuracy, pruned: prunedAccuracy))
        print(String(format: "total %.0f s; CSV: %@/reproduce.csv%@", total, outDir,
                     plotted ? "; plot: \(outDir)/reproduce.png" : " (no plot: python3 with matplotlib not found)"))
    }

    static func padded(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }

    static func meanStd(_ values: [Double]) -> String {
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.count > 1 ? values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count - 1) : 0
        return String(format: "%6.2f ± %5.2f", mean * 100, variance.squareRoot() * 100)
    }

    func table(_ rows: [Row], dense: Model, denseAccuracy: Double, pruned: [Double: Double]) -> String {
        var lines = [
            String(format: "dense: %.2f%% test accuracy, %d params, %d MACs/image", denseAccuracy * 100,
                   dense.parameterCount, dense.multiplyAdds),
            "ratio  variant        accuracy % (mean ± std, \(seeds) seeds)  params    MACs/image  seconds/run",
        ]
        for row in rows {
            let seconds = row.seconds.reduce(0, +) / Double(row.seconds.count)
            lines.append(String(format: "%.2f   ", row.ratio) + Self.padded(row.variant.rawValue, 15)
                         + Self.padded(Self.meanStd(row.accuracies), 42)
                         + String(format: "%-9d %-11d %.1f", row.parameters, row.flops, seconds))
        }
        for ratio in pruned.keys.sorted() {
            lines.append(String(format: "ratio %.2f before fine-tuning: %.2f%%", ratio, (pruned[ratio] ?? 0) * 100))
        }
        return lines.joined(separator: "\n")
    }

    func writeCSV(_ rows: [Row], path: String) throws {
        var text = "ratio,variant,seed,accuracy,parameters,flops,seconds\n"
        for row in rows {
            for (seed, accuracy) in row.accuracies.enumerated() {
                text += String(format: "%.2f,%@,%d,%.6f,%d,%d,%.3f\n", row.ratio, row.variant.rawValue, seed, accuracy,
                               row.parameters, row.flops, row.seconds[seed])
            }
        }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Runs scripts/plot_reproduction.py when python3 and matplotlib are present.
    func plot(csv: String, png: String, dense: Double) -> Bool {
        guard let script = Experiment.locateScript("plot_reproduction.py") else { return false }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, csv, png, String(dense)]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus == 0
        } catch {
            return false
        }
    }
}
