import Foundation
import Testing
@testable import ReparoCore

/// Threads belong to their owner: a trainer's `threads` option, a model's inference `threads`
/// (`ExecutionContext`); no constructor changes what another object's calls use.
@Suite("Execution context")
struct ExecutionContextTests {
    /// The distinct threads that ran a parallel loop large enough to be split, and the thread
    /// count each of its ranges saw as current.
    static func loopThreads() -> (threads: Set<pthread_t>, seen: Set<Int>) {
        let lock = NSLock()
        var threads: Set<pthread_t> = [], seen: Set<Int> = []
        func record() {
            let id = pthread_self()
            lock.lock()
            threads.insert(id)
            seen.insert(ExecutionContext.current.threads)
            lock.unlock()
        }
        withoutActuallyEscaping(record) { record in
            Parallel.forEach(64, minimumWork: 1 << 20, context: record) { record, _ in
                record()
                usleep(200)   // long enough that every worker takes a range
            }
        }
        return (threads, seen)
    }

    @Test("a loop runs on at most the current context's threads, and its ranges inherit the context")
    func loopUsesTheCurrentContext() {
        let one = ExecutionContext(threads: 1).run { Self.loopThreads() }
        #expect(one.threads.count == 1)
        #expect(one.seen == [1])
        let two = ExecutionContext(threads: 2).run { Self.loopThreads() }
        #expect(two.threads.count <= 2)
        #expect(two.seen == [2])
        // Nested: the inner context holds inside, the outer one is back after it.
        ExecutionContext(threads: 3).run {
            #expect(ExecutionContext(threads: 1).run { ExecutionContext.current.threads } == 1)
            #expect(ExecutionContext.current.threads == 3)
        }
        #expect(ExecutionContext(threads: 0).threads == Parallel.cores)
        #expect(ExecutionContext(threads: 10_000).threads == ExecutionContext.maximumThreads)
    }

    @Test("creating a trainer changes neither another model's inference threads nor the caller's context")
    func trainerDoesNotChangeOtherThreads() throws {
        let model = try Model(specJSON: TestSupport.smallVGGLike, seed: 1)
        let student = try Model(specJSON: TestSupport.smallVGGLike, seed: 2)
        model.threads = 1
        let before = ExecutionContext.current.threads
        for threads in [2, 1, 3] {
            // The model is the trainer's teacher, undistilled.
            let options = try TrainerOptions(kdWeight: 0, threads: threads)
            let trainer = try Trainer(student: student, teacher: model, options: options)
            #expect(trainer.execution.threads == threads)
            #expect(model.threads == 1)
            #expect(student.threads == 0)
            #expect(ExecutionContext.current.threads == before)
        }
        #expect(ExecutionContext.current.threads == ExecutionContext.standard.threads)
    }

    @Test("a model's threads setting is clamped to 0...maximum and kept by a clone")
    func modelThreadsSetting() throws {
        let model = try Model(specJSON: TestSupport.smallVGGLike, seed: 1)
        #expect(model.threads == 0)
        model.threads = -3
        #expect(model.threads == 0)
        model.threads = 100_000
        #expect(model.threads == ExecutionContext.maximumThreads)
        model.threads = 2
        #expect(try model.clone().threads == 2)
    }

