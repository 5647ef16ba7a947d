import ReparoCore

/// The caller's text buffer of `capacity` bytes: NULL only with capacity 0 (a length query).
func checkTextBuffer(_ buffer: UnsafeMutablePointer<CChar>?, capacity: Int) throws {
    if capacity > 0 && buffer == nil { throw ReparoError.invalidArgument("buffer is NULL but capacity is \(capacity)") }
}

/// Copies `text` into the caller's buffer, truncated to `capacity - 1` bytes and always
/// NUL-terminated when capacity > 0, and reports its full length (without the NUL), so a
/// caller can ask the length with capacity 0 and call again.
func copyText(_ text: String, to buffer: UnsafeMutablePointer<CChar>?, capacity: Int, length: UnsafeMutablePointer<Int>?) {
    let bytes = Array(text.utf8)
    if let buffer, capacity > 0 {
        let count = min(bytes.count, capacity - 1)
        bytes.withUnsafeBufferPointer { source in
            if let base = source.baseAddress {
                UnsafeMutableRawPointer(buffer).copyMemory(from: base, byteCount: count)
            }
        }
        buffer[count] = 0
    }
    length?.pointee = bytes.count
}
