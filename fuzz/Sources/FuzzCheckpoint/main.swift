// libFuzzer target: a trainer checkpoint as reparo_trainer_load sees it, followed by the
// training step a caller makes next. Compiled into one module with ReparoCore's sources (see
// fuzz/run.sh).
//
// The student is built from the checkpoint's own "spec" metadata, so that the spec check in
// Trainer.loadState passes and the fuzzer reaches the step, generator and momentum fields.
// loadState reads a path, so the bytes are written to one scratch file per process (the
// same file is reused for every input).

#if canImport(Glibc)
import Glibc
#endif

/// Students above these sizes are not built or trained: in the C API the student is the
/// caller's model, not one the file describes (see FuzzSpec's `parameterLimit`).
private let parameterLimit = 2_000_000
private let stepMultiplyAddLimit = 5_000_000

private var scratchPath = ""

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCheckpoint(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    if scratchPath.isEmpty {
        let directory = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
        scratchPath = "\(directory)/reparo-fuzz-checkpoint-\(getpid()).safetensors"
        atexit { _ = unlink(scratchPath) }
    }
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    guard let (metadata, _) = try? SafeTensors.decode(bytes),
          let specText = metadata["spec"], let spec = try? SpecParser.parse(specText),
          let plan = try? NetworkBuilder.plan(spec), plan.parameters <= parameterLimit,
          let student = try? Model(spec: spec, seed: 1),
          student.multiplyAdds <= stepMultiplyAddLimit else { return 0 }
    guard let options = try? TrainerOptions(threads: 1),
          let trainer = try? Trainer(student: student, teacher: nil, options: options) else { return 0 }

    guard let file = fopen(scratchPath, "wb") else { fatalError("cannot create \(scratchPath)") }
    guard fwrite(data, 1, size, file) == size, fclose(file) == 0 else { fatalError("cannot write \(scratchPath)") }
    do {
        try trainer.loadState(path: scratchPath)
    } catch {
        return 0
    }
    guard let images = try? FloatBuffer(count: student.inputShape.count) else { return 0 }
    var label: Int32 = 0
    _ = try? trainer.step(images: images.pointer, labels: &label, batch: 1)
    return 0
}
