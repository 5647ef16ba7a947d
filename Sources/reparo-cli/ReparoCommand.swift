import ArgumentParser
import Foundation
import ReparoCore

/// `reparo`: the whole workflow from a shell. `reproduce` is the main job.
@main
struct ReparoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reparo",
        abstract: "Restore the accuracy of pruned CNNs by linear over-parameterization (Qian et al. 2022).",
        version: Reparo.version,
        subcommands: [Reproduce.self, Train.self, Prune.self, Expand.self, Finetune.self, CollapseCommand.self, Export.self, Import.self, Evaluate.self, Infer.self, Info.self],
        defaultSubcommand: nil
    )
}

/// Where a command reads its data.
struct DataOptions: ParsableArguments {
    @Option(help: "Dataset: digits (bundled), mnist, fashion-mnist or cifar10.")
    var dataset = "digits"
    @Option(help: """
        Directory of the dataset files (default for digits: the bundled data/; for \
        fashion-mnist: $REPARO_FASHION_MNIST, else /usr/share/datasets/fashion-mnist). \
        MNIST-style IDX files may be gzipped.
        """)
    var dataPath: String?

    func load(_ split: String) throws -> Dataset {
        try DatasetCatalog.load(kind: dataset, path: dataPath, split: split)
    }
}

struct OutputOptions: ParsableArguments {
    @Flag(help: "No progress output.")
    var quiet = false
    @Flag(help: "Machine-readable JSON results on stdout.")
    var json = false
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train a model from a spec and save it.")
    @OptionGroup var data: DataOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "Model spec JSON, or a preset name (vgg16, resnet20, resnet56).")
    var spec = Experiment.digitsSpec
    @Option(help: "Epochs.") var epochs = 30
    @Option(help: "Mini-batch size.") var batchSize = 64
    @Option(help: "Trainer options JSON (see reparo.h); epochs set total_steps for cosine.")
    var options = #"{"lr":0.05,"schedule":"cosine"}"#
    @Option(help: "Seed.") var seed: UInt64 = 0
    @Option(name: .shortAndLong, help: "Where to save the model (.safetensors).") var out = "model.safetensors"

    func run() throws {
        let train = try data.load("train"), test = try data.load("test")
        let model = try Model(specJSON: Experiment.resolveSpec(spec, for: train), seed: seed)
        let reporter = ProgressReporter(quiet: output.quiet || output.json, label: "train")
        let trainerOptions = try Experiment.trainerOptions(options, totalSteps: Experiment.totalSteps(train, epochs: epochs, batchSize: batchSize),
                                                           seed: seed)
        let elapsed = try Experiment.train(model, teacher: nil, data: train, epochs: epochs, batchSize: batchSize,
                                           options: trainerOptions, seed: seed, reporter: reporter)
        let result = try model.evaluate(test)
        try model.save(path: out)
        if output.json {
            print(JSONWriter.text(["accuracy": .double(result.accuracy), "loss": .double(result.loss), "seconds": .double(elapsed),
                                   "path": .string(out)]))
        } else {
            print(String(format: "test accuracy %.2f%%  loss %.4f  (%.1f s)  saved %@", result.accuracy * 100, result.loss, elapsed, out))
        }
    }
}

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "eval", abstract: "Test accuracy of a saved model.")
    @OptionGroup var data: DataOptions
    @Option(help: "Split to evaluate.") var split = "test"
    @Argument(help: "Model file.") var model: String

    func run() throws {
        let loaded = try Model.load(path: model)
        let result = try loaded.evaluate(data.load(split))
        print(String(format: "accuracy %.2f%%  loss %.4f", result.accuracy * 100, result.loss))
    }
}

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a saved model (JSON), or with --system this machine: CPU, BLAS core, kernels, threads.")
    @Argument(help: "Model file.") var model: String?
    @Flag(help: "Describe the system instead of a model (the OpenBLAS core is fixed first, see README).")
    var system = false
    @Flag(help: "With --system: the JSON object of reparo_system_info instead of text.")
    var json = false

    func validate() throws {
        if system == (model != nil) { throw ValidationError("give a model file or --system (not both)") }
        if json && !system { throw ValidationError("--json goes with --system (a model's description is JSON already)") }
    }

    func run() throws {
        guard let model else {
            print(json ? JSONWriter.text(ComputeEnvironment.json) : ComputeEnvironment.text)
            return
        }
        print(try Model.load(path: model).describe())
    }
}
