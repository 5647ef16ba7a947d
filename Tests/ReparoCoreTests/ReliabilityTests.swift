import Foundation
import Testing
@testable import Reparo
@testable import ReparoCore

/// Regressions of issue #5: hostile checkpoints and weights files must cost an error, never a
/// trap or an allocation their size does not justify. The reproducers are the fuzz corpus's
/// `regression-*` files (fuzz/README.md, "Findings").
@Suite("Hostile inputs")
struct ReliabilityTests {
    static let corpus = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fuzz/corpus").path

    /// A scratch file path, removed by the caller's `defer`.
    static func scratch(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("reparo-\(name)-\(getpid())-\(UUID().uuidString).safetensors").path
    }

    /// Runs `body` where any FloatBuffer allocation past `bytes` in all fails with an internal
    /// error that names the amount, so a test sees "allocated too much" as a distinct error.
    static func allocating<T>(atMost bytes: Int, _ body: () throws -> T) throws -> T {
        try FloatBuffer.withAllocationLimit(bytes: bytes, exceeded: { total in
            ReparoError.internalError("test cap: \(total >> 20) MiB allocated, at most \(bytes >> 20) MiB expected")
        }, body)
    }

    static func expectError<R>(_ expected: (String) -> ReparoError, mentioning fragments: [String],
                               sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> R) {
        do {
            _ = try body()
            Issue.record("no error; expected \(expected("…"))", sourceLocation: sourceLocation)
        } catch let error as ReparoError {
            #expect(error.status == expected("").status, "got \(error)", sourceLocation: sourceLocation)
            for fragment in fragments {
                #expect(error.message.contains(fragment), "\"\(error.message)\" should mention \(fragment)",
                        sourceLocation: sourceLocation)
            }
        } catch {
            Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
        }
    }

    static func step(_ trainer: Trainer, _ model: Model) throws -> Trainer.StepResult {
        let images = [Float](repeating: 0.5, count: model.inputShape.count)
        let labels: [Int32] = [0]
        return try images.withUnsafeBufferPointer { i in
            try labels.withUnsafeBufferPointer { l in
                try trainer.step(images: i.baseAddress!, labels: l.baseAddress!, batch: 1)
            }
        }
    }

    // MARK: 1. Checkpoint integers

    @Test("the step-overflow checkpoint is refused naming \"step\", and the trainer still trains")
    func checkpointStepOverflowReproducer() throws {
        let path = Self.corpus + "/checkpoint/regression-trainer-step-overflow.safetensors"
        let (metadata, _) = try SafeTensors.read(path: path)
        #expect(metadata["step"] == String(Int.max))
        let student = try Model(spec: SpecParser.parse(try #require(metadata["spec"])), seed: 1)
        let trainer = try Trainer(student: student, teacher: nil, options: TrainerOptions())
        // Before the fix this loaded, and the step below trapped on `step += 1`.
        Self.expectError(ReparoError.format, mentioning: ["\"step\"", String(Int.max)]) { try trainer.loadState(path: path) }
        #expect(trainer.step == 0)
        #expect(try Self.step(trainer, student).step == 1)
    }

    @Test("every integer of a checkpoint is range-checked; the step counter stops at its maximum")
    func checkpointIntegersAreRangeChecked() throws {
        let student = try Model(specJSON: TestSupport.digitsSpec, seed: 1)
        let trainer = try Trainer(student: student, teacher: nil, options: TrainerOptions())
        _ = try Self.step(trainer, student)
        let path = Self.scratch("checkpoint")
        defer { unlink(path) }
        try trainer.saveState(path: path)
        let (metadata, tensors) = try SafeTensors.read(path: path)
        func rewrite(_ key: String, _ value: String?) throws {
            var changed = metadata
            changed[key] = value
            try SafeTensors.write(path: path, metadata: changed, tensors: tensors)
        }
        for bad in [String(Int.max), String(Trainer.maximumStep + 1), "-1", "1e3", "", "0x10", "99999999999999999999999"] {
            try rewrite("step", bad)
            Self.expectError(ReparoError.format, mentioning: ["\"step\""]) { try trainer.loadState(path: path) }
        }
        try rewrite("step", nil)
        Self.expectError(ReparoError.format, mentioning: ["\"step\" is missing"]) { try trainer.loadState(path: path) }
        for bad in ["-1", "18446744073709551616", "x"] {
            try rewrite("generator", bad)
            Self.expectError(ReparoError.format, mentioning: ["\"generator\""]) { try trainer.loadState(path: path) }
        }
        #expect(trainer.step == 1, "a refused checkpoint changes nothing")

        // The largest step a checkpoint may carry loads; the trainer then refuses to count past
        // it with an error (no trap, nothing changed) instead of overflowing.
        try rewrite("step", String(Trainer.maximumStep))
        try trainer.loadState(path: path)
        #expect(trainer.step == Trainer.maximumStep)
        let before = try student.snapshot().map(\.values.array)
        Self.expectError(ReparoError.state, mentioning: ["steps"]) { try Self.step(trainer, student) }
        #expect(trainer.step == Trainer.maximumStep)
        #expect(try student.snapshot().map(\.values.array) == before)
    }

    @Test("learning-rate schedules stay finite at the largest step")
    func schedulesAtTheLargestStep() {
        let schedules: [LearningRateSchedule] = [.constant, .step(every: 1, gamma: 0.5), .step(every: 1_000_000_000, gamma: 1),
                                                 .cosine(totalSteps: 1), .cosine(totalSteps: 1_000_000_000)]
        for schedule in schedules {
            for step in [0, Trainer.maximumStep - 1, Trainer.maximumStep] {
                let rate = schedule.rate(base: 0.1, step: step)
                #expect(rate.isFinite && rate >= 0 && rate <= 0.1, "\(schedule) at \(step): \(rate)")
            }
        }
    }

    // MARK: 2. Allocation justified by the file

    @Test("a 304-byte file whose spec asks for 3.5 GiB is refused before anything is allocated")
    func loadMemoryAmplificationReproducer() throws {
        let path = Self.corpus + "/load/regression-load-memory-amplification.safetensors"
        // Before the fix the loader built the spec's two 231 M-float convs (with gradients) and
        // only then found no tensors; here any allocation over 1 MiB fails the test.
        Self.expectError(ReparoError.format, mentioning: [path]) {
            try Self.allocating(atMost: 1 << 20) { try Model.load(path: path) }
        }
    }

    @Test("a file's tensors are matched against the spec's plan before the model is built")
    func tensorsMatchedBeforeAllocation() throws {
        // Same spec as the reproducer; the file holds one tensor of each name, all of them tiny.
        let spec = try SpecParser.parse(#"{"input":[4,32,32],"classes":10,"layers":[{"type":"conv","out":60000,"kernel":31,"padding":15},{"type":"conv","out":4,"kernel":31,"padding":15},{"type":"avgpool"},{"type":"flatten"},{"type":"linear","out":10}]}"#)
        Self.expectError(ReparoError.invalidArgument, mentioning: ["parameters"]) {
            try Self.allocating(atMost: 1 << 20) { try Model(spec: spec, seed: 0) }
        }
        let small = try SpecParser.parse(#"{"input":[4,32,32],"classes":10,"layers":[{"type":"conv","out":600,"kernel":31,"padding":15},{"type":"avgpool"},{"type":"flatten"},{"type":"linear","out":10}]}"#)
        let plan = try NetworkBuilder.plan(small)
        let wrong = try plan.tensors.map { NamedTensor(name: $0.name, shape: [1], values: try FloatBuffer(count: 1)) }
        Self.expectError(ReparoError.format, mentioning: ["layers.0.weight", "[600, 4, 31, 31]"]) {
            try Self.allocating(atMost: 1 << 20) { try Model(spec: small, tensors: wrong, source: "file") }
        }
        let missing = try Array(plan.tensors.dropFirst()).map {
            NamedTensor(name: $0.name, shape: $0.shape, values: try FloatBuffer(count: $0.count))
        }
        Self.expectError(ReparoError.format, mentioning: ["layers.0.weight", "missing"]) {
            try Self.allocating(atMost: 1 << 20) { try Model(spec: small, tensors: missing, source: "file") }
        }
    }

    @Test("an expanded conv with narrow widths cannot make a small file allocate a large collapsed kernel")
    func narrowChainIsRefused() throws {
        // Factors of 256 + 9 + 256 floats would carry a collapsed kernel of 256·256·9 floats.
        let text = #"{"input":[256,4,4],"classes":2,"layers":[{"type":"conv","out":256,"kernel":3,"padding":1,"chain":[1,1]},{"type":"avgpool"},{"type":"flatten"},{"type":"linear","out":2}]}"#
        Self.expectError(ReparoError.invalidArgument, mentioning: ["collapsed kernel"]) {
            try Self.allocating(atMost: 1 << 20) { try Model(specJSON: text, seed: 0) }
        }
        // As wide as the layer (rate 1) is what expansion makes, and is accepted.
        _ = try Model(specJSON: text.replacingOccurrences(of: "[1,1]", with: "[256,256]"), seed: 0)
    }

    @Test("the plan names and shapes exactly the tensors the built network holds")
    func planMatchesBuild() throws {
        var models: [(String, Model)] = try TestSupport.equivalenceSpecs.map { ($0.0, try Model(specJSON: $0.1, seed: 1)) }
        let resnet = try Model(specJSON: TestSupport.smallResNet, seed: 2)
        let pruned = try Pruning.prune(resnet, options: PruneOptions())
        let expanded = try Expansion.expand(pruned, options: ExpandOptions(json: #"{"layers":"all"}"#))
        models += [("pruned", pruned), ("expanded", expanded),
                   ("collapsed", try Collapse.collapse(expanded, options: CollapseOptions())),
                   ("chains", try Model(specJSON: #"{"input":[3,6,6],"classes":3,"layers":[{"type":"conv","out":4,"kernel":3,"padding":1,"chain":[8,16]},{"type":"relu"},{"type":"conv","out":5,"kernel":3,"stride":2,"padding":1,"bias":true,"chain":[6,10]},{"type":"flatten"},{"type":"linear","out":3,"chain":[6,9]}]}"#, seed: 3))]
        for (label, model) in models {
            let plan = try NetworkBuilder.plan(model.spec)
            #expect(plan.tensors == model.parameters.map { TensorShape(name: $0.name, shape: $0.shape) }, "\(label)")
            #expect(plan.parameters == model.parameters.reduce(0) { $0 + $1.count }, "\(label)")
        }
    }

    @Test("the inference-workspace reproducer is refused at load, without allocating its workspace")
    func inferWorkspaceReproducer() throws {
        let path = Self.corpus + "/load/regression-infer-workspace-amplification.safetensors"
        // Before the fix this loaded and the first one-image inference took 2.2 GB (two 31×31
        // convs on 540×540: 280 M im2col floats each). Now the cap refuses the allocation
        // that would cross it, so at most the cap (512 MiB) is ever requested. Where the
        // AVX-512 kernels run these same convs without im2col (PaddedWidthConvolution), the
        // workspace is two padded 570×570 planes: the model loads, within the same bound.
        let bound = NetworkBuilder.maximumWorkspacePerSample * 4 + (16 << 20)
        if VectorKernels.available {
            let model = try Self.allocating(atMost: bound) { try Model.load(path: path) }
            let logits = try Self.allocating(atMost: 64 << 20) { try model.infer([Float](repeating: 1, count: 540 * 540), batch: 1) }
            #expect(logits.count == 2)
        } else {
            Self.expectError(ReparoError.format, mentioning: [path, "workspace"]) {
                try Self.allocating(atMost: bound) { try Model.load(path: path) }
            }
        }
    }

    @Test("the workspace cap measures what one image needs: a large input is refused, a smaller one runs")
    func workspaceCap() throws {
        // Padding 14, not 15: not a same conv, so im2col on every machine (see PaddedWidthConvolution).
        func spec(_ side: Int) -> String {
            #"{"input":[1,\#(side),\#(side)],"classes":2,"layers":[{"type":"conv","out":1,"kernel":31,"padding":14},{"type":"avgpool"},{"type":"flatten"},{"type":"linear","out":2}]}"#
        }
        // 961 × 510² = 250 M im2col floats: over the 128 M cap. 2 parameters: no other limit applies.
        Self.expectError(ReparoError.invalidArgument, mentioning: ["workspace", "one image"]) {
            try Self.allocating(atMost: NetworkBuilder.maximumWorkspacePerSample * 4 + (16 << 20)) { try Model(specJSON: spec(512), seed: 0) }
        }
        let model = try Model(specJSON: spec(64), seed: 0)
        let logits = try model.infer([Float](repeating: 1, count: 64 * 64), batch: 1)
        #expect(logits.count == 2 && logits.allSatisfy(\.isFinite))
    }

    @Test("allocation scopes nest, count every buffer, and end with their body")
    func allocationScopes() throws {
        let outer = try FloatBuffer.withAllocationLimit(bytes: 1000 * 4, exceeded: { .outOfMemory("outer \($0)") }) { () -> Int in
            _ = try FloatBuffer(count: 600)
            Self.expectError(ReparoError.outOfMemory, mentioning: ["outer 4400"]) {
                try FloatBuffer.withAllocationLimit(bytes: 1 << 20, exceeded: { .outOfMemory("inner \($0)") }) { try FloatBuffer(count: 500) }
            }
            Self.expectError(ReparoError.outOfMemory, mentioning: ["inner 2004"]) {
                try FloatBuffer.withAllocationLimit(bytes: 2000, exceeded: { .outOfMemory("inner \($0)") }) { try FloatBuffer(count: 501) }
            }
            return 600
        }
        #expect(outer == 600)
        _ = try FloatBuffer(count: 1 << 20)   // no scope any more
    }

    // MARK: 4. Spec equality after a round trip

    @Test("a preset's spec equals itself after a JSON round trip and a save/load (global average pool)")
    func presetSpecRoundTrip() throws {
        let model = try Model(specJSON: #"{"preset":"resnet20","width":0.125,"input":[3,8,8]}"#, seed: 1)
        #expect(try SpecParser.parse(model.spec.jsonText) == model.spec)
        let path = Self.scratch("preset")
        defer { unlink(path) }
        try model.save(path: path)
        #expect(try Model.load(path: path).spec == model.spec)
        #expect(LayerSpec.pool(.maxpool, "pool", kernel: 3).operation == .maxpool(Window(kernel: 3, stride: 3)))
        #expect(try SpecParser.parse(#"{"input":[1,4,4],"classes":1,"layers":[{"type":"avgpool"},{"type":"flatten"},{"type":"linear","out":1}]}"#).layers[0]
                == .pool(.avgpool, "layers.0"))
    }
}