    @Test("two models infer at once at different thread counts with the logits of serial runs, bit for bit")
    func concurrentModelsAtDifferentThreadCounts() throws {
        // Large enough that the convs' loops are split over threads (≥ 64k elements of work).
        let specs = [#"{"preset":"resnet20","width":0.5}"#, #"{"preset":"vgg16","width":0.25}"#]
        let models = try specs.enumerated().map { try Model(specJSON: $1, seed: UInt64($0 + 1)) }
        for model in models { TestSupport.randomizeBatchNorm(model, seed: 5) }
        models[0].threads = 1
        models[1].threads = max(2, Parallel.cores)
        let batches = [1, 8]
        let images = try models.map { model in
            try batches.map { try FloatBuffer(TestSupport.randomImages($0 * model.inputShape.count, seed: UInt64($0))) }
        }
        // Serial references, each model alone, at its own thread count and at the other's.
        var references: [[[UInt32]]] = []
        for (m, model) in models.enumerated() {
            references.append(try batches.indices.map { try model.infer(images[m][$0].array, batch: batches[$0]).map(\.bitPattern) })
            let own = model.threads
            model.threads = models[1 - m].threads
            for b in batches.indices {
                #expect(try model.infer(images[m][b].array, batch: batches[b]).map(\.bitPattern) == references[m][b])
            }
            model.threads = own
        }
        let mismatches = Mismatches()
        let start = DispatchSemaphore(value: 0), done = DispatchGroup()
        for (m, model) in models.enumerated() {
            let inputs = images[m], expected = references[m]
            done.enter()
            Thread {
                start.wait()
                for iteration in 0..<12 {
                    for (b, batch) in batches.enumerated() {
                        let logits = (try? model.infer(inputs[b].array, batch: batch))?.map(\.bitPattern)
                        if logits != expected[b] { mismatches.add("model \(m) batch \(batch) iteration \(iteration)") }
                    }
                }
                done.leave()
            }.start()
        }
        start.signal()
        start.signal()
        done.wait()
        #expect(mismatches.list.isEmpty, "\(mismatches.list)")
    }

    /// What the inferring threads found wrong.
    final class Mismatches: @unchecked Sendable {
        private let lock = NSLock()
        private var entries: [String] = []
        func add(_ entry: String) {
            lock.lock()
            entries.append(entry)
            lock.unlock()
        }
        var list: [String] {
            lock.lock()
            defer { lock.unlock() }
            return entries
        }
    }

    @Test("the chain mode is the workspace owner's choice: each mode's workspace, nothing written on the chain")
    func chainModeComesFromTheWorkspace() throws {
        let model = try Expansion.expand(try Model(specJSON: TestSupport.smallVGGLike, seed: 1), options: ExpandOptions())
        let chain = try #require(model.network.filterMap { $0 as? ExpandedChain }.first)
        let online = try chain.makeCache(batch: 4, training: true, options: WorkspaceOptions(chainMode: .online))
        let naive = try chain.makeCache(batch: 4, training: true, options: WorkspaceOptions(chainMode: .naive))
        #expect(online is ExpandedChain.OnlineCache)
        #expect(naive is Sequential.Cache)
        // Two trainers of one model with opposite modes: each keeps its own (the second's
        // construction used to overwrite the first's mode on the shared chains).
        let first = try TrainerOptions(chainMode: .naive), second = try TrainerOptions(chainMode: .online)
        let naiveTrainer = try Trainer(student: model, teacher: nil, options: first)
        _ = try Trainer(student: model, teacher: nil, options: second)
        let plan = try Trainer.Plan(batch: 4, trainer: naiveTrainer)
        let caches = try #require(plan.studentCache as? Sequential.Cache).caches
        let chainIndex = try #require(model.network.layers.firstIndex { $0 is ExpandedChain })
        #expect(caches[chainIndex] is Sequential.Cache)
    }
}

@Suite("Workspace options")
struct WorkspaceOptionsTests {
    @Test("rectifier fusion reaches a residual block's path and leaves the logits bit for bit unchanged")
    func nestedFusion() throws {
        let input = FeatureShape(channels: 3, height: 10, width: 10)
        let stem = try Conv2D(name: "stem", input: input, outputChannels: 8, kernelSize: 3, stride: 1, padding: 1, bias: true)
        let plane = stem.outputShape
        let inner = try Conv2D(name: "block.conv1", input: plane, outputChannels: 8, kernelSize: 3, stride: 1, padding: 1,
                               bias: true)
        let second = try Conv2D(name: "block.conv2", input: plane, outputChannels: 8, kernelSize: 3, stride: 1, padding: 1,
                                bias: true)
        let main = Sequential(name: "block", input: plane,
                              layers: [inner, ReLU(name: "block.relu1", input: plane), second])
        let block = try BasicBlock(name: "block", input: plane, main: main,
                                   shortcut: Sequential(name: "block.shortcut", input: plane, layers: []))
        let flatten = Flatten(name: "flatten", input: plane)
        let network = Sequential(name: "", input: input, layers: [
            stem, ReLU(name: "relu", input: plane), block, flatten,
            try Linear(name: "fc", input: flatten.outputShape, outputFeatures: 4, bias: true),
        ])
        var generator = SeededGenerator(seed: 3)
        GradientCheck.randomize(network.parameters, generator: &generator)
        for batch in [1, 5] {
            let images = try FloatBuffer(TestSupport.randomImages(batch * input.count, seed: UInt64(batch)))
            func run(fused: Bool) throws -> (logits: [Float], cache: Sequential.Cache) {
                let cache = try #require(try network.makeCache(batch: batch, training: false,
                                                               options: WorkspaceOptions(fusesRectifiers: fused)) as? Sequential.Cache)
                let logits = try FloatBuffer(count: batch * 4)
                network.forward(images.pointer, logits.pointer, cache: cache, training: false)
                return (logits.array, cache)
            }
            let fused = try run(fused: true), plain = try run(fused: false)
            #expect(fused.logits.map(\.bitPattern) == plain.logits.map(\.bitPattern), "batch \(batch)")
            // Inside the block's main path the conv wrote the ReLU's output only: its own buffer
            // stays as allocated (zero) when fused, and holds the conv's output when not.
            let fusedPath = try #require((fused.cache.caches[2] as? BasicBlock.Cache)?.main as? Sequential.Cache)
            let plainPath = try #require((plain.cache.caches[2] as? BasicBlock.Cache)?.main as? Sequential.Cache)
            #expect(fusedPath.outputs[0].array.allSatisfy { $0 == 0 })
            #expect(plainPath.outputs[0].array.contains { $0 < 0 })
            #expect(fusedPath.outputs[1].array == plainPath.outputs[1].array)
        }
    }
}
