#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

import Foundation
import Synchronization

/// Bytes held by all live FloatBuffers of the process.
private let allocatedBytes = Atomic<Int>(0)

/// The innermost `FloatBuffer.withAllocationLimit` scope of the current thread, if any.
private let scopeKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
}()

/// A cap on the bytes FloatBuffers allocated by one thread may total while a scope lasts.
private final class AllocationScope {
    let limit: Int
    let exceeded: (Int) -> ReparoError
    let parent: AllocationScope?
    var used = 0

    init(limit: Int, exceeded: @escaping (Int) -> ReparoError, parent: AllocationScope?) {
        self.limit = limit
        self.exceeded = exceeded
        self.parent = parent
    }

    static var current: AllocationScope? {
        pthread_getspecific(scopeKey).map { Unmanaged<AllocationScope>.fromOpaque($0).takeUnretainedValue() }
    }

    /// Counts `bytes` against this scope and every enclosing one, or throws the first one's error.
    func charge(_ bytes: Int) throws {
        var scope: AllocationScope? = self
        while let current = scope {
            let (total, overflow) = current.used.addingReportingOverflow(bytes)
            guard !overflow, total <= current.limit else { throw current.exceeded(total) }
            scope = current.parent
        }
        scope = self
        while let current = scope {
            current.used += bytes
            scope = current.parent
        }
    }
}

/// An owned, 64-byte aligned, contiguous Float32 buffer: the storage of every parameter,
/// gradient, activation and workspace. Allocation failure is an error, not a trap, and sizes
/// are capped so that a bad spec, file or batch size cannot ask for an absurd amount of
/// memory: one buffer holds at most `maximumCount` floats, and all buffers together at most
/// `memoryBudget` bytes (so the engine reports an error instead of being killed by the OOM
/// killer after overcommitting).
public final class FloatBuffer {
    /// Largest buffer the engine will allocate, in floats (4 GiB).
    public static let maximumCount = 1 << 30

    /// Largest total the engine holds at once: 80% of physical memory, or $REPARO_MEMORY_BUDGET_MB.
    public static let memoryBudget: Int = {
        if let text = ProcessInfo.processInfo.environment["REPARO_MEMORY_BUDGET_MB"], let megabytes = Int(text), megabytes > 0 {
            let (bytes, overflow) = megabytes.multipliedReportingOverflow(by: 1 << 20)
            return overflow ? Int.max : bytes
        }
        return Int(Double(ProcessInfo.processInfo.physicalMemory) * 0.8)
    }()

    /// Bytes currently held by all FloatBuffers.
    public static var allocated: Int { allocatedBytes.load(ordering: .relaxed) }

    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    /// Allocates `count` floats, zero-filled.
    public init(count: Int) throws {
        guard count >= 0, count <= FloatBuffer.maximumCount else {
            throw ReparoError.outOfMemory("buffer of \(count) floats exceeds the limit of \(FloatBuffer.maximumCount)")
        }
        var raw: UnsafeMutableRawPointer? = nil
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        try AllocationScope.current?.charge(bytes)
        let total = allocatedBytes.add(bytes, ordering: .relaxed).newValue
        guard total <= FloatBuffer.memoryBudget else {
            allocatedBytes.subtract(bytes, ordering: .relaxed)
            throw ReparoError.outOfMemory("allocating \(bytes >> 20) MiB would exceed the memory budget of \(FloatBuffer.memoryBudget >> 20) MiB (\(total >> 20) MiB requested in all); use a smaller batch or model")
        }
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else {
            allocatedBytes.subtract(bytes, ordering: .relaxed)
            throw ReparoError.outOfMemory("could not allocate \(bytes) bytes")
        }
        memset(raw, 0, bytes)
        self.count = count
        self.pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    /// Runs `body` with a cap on the bytes that FloatBuffers allocated on this thread during
    /// it may total (freed ones still count): the allocation that would cross `bytes` throws
    /// `exceeded(total requested)` before it is made. Scopes nest (each cap applies). Used to
    /// measure a workspace whose size only the layers know while refusing one too large,
    /// instead of allocating it first.
    public static func withAllocationLimit<T>(bytes: Int, exceeded: @escaping (Int) -> ReparoError,
                                              _ body: () throws -> T) throws -> T {
        let scope = AllocationScope(limit: bytes, exceeded: exceeded, parent: AllocationScope.current)
        pthread_setspecific(scopeKey, Unmanaged.passUnretained(scope).toOpaque())
        defer { pthread_setspecific(scopeKey, scope.parent.map { Unmanaged.passUnretained($0).toOpaque() }) }
        return try withExtendedLifetime(scope) { try body() }
    }

    /// Allocates a buffer holding a copy of `values`.
    public convenience init(_ values: [Float]) throws {
        try self.init(count: values.count)
        values.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { pointer.update(from: base, count: values.count) }
        }
    }

    deinit {
        free(pointer)
        allocatedBytes.subtract(max(count, 1) * MemoryLayout<Float>.stride, ordering: .relaxed)
    }

    public var buffer: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: pointer, count: count)
    }

    /// A new buffer with the same contents.
    public func copy() throws -> FloatBuffer {
        let result = try FloatBuffer(count: count)
        result.pointer.update(from: pointer, count: count)
        return result
    }

    /// Sets every element to zero.
    public func zero() { memset(pointer, 0, count * MemoryLayout<Float>.stride) }

    /// The contents as an Array (tests, serialization; not for hot paths).
    public var array: [Float] { Array(buffer) }
}
