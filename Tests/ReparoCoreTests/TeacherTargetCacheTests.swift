import Foundation
import Testing
@testable import ReparoCore

@Suite("Shared teacher targets for SP-KD")
struct TeacherTargetCacheTests {
    /// Trains `student` for `steps` fixed batches (the same for every call) with SP-KD from
    /// `teacher`, optionally through `cache`; returns each step's loss parts.
    static func run(_ student: Model, teacher: Model, cache: TeacherTargetCache?, steps: Int = 6,
                    batch: Int = 8) throws -> [Trainer.StepResult] {
        let trainer = try Trainer(student: student, teacher: teacher,
                                  options: TrainerOptions(json: #"{"lr":0.02,"kd_weight":300}"#))
        try trainer.useTeacherTargets(cache)
        var generator = SeededGenerator(seed: 11)
        var results: [Trainer.StepResult] = []
        for _ in 0..<steps {
            let images = TestSupport.randomImages(batch * student.inputShape.count, seed: generator.next())
            let labels = (0..<batch).map { _ in Int32(generator.nextInt(below: student.classes)) }
            results.append(try TrainingTests.step(trainer, images, labels))
        }
        return results
    }

    @Test("students sharing a cache train bit for bit as without it; the second one never runs the teacher")
    func sharedTargetsAreExact() throws {
        let teacher = try Model(specJSON: TestSupport.smallVGGLike, seed: 3)
        TestSupport.randomizeBatchNorm(teacher, seed: 4)
        let pruned = try Pruning.prune(teacher, options: PruneOptions(ratio: 0.5))
        let expandOptions = try ExpandOptions(rate: 2)
        let students = [try pruned.clone(), try Expansion.expand(pruned.clone(), options: expandOptions)]

        // Reference: each student alone, the teacher run every step.
        var reference: [([Trainer.StepResult], [[Float]])] = []
        for student in students {
            let copy = try student.clone()
            let results = try Self.run(copy, teacher: teacher, cache: nil)
            reference.append((results, try copy.snapshot().map { $0.values.array }))
        }
        // The same two, sharing one cache: the first fills it, the second reads every step.
        let cache = TeacherTargetCache(teacher: teacher)
        for (index, student) in students.enumerated() {
            let copy = try student.clone()
            let results = try Self.run(copy, teacher: teacher, cache: cache)
            #expect(results == reference[index].0)
            #expect(try copy.snapshot().map { $0.values.array } == reference[index].1)
            #expect(cache.hits == index * 6 && cache.misses == 6)
        }
        #expect(results(reference).allSatisfy { $0.distillation > 0 })
        // 6 batches × 3 pairs (the pruned convs' ReLUs) × 8 × 8 floats.
        #expect(cache.storedBytes == 6 * 3 * 64 * 4)
    }

    private func results(_ reference: [([Trainer.StepResult], [[Float]])]) -> [Trainer.StepResult] {
        reference.flatMap(\.0)
    }

    @Test("a full cache stops storing but still gives the same results")
    func capacityIsRespected() throws {
        let teacher = try Model(specJSON: TestSupport.smallVGGLike, seed: 3)
        let student = try Pruning.prune(teacher, options: PruneOptions(ratio: 0.5))
        let expected = try Self.run(try student.clone(), teacher: teacher, cache: nil)
        let cache = TeacherTargetCache(teacher: teacher, capacityBytes: 2 * 3 * 64 * 4)  // two batches
        #expect(try Self.run(try student.clone(), teacher: teacher, cache: cache) == expected)
        #expect(try Self.run(try student.clone(), teacher: teacher, cache: cache) == expected)
        #expect(cache.storedBytes == 2 * 3 * 64 * 4 && cache.hits == 2 && cache.misses == 10)
    }

    @Test("a cache of another teacher, or a trainer that does not distill, is refused")
    func misuseIsAnError() throws {
        let teacher = try Model(specJSON: TestSupport.smallVGGLike, seed: 3)
        let other = try teacher.clone()
        let student = try teacher.clone()
        let trainer = try Trainer(student: student, teacher: teacher, options: TrainerOptions(json: #"{"kd_weight":300,"kd_layers":"all"}"#))
        #expect(throws: ReparoError.self) { try trainer.useTeacherTargets(TeacherTargetCache(teacher: other)) }
        let plain = try Trainer(student: student, teacher: teacher, options: TrainerOptions(json: #"{"kd_weight":0}"#))
        #expect(throws: ReparoError.self) { try plain.useTeacherTargets(TeacherTargetCache(teacher: teacher)) }
        try trainer.useTeacherTargets(nil)
    }
}
