import Foundation

/// SGD fine-tuning of a student model, with optional similarity-preserving distillation
/// from a frozen teacher. Updates the student in place. One thread at a time.
///
/// Its compute threads are its own (`execution`, from the `threads` option): each step runs
/// under them, the teacher's forward included; creating a trainer changes no other object's
/// threads, and the chain mode lives in the trainer's workspaces (`WorkspaceOptions`), not on
/// the student, so two trainers of one model or of one teacher do not interfere.
///
/// A step either completes or changes nothing: a non-finite loss or gradient restores the
/// BatchNorm running statistics the forward pass updated and throws `.numeric` before any
/// weight or momentum is touched.
public final class Trainer {
    public let student: Model
    public let teacher: Model?
    public let options: TrainerOptions
    public private(set) var step = 0
    /// Steps a trainer takes at most, and the largest step a checkpoint may carry: far beyond
    /// any real run, exact as a Double (the schedule's arithmetic), and so far below `Int.max`
    /// that `step + 1` cannot overflow.
    public static let maximumStep = 1 << 53
    /// Effective SP-KD weight (the option, or its default when a teacher is given).
    public let kdWeight: Double
    /// The threads and worker pool every step runs on (the `threads` option; 0 = every core).
    public let execution: ExecutionContext
    let pairs: [DistillationPair]

    private let trainable: [Parameter]
    private let momentumBuffers: [FloatBuffer]
    /// The trainable parameters that have gradients, cut into chunks of at most
    /// `Trainer.chunkSize` elements: the finiteness check and the update each run as one
    /// parallel loop over all of them (an expanded ResNet-56 has 170 parameters, 7 M values).
    private let chunks: [(parameter: Int, range: Range<Int>)]
    /// Per chunk: 1 when its gradient is all finite (written by the check, read after it).
    private let chunkFinite: UnsafeMutableBufferPointer<UInt8>
    /// The update zeroes each gradient chunk once it has used it, and a failed step zeroes
    /// them all, so the next step need not (false until the first step).
    private var gradientsAreZero = false
    private static let chunkSize = 1 << 14
    private let runningStatistics: [Parameter]
    private let runningBackup: [FloatBuffer]
    private var generator: SeededGenerator
    private var plans: [Int: Plan] = [:]

    /// A student layer whose output is matched to the teacher's layer of the same name.
    struct DistillationPair {
        var name: String
        var studentIndex: Int
        var teacherIndex: Int
        var studentFeatures: Int
        var teacherFeatures: Int
    }

    /// Per-batch-size workspace, made once and reused by every step of that size.
    final class Plan {
        let batch: Int
        let studentCache: LayerCache
        let teacherCache: LayerCache?
        let augmented: FloatBuffer?
        let logits: FloatBuffer
        let logitGradient: FloatBuffer
        let teacherLogits: FloatBuffer?
        let similarity: SimilarityPreservingLoss?
        let distillationGradients: [FloatBuffer]
        /// Distillation gradient to add at each top-level layer's output (nil: none).
        let injections: [FloatBuffer?]

        init(batch: Int, trainer: Trainer) throws {
            self.batch = batch
            studentCache = try trainer.student.network.makeCache(batch: batch, training: true,
                                                                 options: WorkspaceOptions(chainMode: trainer.options.chainMode))
            let distilling = !trainer.pairs.isEmpty
            teacherCache = distilling ? try trainer.teacher?.network.makeCache(batch: batch, training: false) : nil
            let augmenting = trainer.options.cropPadding > 0 || trainer.options.flip
            augmented = augmenting ? try FloatBuffer(count: batch * trainer.student.inputShape.count) : nil
            logits = try FloatBuffer(count: batch * trainer.student.classes)
            logitGradient = try FloatBuffer(count: batch * trainer.student.classes)
            teacherLogits = distilling ? try FloatBuffer(count: batch * trainer.student.classes) : nil
            similarity = distilling ? try SimilarityPreservingLoss(batch: batch) : nil
            distillationGradients = try trainer.pairs.map { try FloatBuffer(count: batch * $0.studentFeatures) }
            var injections = [FloatBuffer?](repeating: nil, count: trainer.student.network.layers.count)
            for (pair, gradient) in zip(trainer.pairs, distillationGradients) { injections[pair.studentIndex] = gradient }
            self.injections = injections
        }
    }

