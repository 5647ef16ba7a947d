import Foundation
import Synchronization

/// A network and its resolved spec. The structure is immutable; weights change only through
/// a `Trainer`. Method steps (prune, expand, collapse) return new models. Inference is
/// thread-safe: each call borrows its own workspace from a small pool, and runs on the model's
/// own inference threads (`threads`).
public final class Model {
    public let spec: ModelSpec
    public let network: Sequential
    /// The `threads` setting (0 = every core).
    private let inferenceThreads = Atomic<Int>(0)
    private let poolLock = NSLock()
    /// Inference workspaces not in use (each knows its batch size), at most `maximumIdleCaches`.
    /// A flat array, searched linearly: borrowing and returning one then allocates nothing
    /// (a Dictionary's in-place mutation of a value allocated its accessor's frame per call).
    private var idleCaches: [LayerCache] = []
    private static let maximumIdleCaches = 8

    /// A model with freshly initialized weights.
    public init(spec: ModelSpec, seed: UInt64) throws {
        self.spec = spec
        self.network = try NetworkBuilder.build(spec)
        NetworkBuilder.initialize(network, seed: seed)
        try reserveWorkspace()
    }

    /// A model whose tensors are given by name (every tensor of the spec, nothing more).
    ///
    /// The tensors are matched against the spec's plan before anything is allocated, so the
    /// model costs memory in proportion to the tensors given (their values, the gradients of
    /// the trainable ones, and hidden kernels no larger than the tensors — `NetworkBuilder.plan`),
    /// plus a one-image workspace under its own cap: a small file cannot make the loader
    /// allocate gigabytes for tensors it does not hold.
    public init(spec: ModelSpec, tensors: [NamedTensor], source: String = "tensors") throws {
        let plan = try NetworkBuilder.plan(spec)
        let ordered = try NetworkBuilder.match(tensors, to: plan, source: source)
        self.spec = spec
        self.network = try NetworkBuilder.build(spec)
        try NetworkBuilder.assign(ordered, to: network)
        try reserveWorkspace()
    }

    /// Parses a JSON spec (preset or generic) and initializes it.
    public convenience init(specJSON: String, seed: UInt64) throws {
        try self.init(spec: SpecParser.parse(specJSON), seed: seed)
    }

    public var inputShape: FeatureShape { spec.input }
    public var classes: Int { spec.classes }
    public var state: ModelState { spec.state }
    public var parameters: [Parameter] { network.parameters }
    /// Trainable scalars.
    public var parameterCount: Int { network.trainableCount }
    /// Forward multiply-adds for one image.
    public var multiplyAdds: Int { network.multiplyAdds }

    /// The model's tensors, sharing storage with the model (read them, do not keep them
    /// across training steps if a snapshot is meant: use `snapshot()`).
    public var namedTensors: [NamedTensor] {
        parameters.map { NamedTensor(name: $0.name, shape: $0.shape, values: $0.value) }
    }

    /// Deep copies of every tensor.
    public func snapshot() throws -> [NamedTensor] {
        try parameters.map { NamedTensor(name: $0.name, shape: $0.shape, values: try $0.value.copy()) }
    }

    /// A deep copy, with this model's inference `threads`.
    public func clone() throws -> Model {
        let copy = try Model(spec: spec, tensors: snapshot())
        copy.threads = threads
        return copy
    }

    // MARK: Inference

    /// Compute threads of this model's inference (`infer`, `evaluate`): 0 (the default) = every
    /// core the process may use (`Parallel.cores`), else at most `ExecutionContext.maximumThreads`.
    /// Set it from any thread at any time (atomic): a call already running keeps the count it
    /// started with. Only this model's inference reads it; a trainer has its own
    /// (`TrainerOptions.threads`), and results never depend on it.
    public var threads: Int {
        get { inferenceThreads.load(ordering: .relaxed) }
        set { inferenceThreads.store(max(0, min(newValue, ExecutionContext.maximumThreads)), ordering: .relaxed) }
    }

    /// Eval-mode logits `[batch, classes]` for images `[batch, C, H, W]`.
    public func infer(_ images: UnsafePointer<Float>, batch: Int, logits: UnsafeMutablePointer<Float>) throws {
        guard batch >= 1 else { throw ReparoError.invalidArgument("batch must be at least 1, got \(batch)") }
        let cache = try borrowCache(batch: batch)
        ExecutionContext(threads: threads).run {
            network.forward(images, logits, cache: cache, training: false)
        }
        returnCache(cache)
    }

    /// Convenience for tests and tools: logits for an array of images.
    public func infer(_ images: [Float], batch: Int) throws -> [Float] {
        guard images.count == batch * inputShape.count else {
            throw ReparoError.invalidArgument("expected \(batch * inputShape.count) image values, got \(images.count)")
        }
        var logits = [Float](repeating: 0, count: batch * classes)
        try images.withUnsafeBufferPointer { source in
            try logits.withUnsafeMutableBufferPointer { target in
                guard let input = source.baseAddress, let output = target.baseAddress else { return }
                try infer(input, batch: batch, logits: output)
            }
        }
        return logits
    }

