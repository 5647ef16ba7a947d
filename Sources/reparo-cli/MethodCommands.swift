import ArgumentParser
import Foundation
import ReparoCore
import ReparoONNX

extension PruneOptions.Criterion: ExpressibleByArgument {}
extension PruneOptions.Residual: ExpressibleByArgument {}

/// One command per step of the method, each reading and writing a model file, so the
/// pipeline can be scripted: prune → expand → finetune → collapse → eval/infer.
struct Prune: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Structured filter pruning of a dense model.")
    @Argument(help: "Dense model file.") var input: String
    @Option(help: "Fraction of filters removed from each prunable conv.") var ratio = 0.5
    @Option(help: "l1, l2, bn_gamma or random.") var criterion = PruneOptions.Criterion.l1
    @Option(help: "block (prune inside residual blocks) or coupled (also block outputs).") var residual = PruneOptions.Residual.block
    @Option(help: "Seed (random criterion).") var seed: UInt64 = 0
    @Option(name: .shortAndLong, help: "Output model file.") var out: String

    func run() throws {
        let options = try PruneOptions(ratio: ratio, criterion: criterion, seed: seed, residual: residual)
        try transformModelFile(input, to: out) { dense in
            let pruned = try Pruning.prune(dense, options: options)
            return (pruned, "pruned: \(dense.parameterCount) → \(pruned.parameterCount) parameters, \(dense.multiplyAdds) → \(pruned.multiplyAdds) multiply-adds per image")
        }
    }
}

struct Expand: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Expand each conv (and optionally linear) layer into a linear chain.")
    @Argument(help: "Model file.") var input: String
    @Option(help: "Expansion rate r.") var rate = 4
    @Option(help: "conv or all.") var layers = "conv"
    @Option(help: "Seed of the semi-orthogonal factors.") var seed: UInt64 = 0
    @Option(name: .shortAndLong, help: "Output model file.") var out: String

    func run() throws {
        guard layers == "conv" || layers == "all" else { throw ValidationError("--layers: \"\(layers)\" is not conv or all") }
        let options = try ExpandOptions(rate: rate, layers: layers == "all" ? .all : .convolutions, seed: seed)
        try transformModelFile(input, to: out) { model in
            let expanded = try Expansion.expand(model, options: options)
            return (expanded, "expanded: \(model.parameterCount) → \(expanded.parameterCount) trainable parameters")
        }
    }
}

/// Loads the model file `input`, transforms it, saves the result to `out` and prints the
/// summary that `transform` gives, with where it was saved.
func transformModelFile(_ input: String, to out: String, _ transform: (Model) throws -> (Model, summary: String)) throws {
    let (result, summary) = try transform(try Model.load(path: input))
    try result.save(path: out)
    print("\(summary); saved \(out)")
}

struct Finetune: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Fine-tune a (pruned, expanded) model, optionally with SP-KD from a teacher.")
    @OptionGroup var data: DataOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "Student model file.") var input: String
    @Option(help: "Dense teacher for SP-KD.") var teacher: String?
    @Option(help: "Epochs.") var epochs = 6
    @Option(help: "Mini-batch size.") var batchSize = 64
    @Option(help: "Trainer options JSON (see reparo.h).") var options = #"{"lr":0.01,"schedule":"cosine"}"#
    @Option(help: "Seed.") var seed: UInt64 = 0
    @Option(name: .shortAndLong, help: "Output model file.") var out: String

    func run() throws {
        let student = try Model.load(path: input)
        let teacherModel = try teacher.map { try Model.load(path: $0) }
        let train = try data.load("train"), test = try data.load("test")
        let reporter = ProgressReporter(quiet: output.quiet || output.json, label: "finetune")
        let trainerOptions = try Experiment.trainerOptions(options, totalSteps: Experiment.totalSteps(train, epochs: epochs, batchSize: batchSize),
                                                           seed: seed)
        let seconds = try Experiment.train(student, teacher: teacherModel, data: train, epochs: epochs, batchSize: batchSize,
                                           options: trainerOptions, seed: seed, reporter: reporter)
        try student.save(path: out)
        let result = try student.evaluate(test)
        if output.json {
            print(JSONWriter.text(["accuracy": .double(result.accuracy), "loss": .double(result.loss), "seconds": .double(seconds),
                                   "path": .string(out)]))
        } else {
            print(String(format: "test accuracy %.2f%%  (%.1f s)  saved %@", result.accuracy * 100, seconds, out))
        }
    }
}

