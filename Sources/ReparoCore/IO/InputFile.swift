#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A regular file opened read-only, with its size known before any read; closed on deinit.
/// Read at any offset (`bytes(at:count:)`, the CIFAR-10 records), or front to back as a
/// `ByteStream` (an uncompressed IDX file), or the whole of it (an ONNX model and its external
/// data). O_NONBLOCK, so that a FIFO cannot hang the open (the regular-file check refuses it).
public final class InputFile {
    public let path: String
    public let size: Int
    private let descriptor: Int32
    /// Where the next `ByteStream.read(upTo:)` starts.
    private var position = 0

    public init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw ReparoError.io("cannot open \(path): \(errorText())") }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let text = errorText()
            close(fd)
            throw ReparoError.io("cannot stat \(path): \(text)")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw ReparoError.io("\(path) is not a regular file")
        }
        self.path = path
        self.size = Int(info.st_size)
        self.descriptor = fd
    }

    deinit { close(descriptor) }

    /// Exactly `count` bytes from `offset`; the callers have checked that they lie inside
    /// `size`, so a short read means the file changed underneath us.
    func bytes(at offset: Int, count: Int) throws -> [UInt8] {
        guard count >= 0 else { throw ReparoError.format("\(path): read of \(count) bytes") }
        return try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            try read(into: UnsafeMutableRawBufferPointer(buffer), at: offset)
            initialized = count
        }
    }

    /// Fills `target` with the bytes from `offset` on (the same contract as `bytes(at:count:)`).
    public func read(into target: UnsafeMutableRawBufferPointer, at offset: Int) throws {
        let count = target.count
        guard offset >= 0, offset <= size, count <= size - offset else {
            throw ReparoError.format("\(path): read of \(count) bytes at \(offset) is past the end (\(size) bytes)")
        }
        guard let base = target.baseAddress else { return }
        var done = 0
        while done < count {
            let result = pread(descriptor, base + done, count - done, off_t(offset + done))
            if result < 0 {
                if errno == EINTR { continue }
                throw ReparoError.io("cannot read \(path): \(errorText())")
            }
            if result == 0 {
                throw ReparoError.io("\(path): unexpected end of file (it changed while being read?)")
            }
            done += result
        }
    }
}

extension InputFile: ByteStream {
    var length: StreamLength { .exactly(size) }
    var noun: String { "file" }

    func read(upTo count: Int) throws -> [UInt8] {
        let chunk = min(max(count, 0), size - position)
        let bytes = try self.bytes(at: position, count: chunk)
        position += chunk
        return bytes
    }

    func atEnd() throws -> Bool { position == size }
}

/// The text of the current `errno`.
func errorText() -> String {
    guard let text = strerror(errno) else { return "errno \(errno)" }
    return String(cString: text)
}
