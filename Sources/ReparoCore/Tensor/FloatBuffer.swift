#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An owned, 64-byte aligned, contiguous Float32 buffer: the storage of every parameter,
/// gradient, activation and workspace. Allocation failure is an error, not a trap, and sizes
/// are capped so that a bad spec or file cannot ask for an absurd amount of memory.
public final class FloatBuffer {
    /// Largest buffer the engine will allocate, in floats (4 GiB).
    public static let maximumCount = 1 << 30

    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    /// Allocates `count` floats, zero-filled.
    public init(count: Int) throws {
        guard count >= 0, count <= FloatBuffer.maximumCount else {
            throw ReparoError.outOfMemory("buffer of \(count) floats exceeds the limit of \(FloatBuffer.maximumCount)")
        }
        var raw: UnsafeMutableRawPointer? = nil
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else {
            throw ReparoError.outOfMemory("could not allocate \(bytes) bytes")
        }
        memset(raw, 0, bytes)
        self.count = count
        self.pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    /// Allocates a buffer holding a copy of `values`.
    public convenience init(_ values: [Float]) throws {
        try self.init(count: values.count)
        values.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { pointer.update(from: base, count: values.count) }
        }
    }

    deinit { free(pointer) }

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
