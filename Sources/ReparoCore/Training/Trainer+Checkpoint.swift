/// Saving and restoring a trainer's own state — momentum buffers, step count (hence the
/// learning-rate schedule position) and augmentation generator — so that training resumed
/// from a checkpoint (this file plus the student saved with `Model.save`) continues exactly
/// as an uninterrupted run would.
extension Trainer {
    static let checkpointFormat = "reparo-trainer"

    public func saveState(path: String) throws {
        let tensors = zip(trainableParameters, momentumState).map {
            NamedTensor(name: "momentum." + $0.name, shape: $0.shape, values: $1)
        }
        let metadata = [
            "format": Self.checkpointFormat, "reparo_version": Reparo.version, "step": String(step),
            "generator": String(generatorState), "spec": student.spec.jsonText,
        ]
        try SafeTensors.write(path: path, metadata: metadata, tensors: tensors)
    }

    /// Restores a state saved by `saveState` from a trainer of the same student spec. Every
    /// field is validated before anything changes.
    public func loadState(path: String) throws {
        let (metadata, tensors) = try SafeTensors.read(path: path)
        guard metadata["format"] == Self.checkpointFormat else {
            throw ReparoError.format("\(path): not a Reparo trainer checkpoint")
        }
        guard metadata["spec"] == student.spec.jsonText else {
            throw ReparoError.invalidArgument("\(path): the checkpoint was saved for a student of another spec or state")
        }
        // Every number is range-checked here: a step near Int.max would make the next
        // `step += 1` trap in the host process.
        guard let stepText = metadata["step"], let savedStep = Int(stepText),
              (0...Trainer.maximumStep).contains(savedStep) else {
            throw ReparoError.format("\(path): \"step\" is \(quoted(metadata["step"])), expected an integer in 0...\(Trainer.maximumStep)")
        }
        guard let generatorText = metadata["generator"], let savedGenerator = UInt64(generatorText) else {
            throw ReparoError.format("\(path): \"generator\" is \(quoted(metadata["generator"])), expected an integer in 0...\(UInt64.max)")
        }
        let byName = Dictionary(tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        guard byName.count == trainableParameters.count else {
            throw ReparoError.format("\(path): \(byName.count) momentum tensors, the student has \(trainableParameters.count) trainable tensors")
        }
        var sources: [FloatBuffer] = []
        for parameter in trainableParameters {
            guard let tensor = byName["momentum." + parameter.name], tensor.shape == parameter.shape else {
                throw ReparoError.format("\(path): momentum for \(parameter.name) missing or of the wrong shape")
            }
            sources.append(tensor.values)
        }
        for (target, source) in zip(momentumState, sources) { target.pointer.update(from: source.pointer, count: target.count) }
        restore(step: savedStep, generator: savedGenerator)
    }

    /// A metadata value for an error message: quoted and cut to 40 characters, or "missing".
    private func quoted(_ value: String?) -> String {
        guard let value else { return "missing" }
        return value.count > 40 ? "\"\(value.prefix(40))…\"" : "\"\(value)\""
    }
}
