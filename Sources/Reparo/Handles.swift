import Foundation
import ReparoCore

/// Every handle given to C is registered here, under an opaque token that is never reused: a
/// token that is not registered (freed, foreign, garbage) is rejected instead of dereferenced.
/// Tokens are not addresses: after `*_free`, a new object the allocator places at the same
/// address still gets a new token, so a stale handle stays stale. Lookups hand back a strong
/// reference taken under the lock, so an object stays alive for the duration of a call.
final class HandleRegistry: @unchecked Sendable {
    static let shared = HandleRegistry()
    private let lock = NSLock()
    private var live: [UInt: AnyObject] = [:]
    /// Tokens are `tag | counter << 4`: odd (never an aligned address) with a fixed low nibble,
    /// counting up from one, so none is NULL and none repeats while the process lives (2^60
    /// handles at one per nanosecond would take 36 years).
    private var issued: UInt = 0
    private static let tag: UInt = 0b1011

    /// The new handle; never nil (a token is never 0), typed as the C out-parameter is.
    func register(_ object: AnyObject) -> OpaquePointer? {
        lock.lock()
        defer { lock.unlock() }
        issued += 1
        let token = Self.tag | issued << 4
        live[token] = object
        return OpaquePointer(bitPattern: token)
    }

    func lookup<T: AnyObject>(_ handle: OpaquePointer?, as type: T.Type, _ name: String) throws -> T {
        guard let handle else { throw ReparoError.invalidArgument("\(name) is NULL") }
        lock.lock()
        defer { lock.unlock() }
        guard let object = live[UInt(bitPattern: handle)] else {
            throw ReparoError.invalidArgument("\(name) is not a live handle (freed, or not created by Reparo)")
        }
        guard let typed = object as? T else {
            throw ReparoError.invalidArgument("\(name) is a handle of another kind (\(Swift.type(of: object)))")
        }
        return typed
    }

    /// Removes a handle; returns the object if it was live and of the given type.
    @discardableResult
    func unregister<T: AnyObject>(_ handle: OpaquePointer?, as type: T.Type) -> T? {
        guard let handle else { return nil }
        lock.lock()
        defer { lock.unlock() }
        let key = UInt(bitPattern: handle)
        guard let object = live[key] as? T else { return nil }
        live[key] = nil
        return object
    }
}

/// What a `reparo_model*` points to. Expand and collapse replace `model` in place, so the
/// handle stays valid for the caller; a model a trainer is using cannot be replaced.
final class ModelHandle {
    private let lock = NSLock()
    private var current: Model
    private var trainers = 0

    init(_ model: Model) { current = model }

    var model: Model {
        lock.lock()
        defer { lock.unlock() }
        return current
    }

    func replace(_ model: Model, by function: String) throws {
        lock.lock()
        defer { lock.unlock() }
        guard trainers == 0 else {
            throw ReparoError.state("the model is the student of \(trainers) live trainer(s); free them before \(function)")
        }
        current = model
    }

    func attachTrainer() { lock.lock(); trainers += 1; lock.unlock() }
    func detachTrainer() { lock.lock(); trainers -= 1; lock.unlock() }
}

final class TrainerHandle {
    let trainer: Trainer
    let student: ModelHandle
    let teacher: ModelHandle?

    init(trainer: Trainer, student: ModelHandle, teacher: ModelHandle?) {
        self.trainer = trainer
        self.student = student
        self.teacher = teacher
        student.attachTrainer()
    }

    deinit { student.detachTrainer() }
}

/// What a `reparo_dataset*` points to: the one copy of a data set the library holds, in
/// buffers whose addresses stay put (reparo_dataset_data lends them to the caller).
final class DatasetHandle {
    let shape: FeatureShape
    let classes: Int
    let count: Int
    let images: FloatBuffer
    let labels: UnsafeMutablePointer<Int32>

    /// Copies a loaded set (whose initializer checked it).
    init(_ dataset: Dataset) throws {
        shape = dataset.shape
        classes = dataset.classes
        count = dataset.count
        images = try FloatBuffer(dataset.images)
        labels = try dataset.labels.withUnsafeBufferPointer { try Self.copy($0) }
    }

    /// Copies `count` samples from buffers whose sizes and values the caller has checked.
    init(shape: FeatureShape, classes: Int, count: Int, images: UnsafeBufferPointer<Float>,
         labels: UnsafeBufferPointer<Int32>) throws {
        self.shape = shape
        self.classes = classes
        self.count = count
        self.images = try FloatBuffer(count: images.count)
        if let base = images.baseAddress { self.images.pointer.update(from: base, count: images.count) }
        self.labels = try Self.copy(labels)
    }

    /// A malloc'd copy (at least one element, so never NULL); allocation failure is an error.
    private static func copy(_ labels: UnsafeBufferPointer<Int32>) throws -> UnsafeMutablePointer<Int32> {
        guard let memory = malloc(max(labels.count, 1) * MemoryLayout<Int32>.stride) else {
            throw ReparoError.outOfMemory("could not allocate \(labels.count) labels")
        }
        let copy = memory.bindMemory(to: Int32.self, capacity: max(labels.count, 1))
        if let base = labels.baseAddress { copy.initialize(from: base, count: labels.count) }
        return copy
    }

    deinit { free(labels) }
}
