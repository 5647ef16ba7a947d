import ArgumentParser
import Foundation
import ReparoCore

/// The main job: the paper's claim on real data. Train (or reuse from the cache) a dense
/// teacher, prune it at each ratio, and fine-tune the pruned network four ways with the same
/// budget, schedule and seeds — (a) vanilla, (b) expand + SP-KD (the method), (c) expand
/// only, (d) SP-KD only — then collapse and measure accuracy on the test images (or on a
/// validation split held out of the training images, for choosing settings). Prints a table,
/// paired 95 % confidence intervals of each variant against vanilla fine-tuning with a
/// verdict, and writes reproduce.csv (after every run), reproduce.json and reproduce.png.
struct Reproduce: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prune → expand → SP-KD fine-tune → collapse, against vanilla fine-tuning, with confidence intervals.",
        discussion: """
            Defaults depend on --dataset and --protocol (README, "The main job"). fashion-mnist \
            (default): VGG-16 at width 0.25 on 1×28×28, teacher 4 epochs, fine-tuning 1 epoch \
            with per-variant learning rates chosen on a validation split, ratios \
            0.5,0.7,0.9,0.95,0.98, 5 seeds (about 15 minutes on 2 cores, 10 with a cached \
            teacher); --protocol long: teacher 30 epochs, fine-tuning 10. digits: the bundled \
            8×8 demo (about 1 minute). Any setting given below overrides the protocol's.
            """)

    @Option(help: "Dataset: fashion-mnist (default; Debian package dataset-fashion-mnist), digits (bundled), mnist or cifar10.")
    var dataset = "fashion-mnist"
    @Option(help: "Directory of the dataset files (defaults: see `reparo train --help`).")
    var dataPath: String?
    @Option(help: "default or long (the budget of a serious run).")
    var `protocol` = "default"
    @Option(help: "Teacher spec JSON or preset (vgg16, resnet20, resnet56).") var spec: String?
    @Option(help: "Channel multiplier for presets.") var width: Double?
    @Option(help: "Load the dense teacher from this file instead of training (or reusing) one.") var teacher: String?
    @Flag(help: "Train the teacher even when the cache in --out-dir has one for these settings.") var retrainTeacher = false
    @Option(help: "Teacher training epochs.") var teacherEpochs: Int?
    @Option(help: "Fine-tuning epochs of every variant.") var finetuneEpochs: Int?
    @Option(help: "Mini-batch size.") var batchSize: Int?
    @Option(help: "Pruning ratios, comma-separated.") var ratios: String?
    @Option(help: "Seeds per variant.") var seeds: Int?
    @Option(help: "First seed (seeds run first-seed, first-seed+1, …).") var firstSeed: Int?
    @Option(help: "Expansion rate r.") var rate: Int?
    @Option(help: "SP-KD weight (averaged over layer pairs).") var kdWeight: Double?
    @Option(help: "Where SP-KD attaches: pruned (default) or all.") var kdLayers: String?
    @Option(help: "Fine-tuning learning rate (cosine to 0): one number, or per variant as vanilla=0.05,expand+spkd=0.02.")
    var learningRate: String?
    @Option(help: "Variants to run, comma-separated (vanilla, expand+spkd, expand, spkd).") var variants: String?
    @Option(help: "Hold out this many training images as a validation split and report accuracy on it instead of the test set (for choosing settings).")
    var validation = 0
    @Option(help: "Train on the first N training images only (a quick check of the pipeline; 0 = all).")
    var trainImages = 0
    @Option(help: "Directory for reproduce.csv/.json/.png and the teacher cache.") var outDir = "results"
    @OptionGroup var output: OutputOptions

    func run() throws {
        let settings = try resolvedProtocol()
        let log = RunLog(quiet: output.quiet)
        log.line("loading \(dataset)…")
        var train = try DatasetCatalog.load(kind: dataset, path: dataPath, split: "train")
        if trainImages > 0 && trainImages < train.count { train = train.prefix(trainImages) }
        let evaluation: Dataset
        let split: String
        if validation > 0 {
            guard validation < train.count else {
                throw ValidationError("--validation \(validation): the training split has only \(train.count) images")
            }
            (train, evaluation) = try Self.holdOut(validation, of: train)
            split = "validation"
        } else {
            evaluation = try DatasetCatalog.load(kind: dataset, path: dataPath, split: "test")
            split = "test"
        }
        try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
        let clockStart = Date()

        // The dense teacher: given, cached, or trained now.
        let specJSON = Experiment.resolveSpec(settings.spec, for: train, width: settings.width)
        let dense: Model
        var teacherInfo: ReproduceReport.Teacher
        if let teacher {
            dense = try Model.load(path: teacher)
            teacherInfo = .init(accuracy: try dense.evaluate(evaluation).accuracy, parameters: dense.parameterCount,
                                multiplyAdds: dense.multiplyAdds, seconds: 0, cached: true)
        } else {
            let resolved = try Model(specJSON: specJSON, seed: 0).spec
            let cache = TeacherCache(directory: outDir, settings: [
                "version": .string(Reparo.version), "dataset": .string(dataset), "data_path": .string(dataPath ?? "(default)"),
                "spec": resolved.json,
                "epochs": .int(settings.teacherEpochs), "lr": .double(settings.teacherLearningRate), "schedule": "cosine",
                "batch_size": .int(settings.batchSize), "seed": .int(0), "validation": .int(validation), "train_images": .int(train.count),
                "blas_core": .string(ComputeEnvironment.blasCore), "kernel_isa": .string(ComputeEnvironment.kernelISA),
            ], dataset: dataset)
            if !retrainTeacher, let (model, accuracy) = cache.load() {
                dense = model
                teacherInfo = .init(accuracy: accuracy, parameters: model.parameterCount, multiplyAdds: model.multiplyAdds,
                                    seconds: 0, cached: true)
                log.line("teacher: reused \(cache.modelPath)")
            } else {
                dense = try Model(specJSON: specJSON, seed: 0)
                log.line(String(format: "teacher: training %d epochs (%d parameters, %.1f M MACs/image)…",
                                settings.teacherEpochs, dense.parameterCount, Double(dense.multiplyAdds) / 1e6))
                let seconds = try Experiment.train(
                    dense, teacher: nil, data: train, epochs: settings.teacherEpochs, batchSize: settings.batchSize,
                    options: TrainerOptions(learningRate: settings.teacherLearningRate, schedule: .cosine(totalSteps:
                        Experiment.totalSteps(train, epochs: settings.teacherEpochs, batchSize: settings.batchSize))), seed: 0,
                    reporter: ProgressReporter(quiet: output.quiet, label: "teacher", epochLines: true))
                let accuracy = try dense.evaluate(evaluation).accuracy
                try cache.store(dense, accuracy: accuracy, seconds: seconds)
                teacherInfo = .init(accuracy: accuracy, parameters: dense.parameterCount, multiplyAdds: dense.multiplyAdds,
                                    seconds: seconds, cached: false)
                log.line("teacher: saved \(cache.modelPath)")
            }
        }
        log.line(String(format: "dense teacher: %.2f%% %@ accuracy", teacherInfo.accuracy * 100, split))

        // Seed-major, so that an interrupted run has every ratio and variant for its first seeds.
        var report = ReproduceReport(split: split, dataset: dataset, classes: train.classes, teacher: teacherInfo)
        var pruned: [Double: Model] = [:]
        for ratio in settings.ratios {
            let model = try Pruning.prune(dense, options: PruneOptions(ratio: ratio))
            pruned[ratio] = model
            report.prunedAccuracy[ratio] = try model.evaluate(evaluation).accuracy
        }
        var plan: [(seed: Int, ratio: Double, variant: FineTuningVariant)] = []
        for seed in settings.seedList {
            for ratio in settings.ratios {
                for variant in settings.variants { plan.append((seed, ratio, variant)) }
            }
        }
        var clock = RunClock(cost: pruned.mapValues { Double($0.multiplyAdds) })
        let csvPath = outDir + "/reproduce.csv"
        // The teacher's SP-KD targets of one seed's batches, shared by that seed's distilling
        // runs (same batches: the order depends on the seed only); exact, and saves all but one
        // teacher pass per seed. Up to 2 GiB (one epoch of VGG-16 at batch 64: ≈ 200 MB).
        var targets: (seed: Int, cache: TeacherTargetCache)?
        for (index, entry) in plan.enumerated() {
            if targets?.seed != entry.seed { targets = (entry.seed, TeacherTargetCache(teacher: dense, capacityBytes: 2 << 30)) }
            let prefix = "[\(index + 1)/\(plan.count)] ratio \(String(format: "%.2f", entry.ratio)) \(entry.variant.rawValue) seed \(entry.seed)"
            guard let base = pruned[entry.ratio] else { continue }
            let learningRate = settings.learningRate(entry.variant, ratio: entry.ratio)
            let start = Date()
            var student = try base.clone()
            if entry.variant.expands {
                student = try Expansion.expand(student, options: ExpandOptions(rate: settings.rate, seed: UInt64(entry.seed)))
            }
            let trainerOptions = try TrainerOptions(
                learningRate: learningRate,
                schedule: .cosine(totalSteps: Experiment.totalSteps(train, epochs: settings.finetuneEpochs, batchSize: settings.batchSize)),
                kdWeight: entry.variant.distills ? settings.kdWeight : 0,
                kdLayers: entry.variant.distills && settings.kdLayers == "all" ? .all : .pruned, seed: UInt64(entry.seed))
            // A run that diverges (a non-finite loss or gradient) is that arm's outcome with these
            // settings: it stops there, keeps its last finite weights (the failed step changed
            // nothing), is evaluated as it stands and flagged, and the job goes on.
            var diverged: String?
            do {
                try Experiment.train(student, teacher: entry.variant.distills ? dense : nil, data: train,
                                     epochs: settings.finetuneEpochs, batchSize: settings.batchSize,
                                     options: trainerOptions, seed: UInt64(entry.seed),
                                     reporter: ProgressReporter(quiet: output.quiet, label: prefix),
                                     teacherTargets: entry.variant.distills ? targets?.cache : nil)
            } catch ReparoError.numeric(let message) {
                diverged = message
            }
            if entry.variant.expands { student = try Collapse.collapse(student, options: CollapseOptions()) }
            guard student.parameterCount == base.parameterCount else {
                throw ReparoError.internalError("collapsed model has \(student.parameterCount) parameters, the pruned one \(base.parameterCount)")
            }
            let accuracy = try student.evaluate(evaluation).accuracy
            let seconds = Date().timeIntervalSince(start)
            report.runs.append(.init(ratio: entry.ratio, variant: entry.variant, seed: entry.seed, accuracy: accuracy,
                                     parameters: student.parameterCount, multiplyAdds: student.multiplyAdds,
                                     seconds: seconds, learningRate: learningRate, diverged: diverged))
            try report.csv().write(toFile: csvPath, atomically: true, encoding: .utf8)
            clock.record(.init(ratio: entry.ratio, variant: entry.variant), seconds: seconds)
            let left = clock.remaining(plan[(index + 1)...].map { .init(ratio: $0.ratio, variant: $0.variant) }) ?? 0
            log.line(prefix + String(format: ": %.2f%% (%.0f s)  elapsed %@, about %@ left", accuracy * 100, seconds,
                                     RunClock.format(Date().timeIntervalSince(clockStart)), RunClock.format(left))
                     + (diverged.map { " — diverged: \($0)" } ?? ""))
        }

        let total = Date().timeIntervalSince(clockStart)
        var record = settings.record(dataset: dataset, validation: validation)
        record["train_images"] = .int(train.count)
        record["cpu"] = .string(Self.cpuModel())
        record["blas_core"] = .string(ComputeEnvironment.blasCore)
        record["blas_core_chooser"] = .string(ComputeEnvironment.blasCoreChooser)
        record["kernel_isa"] = .string(ComputeEnvironment.kernelISA)
        record["cores"] = .int(Parallel.cores)
        let json = JSONWriter.text(report.json(settings: JSONValue(record), seconds: total))
        try json.write(toFile: outDir + "/reproduce.json", atomically: true, encoding: .utf8)
        let plotted = Experiment.plot(csv: csvPath, png: outDir + "/reproduce.png", dense: teacherInfo.accuracy,
                                      title: "\(dataset): \(Self.modelName(settings)), \(settings.seeds) seed\(settings.seeds == 1 ? "" : "s"), \(split) split")
        if output.json {
            print(json)
            return
        }
        print("\(Self.cpuModel()), \(Parallel.cores) cores; \(ComputeEnvironment.summary)")
        print(report.table())
        let plotNote: String
        switch plotted {
        case .success: plotNote = "; plot: \(outDir)/reproduce.png"
        case .failure(let error): plotNote = " (no plot: \(error.message))"
        }
        print(String(format: "total %@; results: %@/reproduce.csv, reproduce.json%@", RunClock.format(total), outDir, plotNote))
    }

    /// The protocol's defaults for the data set, with every option given on the command line.
    func resolvedProtocol() throws -> ReproduceProtocol {
        guard ["default", "long"].contains(`protocol`) else {
            throw ValidationError("--protocol: \"\(`protocol`)\" is not default or long")
        }
        var settings = ReproduceProtocol.defaults(dataset: dataset, long: `protocol` == "long")
        if let spec { settings.spec = spec }
        if let width {
            guard width > 0, width.isFinite else { throw ValidationError("--width must be positive") }
            settings.width = width
        }
        try override(&settings.teacherEpochs, with: teacherEpochs, atLeast: 1, "--teacher-epochs")
        try override(&settings.finetuneEpochs, with: finetuneEpochs, atLeast: 1, "--finetune-epochs")
        try override(&settings.batchSize, with: batchSize, atLeast: 1, "--batch-size")
        if let ratios {
            settings.ratios = try ratios.split(separator: ",").map { text in
                guard let value = Double(text.trimmingCharacters(in: .whitespaces)), value > 0, value < 1 else {
                    throw ValidationError("--ratios: \"\(text)\" is not a ratio in (0, 1)")
                }
                return value
            }
        }
        try override(&settings.seeds, with: seeds, atLeast: 1, "--seeds")
        try override(&settings.firstSeed, with: firstSeed, atLeast: 0, "--first-seed")
        try override(&settings.rate, with: rate, atLeast: 1, "--rate")
        if let kdWeight {
            guard kdWeight > 0, kdWeight.isFinite else { throw ValidationError("--kd-weight must be positive") }
            settings.kdWeight = kdWeight
        }
        if let kdLayers {
            guard ["pruned", "all"].contains(kdLayers) else { throw ValidationError("--kd-layers: \"\(kdLayers)\" is not pruned or all") }
            settings.kdLayers = kdLayers
        }
        if let learningRate { try settings.setLearningRates(learningRate) }
        if let variants { settings.variants = try FineTuningVariant.parseList(variants, option: "--variants") }
        guard validation >= 0 else { throw ValidationError("--validation must not be negative") }
        guard trainImages >= 0 else { throw ValidationError("--train-images must not be negative") }
        return settings
    }

    /// "vgg16 width 0.25", or "custom spec" for a JSON spec (the plot's title).
    static func modelName(_ settings: ReproduceProtocol) -> String {
        if Presets.names.contains(settings.spec) { return "\(settings.spec) width \(settings.width)" }
        return settings.spec == Experiment.digitsSpec ? "4-conv CNN" : "custom spec"
    }

    /// The CPU's model name (cpuid, else /proc/cpuinfo), or "unknown CPU".
    static func cpuModel() -> String {
        CPUFeatures.current.model.isEmpty ? "unknown CPU" : CPUFeatures.current.model
    }

    /// `setting = value` when the option was given, after checking `value >= minimum`.
    private func override(_ setting: inout Int, with value: Int?, atLeast minimum: Int, _ option: String) throws {
        guard let value else { return }
        guard value >= minimum else { throw ValidationError("\(option) must be at least \(minimum), got \(value)") }
        setting = value
    }

    /// Splits off `count` images as a validation set by a fixed permutation (the same for
    /// every run, whatever the seeds), and trains on the rest.
    static func holdOut(_ count: Int, of data: Dataset) throws -> (train: Dataset, validation: Dataset) {
        var generator = SeededGenerator(seed: 0x5EED_0F_5B11)
        var order = Array(0..<data.count)
        for i in stride(from: order.count - 1, to: 0, by: -1) {
            order.swapAt(i, Int(generator.next() % UInt64(i + 1)))
        }
        return (try data.subset(Array(order[count...]).sorted()), try data.subset(Array(order[..<count]).sorted()))
    }
}

