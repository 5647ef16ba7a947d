import CZlib

/// The data of a gzip file (RFC 1952), inflated by zlib chunk by chunk as it is read: nothing
/// sized by the data is allocated here, and the ISIZE trailer (the length modulo 2^32, which
/// a hostile file can set to anything) is never used. What the data must hold is the reader's
/// business (`ByteStream.read(exactly:declared:)`, `expectEnd(declared:)`); `length` bounds it
/// before the first byte is inflated.
///
/// Concatenated members (`cat a.gz b.gz`) are read as one stream, as RFC 1952 §2.2 defines a
/// gzip file and `gzip -d` reads it. Anything after a member that is not a whole member,
/// trailing zeros included, is a `.format` error (where `gzip -d` only warns), like a
/// truncated member or a corrupt one (bad deflate data, CRC-32 or length check).
final class GzipFile: ByteStream {
    /// Deflate's largest expansion: a 258-byte match coded in 2 bits is 1032:1
    /// (https://zlib.net/zlib_tech.html). The slack is a margin only: a block's header and
    /// first literal add less than the 18 bytes of gzip framing already count for.
    static let maximumExpansion = 1032
    static let expansionSlack = 1024
    /// Compressed bytes handed to zlib per read of the file.
    private static let inputChunk = 1 << 16

    let path: String
    let noun = "decompressed stream"
    private let file: InputFile
    /// Allocated once: zlib keeps a pointer back to its stream, so the struct must not move.
    private let stream: UnsafeMutablePointer<z_stream>
    private let input: UnsafeMutableRawBufferPointer
    /// Bytes of the file handed to zlib so far.
    private var consumed = 0
    /// Members inflated to their end so far.
    private var members = 0
    /// The last member has ended and no input is left.
    private var finished = false

    init(path: String) throws {
        let file = try InputFile(path: path)
        guard file.size > 0 else { throw ReparoError.format("\(path): empty file") }
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())  // zalloc, zfree, opaque: Z_NULL, zlib's defaults
        let status = reparo_inflate_init_gzip(stream)
        guard status == Z_OK else {
            stream.deallocate()
            throw status == Z_MEM_ERROR ? ReparoError.outOfMemory("\(path): zlib could not allocate its state")
                : ReparoError.internalError("inflateInit2 failed with status \(status) (zlib \(String(cString: zlibVersion())))")
        }
        self.path = path
        self.file = file
        self.stream = stream
        self.input = .allocate(byteCount: Self.inputChunk, alignment: 1)
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
        input.deallocate()
    }

    var length: StreamLength {
        let (product, overflow) = file.size.multipliedReportingOverflow(by: Self.maximumExpansion)
        let (bound, tooLarge) = product.addingReportingOverflow(Self.expansionSlack)
        return .atMost(overflow || tooLarge ? Int.max : bound,
                       limit: "the \(file.size)-byte gzip file can hold (deflate expands at most 1032:1)")
    }

    func read(upTo count: Int) throws -> [UInt8] {
        guard count > 0 else { return [] }
        return try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            initialized = try inflate(into: UnsafeMutableRawBufferPointer(buffer))
        }
    }

    func atEnd() throws -> Bool {
        var byte: UInt8 = 0
        return try withUnsafeMutableBytes(of: &byte) { try inflate(into: $0) } == 0
    }

    /// Inflates into `output` until it is full or the last member ends; returns the bytes
    /// written. Each zlib call consumes input or fills output, so the loop ends.
    private func inflate(into output: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let base = output.baseAddress else { return 0 }
        var produced = 0
        while produced < output.count, !finished {
            if stream.pointee.avail_in == 0, consumed < file.size {
                let chunk = UnsafeMutableRawBufferPointer(rebasing: input[..<min(input.count, file.size - consumed)])
                try file.read(into: chunk, at: consumed)
                consumed += chunk.count
                stream.pointee.next_in = chunk.baseAddress?.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_in = uInt(chunk.count)
            }
            let room = min(output.count - produced, Int(UInt32.max))
            stream.pointee.next_out = (base + produced).assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = uInt(room)
            let status = CZlib.inflate(stream, Z_NO_FLUSH)
            produced += room - Int(stream.pointee.avail_out)
            switch status {
            case Z_OK:
                break
            case Z_STREAM_END:
                members += 1
                if stream.pointee.avail_in > 0 || consumed < file.size {
                    inflateReset(stream)  // the next member
                } else {
                    finished = true
                }
            case Z_BUF_ERROR:  // no progress possible: the input ran out inside a member
                throw ReparoError.format("\(path): truncated gzip data (the file ends inside a member)")
            case Z_DATA_ERROR:
                let reason = stream.pointee.msg.map { String(cString: $0) } ?? "invalid data"
                let place = members > 0 ? " in the bytes after member \(members)" : ""
                throw ReparoError.format("\(path): corrupt gzip data\(place) (\(reason))")
            case Z_MEM_ERROR:
                throw ReparoError.outOfMemory("\(path): zlib ran out of memory")
            default:
                throw ReparoError.format("\(path): zlib cannot read this gzip data (status \(status))")
            }
        }
        return produced
    }
}
