import Foundation
import ReparoCore

/// Shared pieces of the CLI's commands: default model, training loop with progress.
enum Experiment {
    /// The digits model: two conv stages (32 and 64 filters) on 8×8 images.
    static let digitsSpec = """
    {"input":[1,8,8],"classes":10,"layers":[
     {"type":"conv","out":32,"kernel":3,"padding":1},{"type":"batchnorm"},{"type":"relu"},
     {"type":"conv","out":32,"kernel":3,"padding":1},{"type":"batchnorm"},{"type":"relu"},
     {"type":"maxpool","kernel":2},
     {"type":"conv","out":64,"kernel":3,"padding":1},{"type":"batchnorm"},{"type":"relu"},
     {"type":"conv","out":64,"kernel":3,"padding":1},{"type":"batchnorm"},{"type":"relu"},
     {"type":"maxpool","kernel":2},
     {"type":"flatten"},{"type":"linear","out":10}]}
    """

    /// A preset name becomes a preset spec for the dataset's shape; JSON passes through.
    static func resolveSpec(_ spec: String, for data: Dataset, width: Double = 1) -> String {
        guard Presets.names.contains(spec) else { return spec }
        return jsonText(["preset": spec, "input": data.shape.array, "classes": data.classes, "width": width] as [String: Any])
    }

    /// Adds total_steps to the options JSON (for the cosine schedule) and runs `fit`.
    @discardableResult
    static func train(_ model: Model, teacher: Model?, data: Dataset, epochs: Int, batchSize: Int, options: String,
                      seed: UInt64, reporter: ProgressReporter) throws -> Double {
        let batches = (data.count + batchSize - 1) / batchSize
        var object = (try JSONObject.parseValue(options, context: "options") as? [String: Any]) ?? [:]
        if object["total_steps"] == nil { object["total_steps"] = epochs * batches }
        if object["seed"] == nil { object["seed"] = Int(seed % UInt64(Int.max)) }
        let trainer = try Trainer(student: model, teacher: teacher, options: TrainerOptions.parse(jsonText(object)))
        let start = Date()
        try trainer.fit(data, epochs: epochs, batchSize: batchSize, seed: seed) { progress in
            reporter.update(progress)
            return true
        }
        reporter.finish()
        return Date().timeIntervalSince(start)
    }
}

extension Experiment {
    /// SP-KD weight used by `reproduce` unless given (see README: chosen from a sweep).
    static let defaultKDWeight = TrainerOptions.defaultKDWeight

    /// Finds scripts/NAME by walking up from the current directory.
    static func locateScript(_ name: String) -> String? {
        var directory = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        for _ in 0..<6 {
            let candidate = directory.appendingPathComponent("scripts/\(name)").path
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
            directory.deleteLastPathComponent()
        }
        return nil
    }
}