/// One line per event on stderr (teacher, every finished run with the time left), also when
/// stderr is not a terminal, so a log shows the progress of a long job. Silent with --quiet.
struct RunLog {
    let quiet: Bool

    func line(_ text: String) {
        guard !quiet else { return }
        let clear = isatty(STDERR_FILENO) == 1 ? "\r\u{1B}[K" : ""
        FileHandle.standardError.write(Data((clear + text + "\n").utf8))
    }
}

extension ReproduceProtocol {
    /// The settings as reproduce.json records them.
    func record(dataset: String, validation: Int) -> [String: JSONValue] {
        ["dataset": .string(dataset), "spec": .string(spec), "width": .double(width), "teacher_epochs": .int(teacherEpochs),
         "teacher_lr": .double(teacherLearningRate), "finetune_epochs": .int(finetuneEpochs), "batch_size": .int(batchSize),
         "ratios": .array(ratios.map(JSONValue.double)), "seeds": .ints(seedList), "rate": .int(rate),
         "kd_weight": .double(kdWeight), "kd_layers": .string(kdLayers),
         "learning_rates": JSONValue(Dictionary(uniqueKeysWithValues: variants.map { variant in
             (variant.rawValue, JSONValue.array(ratios.map { ["ratio": .double($0), "lr": .double(learningRate(variant, ratio: $0))] }))
         })),
         "variants": .array(variants.map { .string($0.rawValue) }), "validation": .int(validation), "schedule": "cosine"]
    }
}
