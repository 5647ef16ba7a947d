/// A file's contents read once, front to back: the file itself (`InputFile`) or the data
/// a gzip file holds (`GzipFile`). The IDX reader works on this, so one header check and one
/// conversion loop serve both.
protocol ByteStream: AnyObject {
    /// The file's path, which every error message names.
    var path: String { get }
    /// What the bytes are, for messages: "file" or "decompressed stream".
    var noun: String { get }
    /// What is known of the number of bytes before any is read.
    var length: StreamLength { get }
    /// The next `count` bytes, or fewer when the data ends first.
    func read(upTo count: Int) throws -> [UInt8]
    /// Whether every byte has been read (for gzip, after checking the stream's end).
    func atEnd() throws -> Bool
}

/// A stream's length as known before reading it.
enum StreamLength {
    /// A plain file: exactly its size.
    case exactly(Int)
    /// Compressed data: at most this many bytes; `limit` explains why, for messages.
    case atMost(Int, limit: String)
}

extension ByteStream {
    /// The next `count` bytes, which the header has `declared` (for the message).
    func read(exactly count: Int, declared: String) throws -> [UInt8] {
        let bytes = try read(upTo: count)
        guard bytes.count == count else {
            throw ReparoError.format("\(path): the \(noun) ends inside the \(declared) its header declares")
        }
        return bytes
    }

    /// Throws unless the data ends here: a header that declares less than the file holds lies.
    func expectEnd(declared: String) throws {
        guard try atEnd() else {
            throw ReparoError.format("\(path): the \(noun) holds more than the \(declared) its header declares")
        }
    }
}

/// The file at `path` as a stream: inflated if the name ends in ".gz", else as it is.
func openByteStream(_ path: String) throws -> ByteStream {
    path.hasSuffix(".gz") ? try GzipFile(path: path) : try InputFile(path: path)
}