    public init(student: Model, teacher: Model?, options: TrainerOptions) throws {
        if let teacher {
            guard teacher.inputShape == student.inputShape, teacher.classes == student.classes else {
                throw ReparoError.invalidArgument("teacher takes \(teacher.inputShape) → \(teacher.classes) classes but the student takes \(student.inputShape) → \(student.classes)")
            }
        }
        self.student = student
        self.teacher = teacher
        self.options = options
        kdWeight = options.kdWeight ?? (teacher == nil ? 0 : TrainerOptions.defaultKDWeight)
        if kdWeight > 0 {
            guard let teacher else {
                throw ReparoError.invalidArgument("options.kd_weight: distillation needs a teacher model")
            }
            pairs = try Trainer.distillationPairs(student: student, teacher: teacher, selection: options.kdLayers)
        } else {
            pairs = []
        }
        trainable = student.parameters.filter { $0.kind.isTrainable }
        momentumBuffers = try trainable.map { try FloatBuffer(count: $0.count) }
        var chunks: [(parameter: Int, range: Range<Int>)] = []
        for (index, parameter) in trainable.enumerated() where parameter.gradient != nil {
            for start in stride(from: 0, to: parameter.count, by: Trainer.chunkSize) {
                chunks.append((index, start..<min(parameter.count, start + Trainer.chunkSize)))
            }
        }
        self.chunks = chunks
        chunkFinite = .allocate(capacity: chunks.count)
        chunkFinite.initialize(repeating: 0)
        runningStatistics = student.parameters.filter { !$0.kind.isTrainable }
        runningBackup = try runningStatistics.map { try FloatBuffer(count: $0.count) }
        generator = SeededGenerator(seed: options.seed)
        execution = ExecutionContext(threads: options.threads)   // OpenBLAS itself stays single-threaded
    }

    deinit { chunkFinite.deallocate() }

    /// Shared teacher targets (see `TeacherTargetCache`), or nil: the teacher runs every step.
    public private(set) var teacherTargets: TeacherTargetCache?

    /// Reads and stores the teacher's SP-KD targets in `cache`, which other trainers with the
    /// same teacher may share (the results are the same as without it). Throws when the
    /// cache belongs to another teacher or this trainer does not distill.
    public func useTeacherTargets(_ cache: TeacherTargetCache?) throws {
        if let cache {
            guard let teacher, cache.teacher === teacher else {
                throw ReparoError.invalidArgument("teacher targets: the cache was made for another teacher model")
            }
            guard !pairs.isEmpty else {
                throw ReparoError.invalidArgument("teacher targets: this trainer does not distill (kd_weight 0)")
            }
        }
        teacherTargets = cache
    }

    var trainableParameters: [Parameter] { trainable }
    var momentumState: [FloatBuffer] { momentumBuffers }
    var generatorState: UInt64 { generator.state }
    func restore(step: Int, generator state: UInt64) {
        self.step = step
        generator.state = state
    }

    /// Learning rate of the next step.
    public var learningRate: Double { options.schedule.rate(base: options.learningRate, step: step) }

    /// Names of the student layers distilled from the teacher.
    public var distilledLayers: [String] { pairs.map(\.name) }

    public struct StepResult: Equatable, Sendable {
        public var loss: Double
        public var crossEntropy: Double
        public var distillation: Double
        public var accuracy: Double
        public var learningRate: Double
        public var step: Int
    }