    /// Makes the workspace of a one-image inference under the cap
    /// `NetworkBuilder.maximumWorkspacePerSample` and keeps it for the first such inference.
    /// Its size is measured as the caches allocate (activations, im2col columns: whatever the
    /// layers hold), and the allocation that would cross the cap is refused before it is made,
    /// so a small spec or file that asks for a huge workspace is an error here, not gigabytes
    /// allocated at the first `infer`. Larger batches scale from a size known to be sane and
    /// are bounded by the process budget (`FloatBuffer.memoryBudget`), like every buffer.
    private func reserveWorkspace() throws {
        let limit = NetworkBuilder.maximumWorkspacePerSample
        let cache = try FloatBuffer.withAllocationLimit(bytes: limit * MemoryLayout<Float>.stride, exceeded: { requested in
            ReparoError.invalidArgument("spec: the inference workspace of one image needs more than \(limit) floats (\(requested >> 20) MiB requested so far, limit \(limit >> 18) MiB); use smaller inputs, kernels or channels")
        }) {
            try makeInferenceCache(batch: 1)
        }
        idleCaches = [cache]
        idleCaches.reserveCapacity(Self.maximumIdleCaches + 1)
    }

    private func borrowCache(batch: Int) throws -> LayerCache {
        poolLock.lock()
        if let index = idleCaches.lastIndex(where: { $0.batch == batch }) {
            let cache = idleCaches.remove(at: index)
            poolLock.unlock()
            return cache
        }
        poolLock.unlock()
        return try makeInferenceCache(batch: batch)
    }

    /// An eval-mode workspace for `infer`, which reads only the logits: each conv may apply
    /// the ReLU that follows it (`WorkspaceOptions.fusesRectifiers`).
    private func makeInferenceCache(batch: Int) throws -> LayerCache {
        try network.makeCache(batch: batch, training: false, options: WorkspaceOptions(fusesRectifiers: true))
    }

    private func returnCache(_ cache: LayerCache) {
        poolLock.lock()
        defer { poolLock.unlock() }
        if idleCaches.count >= Self.maximumIdleCaches { idleCaches.removeAll(keepingCapacity: true) }
        idleCaches.append(cache)
    }

    /// Accuracy and mean cross-entropy over a labelled set, in chunks of `chunk`.
    public func evaluate(images: UnsafePointer<Float>, labels: UnsafePointer<Int32>, count: Int,
                         chunk: Int = 256) throws -> (accuracy: Double, loss: Double) {
        guard count >= 1 else { throw ReparoError.invalidArgument("count must be at least 1") }
        for i in 0..<count where labels[i] < 0 || Int(labels[i]) >= classes {
            throw ReparoError.invalidArgument("labels[\(i)] = \(labels[i]) is outside 0..<\(classes)")
        }
        let logits = try FloatBuffer(count: min(chunk, count) * classes)
        var correct = 0
        var loss = 0.0
        var start = 0
        while start < count {
            let batch = min(chunk, count - start)
            try infer(images + start * inputShape.count, batch: batch, logits: logits.pointer)
            let result = CrossEntropy.evaluate(logits.pointer, labels + start, batch: batch, classes: classes)
            correct += result.correct
            loss += result.loss * Double(batch)
            start += batch
        }
        return (Double(correct) / Double(count), loss / Double(count))
    }

    public func evaluate(_ dataset: Dataset) throws -> (accuracy: Double, loss: Double) {
        guard dataset.shape == inputShape else {
            throw ReparoError.invalidArgument("dataset images are \(dataset.shape) but the model takes \(inputShape)")
        }
        return try dataset.images.withUnsafeBufferPointer { images in
            try dataset.labels.withUnsafeBufferPointer { labels in
                guard let imageBase = images.baseAddress, let labelBase = labels.baseAddress else {
                    throw ReparoError.invalidArgument("empty dataset")
                }
                return try evaluate(images: imageBase, labels: labelBase, count: dataset.count)
            }
        }
    }

    // MARK: Files

    static let formatName = "reparo"

    /// Saves as safetensors with the resolved spec and state in `__metadata__` (atomic).
    public func save(path: String) throws {
        let metadata = ["format": Self.formatName, "reparo_version": Reparo.version, "spec": spec.jsonText]
        try SafeTensors.write(path: path, metadata: metadata, tensors: namedTensors)
    }

    /// Loads a file written by `save`; every tensor is checked against the saved spec.
    public static func load(path: String) throws -> Model {
        let (metadata, tensors) = try SafeTensors.read(path: path)
        guard let specText = metadata["spec"] else {
            throw ReparoError.format("\(path): no \"spec\" in the safetensors metadata; not a Reparo model file")
        }
        let spec: ModelSpec
        do {
            spec = try SpecParser.parse(specText)
        } catch let error as ReparoError {
            throw ReparoError.format("\(path): bad spec in metadata: \(error.message)")
        }
        do {
            return try Model(spec: spec, tensors: tensors, source: path)
        } catch ReparoError.invalidArgument(let message) {
            throw ReparoError.format("\(path): bad spec in metadata: \(message)")
        }
    }
}