struct CollapseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "collapse", abstract: "Multiply expanded chains back into compact layers.")
    @Argument(help: "Expanded model file.") var input: String
    @Flag(help: "Also fold BatchNorm into the preceding convs (inference only).") var foldBatchnorm = false
    @Option(name: .shortAndLong, help: "Output model file.") var out: String

    func run() throws {
        try transformModelFile(input, to: out) { model in
            let collapsed = try Collapse.collapse(model, options: CollapseOptions(foldBatchNorm: foldBatchnorm))
            return (collapsed, "collapsed: \(model.parameterCount) → \(collapsed.parameterCount) parameters")
        }
    }
}

struct Infer: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Predict classes for images of a dataset split.")
    @OptionGroup var data: DataOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "Model file.") var model: String
    @Option(help: "Split.") var split = "test"
    @Option(help: "How many images (from the start of the split).") var count = 10

    func run() throws {
        let loaded = try Model.load(path: model)
        let images = try data.load(split).prefix(max(1, count))
        let logits = try loaded.infer(images.images, batch: images.count)
        var rows: [(index: Int, label: Int, predicted: Int)] = []
        for n in 0..<images.count {
            let row = Array(logits[(n * loaded.classes)..<((n + 1) * loaded.classes)])
            let predicted = row.indices.max { row[$0] < row[$1] } ?? 0
            rows.append((n, Int(images.labels[n]), predicted))
        }
        if output.json {
            print(JSONWriter.text(.array(rows.map { ["index": .int($0.index), "label": .int($0.label), "predicted": .int($0.predicted)] })))
        } else {
            for row in rows { print("image \(row.index): label \(row.label), predicted \(row.predicted)") }
        }
    }
}

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import an ONNX model of a CNN (torch.onnx.export, or reparo export) as a Reparo model.")
    @Argument(help: "ONNX model file (.onnx).") var model: String
    @Option(name: .shortAndLong, help: "Output file (.safetensors).") var out: String
    @Option(help: "Image shape C,H,W (needed when the graph's C, H or W is symbolic).") var input: String?
    @Option(help: "State the model reports: dense or pruned.") var state = "dense"

    func run() throws {
        var options = ONNXImportOptions()
        if let input {
            let sides = input.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard sides.count == 3, let c = sides[0], let h = sides[1], let w = sides[2] else {
                throw ValidationError("--input: expected C,H,W, got \(input)")
            }
            options.input = FeatureShape(channels: c, height: h, width: w)
        }
        guard let parsed = ModelState(rawValue: state), parsed == .dense || parsed == .pruned else {
            throw ValidationError("--state: expected dense or pruned, got \(state)")
        }
        options.state = parsed
        let imported = try ONNXImport.model(path: model, options: options)
        try imported.save(path: out)
        let input = imported.inputShape
        print("imported \(model) (\(imported.spec.layers.count) layers, \(imported.parameterCount) parameters, input \(input.channels)×\(input.height)×\(input.width), \(imported.classes) classes, \(imported.state.rawValue)) to \(out)")
    }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Export a dense, pruned or collapsed model as ONNX (opset 17).")
    @Argument(help: "Model file (.safetensors); an expanded model must be collapsed first.") var input: String
    @Option(help: "ONNX operator set (only 17).") var opset = 17
    @Option(name: .shortAndLong, help: "Output file (.onnx).") var out: String

    func run() throws {
        let model = try Model.load(path: input)
        try ONNXExport.write(model, path: out, options: ONNXExportOptions(opset: opset))
        print("exported \(input) (\(model.state.rawValue), \(model.parameterCount) parameters) to \(out)")
    }
}