    /// One SGD step on `batch` images `[batch, C, H, W]` with labels in 0..<classes, on this
    /// trainer's threads (`execution`).
    @discardableResult
    public func step(images: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int) throws -> StepResult {
        try execution.run { try takeStep(images: images, labels: labels, batch: batch) }
    }

    private func takeStep(images: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int) throws -> StepResult {
        guard batch >= 1 else { throw ReparoError.invalidArgument("batch must be at least 1, got \(batch)") }
        guard step < Trainer.maximumStep else {
            throw ReparoError.state("the trainer has taken \(step) steps, the most it can count; create a new trainer")
        }
        let classes = student.classes
        for i in 0..<batch where labels[i] < 0 || Int(labels[i]) >= classes {
            throw ReparoError.invalidArgument("labels[\(i)] = \(labels[i]) is outside 0..<\(classes)")
        }
        let plan = try self.plan(batch: batch)
        var input = images
        if let augmented = plan.augmented {
            Augmentation.apply(images, augmented.pointer, batch: batch, shape: student.inputShape,
                               padding: options.cropPadding, flip: options.flip, generator: &generator)
            input = UnsafePointer(augmented.pointer)
        }
        for (statistic, backup) in zip(runningStatistics, runningBackup) {
            backup.pointer.update(from: statistic.value.pointer, count: statistic.count)
        }
        if !gradientsAreZero {
            for parameter in trainable { parameter.gradient?.zero() }
        }
        gradientsAreZero = false

        let network = student.network
        network.forward(input, plan.logits.pointer, cache: plan.studentCache, training: true)
        let (crossEntropy, correct) = CrossEntropy.compute(plan.logits.pointer, labels, batch: batch, classes: classes,
                                                          gradient: plan.logitGradient.pointer)
        var distillation = 0.0
        if let teacher, let teacherCache = plan.teacherCache, let teacherLogits = plan.teacherLogits,
           let similarity = plan.similarity {
            let weight = Float(kdWeight / Double(pairs.count))
            let square = batch * batch
            let key = teacherTargets.map { _ in
                TeacherTargetCache.key(input: input, count: batch * student.inputShape.count, batch: batch,
                                       teacherLayers: pairs.map(\.teacherIndex))
            }
            if let key, let stored = teacherTargets?.targets(key) {
                stored.withUnsafeBufferPointer { grams in
                    for (index, (pair, gradient)) in zip(pairs, plan.distillationGradients).enumerated() {
                        let loss = similarity.compute(
                            student: network.output(pair.studentIndex, cache: plan.studentCache),
                            studentFeatures: pair.studentFeatures, teacherGram: grams.baseAddress.unsafelyUnwrapped + index * square,
                            weight: weight, studentGradient: gradient.pointer)
                        distillation += loss / Double(pairs.count)
                    }
                }
            } else {
                teacher.network.forward(input, teacherLogits.pointer, cache: teacherCache, training: false)
                // Kept for the cache (one allocation per new batch, only with a cache attached).
                let storing = key != nil && teacherTargets?.hasRoom(forFloats: pairs.count * square) == true
                var keep: [Float] = []
                if storing { keep.reserveCapacity(pairs.count * square) }
                for (pair, gradient) in zip(pairs, plan.distillationGradients) {
                    let loss = similarity.compute(
                        student: network.output(pair.studentIndex, cache: plan.studentCache), studentFeatures: pair.studentFeatures,
                        teacher: teacher.network.output(pair.teacherIndex, cache: teacherCache), teacherFeatures: pair.teacherFeatures,
                        weight: weight, studentGradient: gradient.pointer)
                    distillation += loss / Double(pairs.count)
                    if storing {
                        keep.append(contentsOf: UnsafeBufferPointer(start: similarity.lastTeacherGram, count: square))
                    }
                }
                if storing, let key { teacherTargets?.store(key, keep) }
            }
        }
        let injections = plan.injections
        network.backward(input, plan.logits.pointer, plan.logitGradient.pointer, nil, cache: plan.studentCache) { index, gradient in
            if let extra = injections[index] { Vector.add(extra.pointer, into: gradient, count: extra.count) }
        }
        let loss = crossEntropy + kdWeight * distillation
        guard loss.isFinite, gradientsAreFinite() else {
            for (statistic, backup) in zip(runningStatistics, runningBackup) {
                statistic.value.pointer.update(from: backup.pointer, count: statistic.count)
            }
            // Gradients are zero whenever no step runs (another trainer of this model relies
            // on it as much as this one).
            for parameter in trainable { parameter.gradient?.zero() }
            gradientsAreZero = true
            throw ReparoError.numeric("step \(step + 1): the loss or a gradient is not finite (loss \(loss)); the model was left unchanged — lower the learning rate or check the inputs")
        }
        let rate = learningRate
        update(rate: Float(rate))
        step += 1
        return StepResult(loss: loss, crossEntropy: crossEntropy, distillation: distillation,
                          accuracy: Double(correct) / Double(batch), learningRate: rate, step: step)
    }

