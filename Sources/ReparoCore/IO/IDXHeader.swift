/// The header of an IDX file (http://yann.lecun.com/exdb/mnist/): a big-endian magic
/// 0x0000_08_0D (unsigned bytes, D dimensions), then the D dimensions as big-endian uint32s;
/// the payload, the product of the dimensions in bytes, follows.
struct IDXHeader {
    let dims: [Int]
    /// Payload bytes: the product of the dimensions.
    let payloadCount: Int

    /// Reads the header from the front of `stream` and checks it against `magic` and against
    /// what the stream can hold (`stream.length`: a plain file's exact size, a gzip file's
    /// largest expansion), so that nothing the header sizes is allocated for a file that
    /// cannot hold it. Rejects zero dimensions: such a file holds no samples.
    init(from stream: ByteStream, magic: UInt32) throws {
        let path = stream.path
        let rank = Int(magic & 0xFF)
        let start = try stream.read(upTo: 4)
        guard !start.isEmpty else { throw ReparoError.format("\(path): empty \(stream.noun)") }
        guard start.count == 4 else {
            throw ReparoError.format("\(path): a \(stream.noun) of \(start.count) bytes is too short for an IDX header")
        }
        let found = bigEndianUInt32(start, at: 0)
        if found != magic {
            if found >> 8 == magic >> 8 {
                throw ReparoError.format(
                    "\(path): IDX magic 0x\(hex(found)) has \(found & 0xFF) dimensions, expected \(rank) (magic 0x\(hex(magic)))")
            }
            throw ReparoError.format("\(path): bad magic 0x\(hex(found)), expected 0x\(hex(magic)) (IDX, unsigned bytes, \(rank) dimensions)")
        }
        let header = try stream.read(upTo: 4 * rank)
        guard header.count == 4 * rank else {
            throw ReparoError.format(
                "\(path): a \(stream.noun) of \(4 + header.count) bytes is too short for a \(rank)-dimension IDX header")
        }
        let dims = (0..<rank).map { Int(bigEndianUInt32(header, at: 4 * $0)) }
        guard !dims.contains(0) else {
            throw ReparoError.format("\(path): dimensions \(dims) hold no samples")
        }
        var payload = 1
        var overflow = false
        for d in dims where !overflow {
            (payload, overflow) = payload.multipliedReportingOverflow(by: d)
        }
        var total = 0
        if !overflow { (total, overflow) = payload.addingReportingOverflow(4 + 4 * rank) }
        guard !overflow else {
            throw ReparoError.format("\(path): dimensions \(dims) overflow the addressable size")
        }
        switch stream.length {
        case .exactly(let size) where total != size:
            throw ReparoError.format(
                "\(path): dimensions \(dims) need \(total) bytes with the header, but the file has \(size)")
        case .atMost(let limit, let why) where total > limit:
            throw ReparoError.format("\(path): dimensions \(dims) need \(total) bytes with the header, more than \(why)")
        default:
            break
        }
        self.dims = dims
        self.payloadCount = payload
    }

    /// The payload, as `ByteStream.read(exactly:declared:)` names it in messages.
    var declaredPayload: String { "\(payloadCount)-byte payload (dimensions \(dims))" }
}

private func bigEndianUInt32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
    UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16
        | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
}

private func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16, uppercase: true)
    return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}
