import Foundation
import Testing
@testable import ReparoCore

@Suite("Training")
struct TrainingTests {
    static func step(_ trainer: Trainer, _ images: [Float], _ labels: [Int32]) throws -> Trainer.StepResult {
        try images.withUnsafeBufferPointer { i in
            try labels.withUnsafeBufferPointer { l in
                try trainer.step(images: i.baseAddress!, labels: l.baseAddress!, batch: labels.count)
            }
        }
    }

    @Test("overfitting one small batch drives the loss down")
    func overfitTinyBatch() throws {
        let model = try Model(specJSON: TestSupport.smallVGGLike, seed: 1)
        let trainer = try Trainer(student: model, teacher: nil, options: TrainerOptions(json: #"{"lr":0.05}"#))
        let images = TestSupport.randomImages(6 * model.inputShape.count, seed: 2)
        let labels: [Int32] = [0, 1, 2, 3, 4, 5]
        let first = try Self.step(trainer, images, labels)
        var last = first
        for _ in 0..<60 { last = try Self.step(trainer, images, labels) }
        #expect(last.loss < first.loss * 0.1, "loss \(first.loss) → \(last.loss)")
        #expect(last.accuracy == 1)
        #expect(last.step == 61)
    }

    @Test("a non-finite step returns .numeric and leaves weights, statistics and momentum unchanged")
    func numericFailureChangesNothing() throws {
        let model = try Model(specJSON: TestSupport.smallResNet, seed: 1)
        let trainer = try Trainer(student: model, teacher: nil, options: TrainerOptions(json: #"{"lr":0.05}"#))
        let images = TestSupport.randomImages(4 * model.inputShape.count, seed: 2)
        let labels: [Int32] = [0, 1, 2, 3]
        _ = try Self.step(trainer, images, labels)
        let before = try model.snapshot().map { $0.values.array }
        var poisoned = images
        poisoned[5] = .nan
        #expect(performing: { try Self.step(trainer, poisoned, labels) }, throws: { error in
            if case ReparoError.numeric = error { return true }
            return false
        })
        #expect(try model.snapshot().map { $0.values.array } == before)
        #expect(trainer.step == 1)
        // The next good step equals the one an untouched twin trainer takes.
        let twin = try Model(specJSON: TestSupport.smallResNet, seed: 1)
        let twinTrainer = try Trainer(student: twin, teacher: nil, options: TrainerOptions(json: #"{"lr":0.05}"#))
        _ = try Self.step(twinTrainer, images, labels)
        let a = try Self.step(trainer, images, labels), b = try Self.step(twinTrainer, images, labels)
        #expect(a == b)
        #expect(try model.snapshot().map { $0.values.array } == twin.snapshot().map { $0.values.array })
    }

    @Test("training is deterministic for a seed and thread count")
    func deterministic() throws {
        func run() throws -> [[Float]] {
            let model = try Model(specJSON: TestSupport.smallVGGLike, seed: 9)
            try TestSupport.train(model, options: #"{"lr":0.05,"augment":{"crop_padding":2,"flip":true},"seed":4,"threads":2}"#, steps: 4)
            return try model.snapshot().map { $0.values.array }
        }
        #expect(try run() == run())
    }

    @Test("SGD matches a hand-computed update (momentum, Nesterov, weight decay)")
    func sgdUpdate() throws {
        // One linear layer 2→2 without bias: loss gradient is known in closed form.
        let spec = #"{"input":[2,1,1],"classes":2,"layers":[{"type":"flatten"},{"type":"linear","out":2,"bias":false}]}"#
        for nesterov in [false, true] {
            let model = try Model(specJSON: spec, seed: 0)
            let weight = try #require(TestSupport.parameter(model, "layers.1.weight"))
            _ = weight.value.buffer.update(from: [0.5, -0.25, 0.125, 0.75])
            let trainer = try Trainer(student: model, teacher: nil, options: TrainerOptions(json: 
                #"{"lr":0.1,"momentum":0.9,"weight_decay":0.01,"nesterov":\#(nesterov)}"#))
            let x: [Float] = [1, 2]
            var w: [Double] = [0.5, -0.25, 0.125, 0.75]
            var v = [Double](repeating: 0, count: 4)
            for step in 0..<3 {
                _ = try Self.step(trainer, x, [1])
                // Closed form: z = W·x, p = softmax(z), dz = p − e₁, dW = dz·xᵀ.
                let z = [w[0] * 1 + w[1] * 2, w[2] * 1 + w[3] * 2]
                let m = max(z[0], z[1])
                let e = z.map { Foundation.exp($0 - m) }
                let p = e.map { $0 / (e[0] + e[1]) }
                let dz = [p[0], p[1] - 1]
                for i in 0..<4 {
                    let g = dz[i / 2] * Double(x[i % 2]) + 0.01 * w[i]
                    v[i] = step == 0 ? g : 0.9 * v[i] + g
                    w[i] -= 0.1 * (nesterov ? g + 0.9 * v[i] : v[i])
                }
            }
            for i in 0..<4 { #expect(abs(Double(weight.value.pointer[i]) - w[i]) < 1e-6, "nesterov \(nesterov) w[\(i)]") }
        }
    }

    @Test("learning-rate schedules")
    func schedules() {
        #expect(LearningRateSchedule.constant.rate(base: 0.1, step: 99) == 0.1)
        #expect(abs(LearningRateSchedule.step(every: 10, gamma: 0.5).rate(base: 0.1, step: 25) - 0.025) < 1e-12)
        let cosine = LearningRateSchedule.cosine(totalSteps: 100)
        #expect(cosine.rate(base: 0.1, step: 0) == 0.1)
        #expect(abs(cosine.rate(base: 0.1, step: 50) - 0.05) < 1e-12)
        #expect(cosine.rate(base: 0.1, step: 100) < 1e-12)
    }

    @Test("trainer options are parsed strictly", arguments: [
        #"{"lr":-1}"#, #"{"learning_rate":0.1}"#, #"{"schedule":"linear"}"#, #"{"schedule":"cosine"}"#,
        #"{"momentum":1.5}"#, #"{"augment":{"crop":2}}"#, #"{"kd_layers":3}"#, #"{"nesterov":"yes"}"#, #"{"lr":"0.1"}"#,
    ])
    func badOptions(text: String) {
        #expect(throws: ReparoError.self) { try TrainerOptions(json: text) }
    }

    @Test("SP-KD needs a teacher and pairs pruned layers by name")
    func distillationPairs() throws {
        let dense = try Model(specJSON: TestSupport.smallVGGLike, seed: 1)
        let pruned = try Pruning.prune(dense, options: PruneOptions())
        let options = try TrainerOptions(json: #"{"kd_weight":10}"#)
        #expect(throws: ReparoError.self) { try Trainer(student: pruned, teacher: nil, options: options) }
        let trainer = try Trainer(student: pruned, teacher: dense, options: options)
        #expect(trainer.kdWeight == 10)
        #expect(try Trainer(student: pruned, teacher: dense, options: TrainerOptions()).kdWeight == TrainerOptions.defaultKDWeight)
        #expect(try Trainer(student: pruned, teacher: nil, options: TrainerOptions()).kdWeight == 0)
        #expect(try Trainer(student: pruned, teacher: dense, options: TrainerOptions(json: #"{"kd_weight":0}"#)).distilledLayers.isEmpty)
        #expect(trainer.distilledLayers == ["layers.2", "layers.5", "layers.9"])
        let expanded = try Expansion.expand(pruned, options: ExpandOptions())
        #expect(try Trainer(student: expanded, teacher: dense, options: options).distilledLayers.count == 3)
        let resnet = try Model(specJSON: TestSupport.smallResNet, seed: 1)
        let prunedResNet = try Pruning.prune(resnet, options: PruneOptions())
        #expect(try Trainer(student: prunedResNet, teacher: resnet, options: options).distilledLayers == ["layers.3", "layers.4", "layers.5"])
        #expect(throws: ReparoError.self) { try Trainer(student: dense, teacher: dense, options: options) }
        let all = try TrainerOptions(json: #"{"kd_weight":10,"kd_layers":"all"}"#)
        #expect(try Trainer(student: dense, teacher: dense, options: all).distilledLayers.count == 3)
        let named = try TrainerOptions(json: #"{"kd_weight":10,"kd_layers":["layers.3"]}"#)
        #expect(try Trainer(student: pruned, teacher: dense, options: named).distilledLayers == ["layers.5"])
        let images = TestSupport.randomImages(4 * dense.inputShape.count, seed: 3)
        let result = try Self.step(try Trainer(student: pruned, teacher: dense, options: options), images, [0, 1, 2, 3])
        #expect(result.distillation > 0)
        #expect(abs(result.loss - (result.crossEntropy + 10 * result.distillation)) < 1e-9)
    }

    @Test("end to end: a small CNN reaches ≥ 95% test accuracy on the bundled digits")
    func digitsEndToEnd() throws {
        let train = try TestSupport.bundledDigits("train"), test = try TestSupport.bundledDigits("test")
        let model = try Model(specJSON: TestSupport.digitsSpec, seed: 0)
        let epochs = 12, batch = 64
        let steps = epochs * ((train.count + batch - 1) / batch)
        let trainer = try Trainer(student: model, teacher: nil,
                                  options: TrainerOptions(json: #"{"lr":0.05,"schedule":"cosine","total_steps":\#(steps)}"#))
        try trainer.fit(train, epochs: epochs, batchSize: batch, seed: 0)
        let accuracy = try model.evaluate(test).accuracy
        #expect(accuracy >= 0.95, "test accuracy \(accuracy)")
    }
}

@Suite("Checkpoints")
struct CheckpointTests {
    @Test("save student + trainer state, resume in a new trainer: same weights as an uninterrupted run")
    func resumeIsExact() throws {
        let options = #"{"lr":0.05,"momentum":0.9,"nesterov":true,"schedule":"cosine","total_steps":8,"augment":{"crop_padding":1,"flip":true},"seed":7}"#
        let dense = try Model(specJSON: TestSupport.smallResNet, seed: 2)
        let start = try Expansion.expand(try Pruning.prune(dense, options: PruneOptions()), options: ExpandOptions())
        var batches: [([Float], [Int32])] = []
        var generator = SeededGenerator(seed: 11)
        for _ in 0..<8 {
            batches.append((TestSupport.randomImages(4 * dense.inputShape.count, seed: generator.next()),
                            (0..<4).map { _ in Int32(generator.nextInt(below: 5)) }))
        }
        let uninterrupted = try start.clone()
        let trainer = try Trainer(student: uninterrupted, teacher: dense, options: TrainerOptions(json: options))
        for (images, labels) in batches { _ = try TrainingTests.step(trainer, images, labels) }

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("reparo-checkpoint-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try start.clone()
        let firstTrainer = try Trainer(student: first, teacher: dense, options: TrainerOptions(json: options))
        for (images, labels) in batches.prefix(3) { _ = try TrainingTests.step(firstTrainer, images, labels) }
        try first.save(path: directory + "/student.safetensors")
        try firstTrainer.saveState(path: directory + "/trainer.safetensors")

        let resumed = try Model.load(path: directory + "/student.safetensors")
        let resumedTrainer = try Trainer(student: resumed, teacher: dense, options: TrainerOptions(json: options))
        try resumedTrainer.loadState(path: directory + "/trainer.safetensors")
        #expect(resumedTrainer.step == 3)
        for (images, labels) in batches.dropFirst(3) { _ = try TrainingTests.step(resumedTrainer, images, labels) }
        #expect(try resumed.snapshot().map { $0.values.array } == uninterrupted.snapshot().map { $0.values.array })

        // A checkpoint of another student is refused, and the trainer is unchanged.
        let other = try Trainer(student: try Model(specJSON: TestSupport.smallVGGLike, seed: 1), teacher: nil, options: TrainerOptions())
        #expect(throws: ReparoError.self) { try other.loadState(path: directory + "/trainer.safetensors") }
        #expect(other.step == 0)
        #expect(throws: ReparoError.self) { try other.loadState(path: directory + "/student.safetensors") }
    }
}
