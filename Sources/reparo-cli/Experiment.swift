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
        return JSONWriter.text(["preset": .string(spec), "input": .ints(data.shape.array), "classes": .int(data.classes),
                                "width": .double(width)])
    }

    /// Steps of `epochs` over `data` in mini-batches (the last one may be short).
    static func totalSteps(_ data: Dataset, epochs: Int, batchSize: Int) -> Int {
        epochs * ((data.count + batchSize - 1) / batchSize)
    }

    /// The trainer options of an --options JSON object, with "total_steps" (the cosine
    /// schedule's length) and "seed" filled in where the text leaves them out.
    static func trainerOptions(_ text: String, totalSteps: Int, seed: UInt64) throws -> TrainerOptions {
        guard var members = try JSONObject.parseValue(text, context: "options").members else {
            throw ReparoError.invalidArgument("options: expected a JSON object")
        }
        if !members.contains(where: { $0.key == "total_steps" }) { members.append(("total_steps", .int(totalSteps))) }
        if !members.contains(where: { $0.key == "seed" }) { members.append(("seed", .int(Int(seed % UInt64(Int.max))))) }
        return try TrainerOptions(json: JSONObject(.object(members), context: "options"))
    }

    /// Trains `model` for `epochs` with a progress line; the seconds it took.
    @discardableResult
    static func train(_ model: Model, teacher: Model?, data: Dataset, epochs: Int, batchSize: Int, options: TrainerOptions,
                      seed: UInt64, reporter: ProgressReporter, teacherTargets: TeacherTargetCache? = nil) throws -> Double {
        let trainer = try Trainer(student: model, teacher: teacher, options: options)
        if teacherTargets != nil && trainer.kdWeight > 0 { try trainer.useTeacherTargets(teacherTargets) }
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

extension Experiment {
    /// What went wrong when a helper program could not run, in words a user can act on.
    struct ToolError: Error { let message: String }

    /// The Python that draws plots: `$REPARO_PYTHON`, else the repository's `.venv` (made by
    /// scripts/install-deps.sh), else `python3` on the PATH.
    static func python() -> String {
        if let chosen = ProcessInfo.processInfo.environment["REPARO_PYTHON"], !chosen.isEmpty { return chosen }
        if let script = locateScript("plot_reproduction.py") {
            let venv = URL(fileURLWithPath: script).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent(".venv/bin/python").path
            if FileManager.default.isExecutableFile(atPath: venv) { return venv }
        }
        return "python3"
    }

    /// Runs scripts/plot_reproduction.py on a reproduce CSV; the error carries what the
    /// script printed (e.g. matplotlib missing), not just that it failed.
    static func plot(csv: String, png: String, dense: Double, title: String) -> Result<Void, ToolError> {
        guard let script = locateScript("plot_reproduction.py") else {
            return .failure(ToolError(message: "scripts/plot_reproduction.py not found above the working directory"))
        }
        let python = python()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, script, csv, png, String(dense), title]
        let errors = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        do {
            try process.run()
        } catch {
            return .failure(ToolError(message: "cannot run \(python): \(error)"))
        }
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let last = text.split(separator: "\n").last.map(String.init) ?? "exit status \(process.terminationStatus)"
            return .failure(ToolError(message: "\(python) \(script): \(last)"))
        }
        return .success(())
    }
}