    private func plan(batch: Int) throws -> Plan {
        if let plan = plans[batch] { return plan }
        if plans.count >= 4 { plans.removeAll() }
        let plan = try Plan(batch: batch, trainer: self)
        plans[batch] = plan
        return plan
    }

    /// SGD with momentum (PyTorch's form: v ← μv + g + λw; w ← w − η·v, or with Nesterov
    /// w ← w − η·(g + λw + μv)), weight decay on conv/linear weights only, optional global
    /// gradient-norm clipping before it.
    private func update(rate: Float) {
        var clip: Float = 1
        if options.clipNorm > 0 {
            var squares: Double = 0
            for parameter in trainable {
                guard let gradient = parameter.gradient?.pointer else { continue }
                squares += Double(Vector.dot(gradient, gradient, count: parameter.count))
            }
            let norm = squares.squareRoot()
            if norm > options.clipNorm { clip = Float(options.clipNorm / (norm + 1e-6)) }
        }
        let momentum = Float(options.momentum)
        let first = step == 0
        let nesterov = options.nesterov
        let weightDecay = Float(options.weightDecay)
        // Element-wise, so the chunks run on the engine's threads (same result); each chunk's
        // gradient is zeroed right after use, for the next step's accumulation.
        let context = (trainer: self, rate: rate, clip: clip, weightDecay: weightDecay, momentum: momentum, first: first,
                       nesterov: nesterov)
        Parallel.forEach(chunks.count, minimumWork: Trainer.chunkSize, context: context) { u, index in
            let (p, range) = u.trainer.chunks[index]
            let parameter = u.trainer.trainable[p]
            guard let gradient = parameter.gradient?.pointer else { return }
            let decay: Float = parameter.kind == .weight ? u.weightDecay : 0
            Trainer.update(parameter.value.pointer, u.trainer.momentumBuffers[p].pointer, gradient, range: range,
                           rate: u.rate, clip: u.clip, decay: decay, momentum: u.momentum, first: u.first,
                           nesterov: u.nesterov)
            (gradient + range.lowerBound).update(repeating: 0, count: range.count)
        }
        for parameter in trainable { parameter.valueChanged() }
        gradientsAreZero = true
    }

    /// Whether every gradient is finite: one parallel pass over the chunks.
    private func gradientsAreFinite() -> Bool {
        Parallel.forEach(chunks.count, minimumWork: Trainer.chunkSize, context: self) { trainer, index in
            let (p, range) = trainer.chunks[index]
            guard let gradient = trainer.trainable[p].gradient?.pointer else {
                trainer.chunkFinite[index] = 1
                return
            }
            trainer.chunkFinite[index] = Vector.allFinite(gradient + range.lowerBound, count: range.count) ? 1 : 0
        }
        return !chunkFinite.contains(0)
    }

    /// The SGD update of elements `range` of one parameter. One branch-free loop per case, so
    /// each vectorizes.
    @inline(__always)
    private static func update(_ w: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>,
                               _ gradient: UnsafeMutablePointer<Float>, range: Range<Int>, rate: Float, clip: Float,
                               decay: Float, momentum: Float, first: Bool, nesterov: Bool) {
        if momentum == 0 {
            for i in range { w[i] -= rate * (gradient[i] * clip + decay * w[i]) }
        } else if first {
            for i in range {
                let g = gradient[i] * clip + decay * w[i]
                v[i] = g
                w[i] -= rate * (nesterov ? g + momentum * g : g)
            }
        } else if nesterov {
            for i in range {
                let g = gradient[i] * clip + decay * w[i]
                let velocity = momentum * v[i] + g
                v[i] = velocity
                w[i] -= rate * (g + momentum * velocity)
            }
        } else {
            for i in range {
                let g = gradient[i] * clip + decay * w[i]
                let velocity = momentum * v[i] + g
                v[i] = velocity
                w[i] -= rate * velocity
            }
        }
    }

    // MARK: Distillation pairs

    /// Top-level layers whose output can be distilled: a ReLU closing conv (→ BN) → ReLU, or a
    /// residual block. Returns (index, tap name, name of the conv or block it closes).
    static func candidates(_ model: Model) -> [(index: Int, tap: String, source: String)] {
        let layers = model.network.layers
        var result: [(Int, String, String)] = []
        for (index, layer) in layers.enumerated() where index < layers.count - 1 {
            if layer.kind == .basicBlock {
                result.append((index, layer.name, layer.name))
            } else if layer.kind == .relu, index >= 1 {
                var source = index - 1
                if layers[source].kind == .batchnorm, source >= 1 { source -= 1 }
                if layers[source].kind == .conv {   // compact or expanded
                    result.append((index, layer.name, layers[source].name))
                }
            }
        }
        return result
    }

    /// Output widths of the convs a tap closes (to tell a pruned layer from an untouched one).
    private static func widths(_ spec: LayerSpec) -> [Int] { spec.weightedLayers.map(\.out) }

    static func distillationPairs(student: Model, teacher: Model, selection: TrainerOptions.KDLayers) throws -> [DistillationPair] {
        let teacherCandidates = Dictionary(candidates(teacher).map { ($0.tap, $0) }, uniquingKeysWith: { a, _ in a })
        let teacherSpecs = Dictionary(teacher.spec.layers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let studentSpecs = Dictionary(student.spec.layers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var pairs: [DistillationPair] = []
        var requested: Set<String> = []
        if case .names(let names) = selection { requested = Set(names) }
        var matched: Set<String> = []
        for candidate in candidates(student) {
            guard let partner = teacherCandidates[candidate.tap] else { continue }
            switch selection {
            case .all: break
            case .pruned:
                guard let a = studentSpecs[candidate.source], let b = teacherSpecs[candidate.source],
                      widths(a) != widths(b) else { continue }
            case .names:
                guard requested.contains(candidate.tap) || requested.contains(candidate.source) else { continue }
                matched.insert(requested.contains(candidate.tap) ? candidate.tap : candidate.source)
            }
            pairs.append(DistillationPair(
                name: candidate.tap, studentIndex: candidate.index, teacherIndex: partner.index,
                studentFeatures: student.network.layers[candidate.index].outputShape.count,
                teacherFeatures: teacher.network.layers[partner.index].outputShape.count))
        }
        if case .names = selection, let missing = requested.subtracting(matched).sorted().first {
            throw ReparoError.invalidArgument("options.kd_layers: \"\(missing)\" is not a conv, its ReLU or a residual block present in both student and teacher")
        }
        guard !pairs.isEmpty else {
            throw ReparoError.invalidArgument("options.kd_layers: no layer pairs to distill (the student has no pruned layers?); use \"all\" or list names")
        }
        return pairs
    }
}
