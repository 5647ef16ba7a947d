/// Reads JSON text into a `JSONValue` with `JSONReader`, for text that comes from users and
/// files: RFC 8259 and nothing more (see `JSONReader`), and in addition no leading byte order
/// mark, no two members of one object with the same key, and no text longer than
/// `maximumLength` bytes.
///
/// Keys are compared after decoding escapes, with Swift's `String` equality (canonical
/// equivalence). That is stricter than RFC 8259 §8.3 (code units) on purpose: "\u00e9" and
/// "e\u0301" would be one key in any Swift dictionary built from the result, so accepting both
/// would lose a value silently.
///
/// The tree is built with an explicit stack of open containers instead of recursion, so depth
/// costs no call stack; time and memory are linear in the input.
public enum StrictJSON {
    /// Parses `text`, which must hold exactly one JSON value.
    /// Errors are `.invalidArgument("<context>: malformed JSON at byte N: <what>")`, N counted
    /// from 0 in the UTF-8 text.
    public static func parse(_ text: String, context: String, maximumDepth: Int = 64,
                             maximumLength: Int) throws -> JSONValue {
        var text = text
        return try text.withUTF8 {
            try parse($0, context: context, maximumDepth: maximumDepth, maximumLength: maximumLength)
        }
    }

    /// Parses UTF-8 `bytes`, which must hold exactly one JSON value.
    public static func parse(_ bytes: [UInt8], context: String, maximumDepth: Int = 64,
                             maximumLength: Int) throws -> JSONValue {
        try bytes.withUnsafeBufferPointer {
            try parse($0, context: context, maximumDepth: maximumDepth, maximumLength: maximumLength)
        }
    }

    static func parse(_ bytes: UnsafeBufferPointer<UInt8>, context: String, maximumDepth: Int,
                      maximumLength: Int) throws -> JSONValue {
        var reader = JSONReader(bytes, maximumDepth: maximumDepth)
        do {
            guard bytes.count <= maximumLength else {
                throw reader.error("longer than the limit of \(maximumLength) bytes", at: maximumLength)
            }
            if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF {
                throw reader.error("a byte order mark is not allowed", at: 0)
            }
            let value = try readValue(&reader)
            try reader.finish()
            return value
        } catch let error as JSONSyntaxError {
            throw ReparoError.invalidArgument("\(context): malformed JSON at byte \(error.offset): \(error.problem)")
        }
    }

    /// One value and everything inside it.
    static func readValue(_ reader: inout JSONReader) throws -> JSONValue {
        var stack: [Frame] = []
        readingValues: while true {
            var value: JSONValue
            switch try reader.peek() {
            case .object:
                try reader.begin()
                var frame = Frame(isObject: true)
                guard try frame.readKey(&reader) else {
                    value = .object([])
                    break
                }
                stack.append(frame)
                continue readingValues
            case .array:
                try reader.begin()
                guard try reader.nextElement() else {
                    value = .array([])
                    break
                }
                stack.append(Frame(isObject: false))
                continue readingValues
            case .string: value = .string(try reader.readString())
            case .number: value = try reader.readNumber()
            case .bool, .null: value = try reader.readLiteral()
            }
            // Hand the value to the innermost open container, closing every one that ends here.
            while let last = stack.indices.last {
                if stack[last].isObject {
                    stack[last].members.append((stack[last].key, value))
                    if try stack[last].readKey(&reader) { continue readingValues }
                } else {
                    stack[last].items.append(value)
                    if try reader.nextElement() { continue readingValues }
                }
                let frame = stack.removeLast()
                value = frame.isObject ? .object(frame.members) : .array(frame.items)
            }
            return value
        }
    }
}

/// One open array or object while its members are being read.
private struct Frame {
    let isObject: Bool
    var items: [JSONValue] = []
    var members: [(key: String, value: JSONValue)] = []
    var keys: Set<String> = []
    /// The key whose value is being read (objects only).
    var key = ""

    init(isObject: Bool) { self.isObject = isObject }

    /// Reads the next key, rejecting one the object already has; false at the object's end.
    mutating func readKey(_ reader: inout JSONReader) throws -> Bool {
        guard let next = try reader.nextKey() else { return false }
        guard keys.insert(next).inserted else {
            throw reader.error("duplicate key \(quoted(next))", at: reader.keyOffset)
        }
        key = next
        return true
    }

    /// A key for messages, cut short so that a hostile document cannot make the message huge.
    private func quoted(_ key: String) -> String {
        key.count > 64 ? "\"\(key.prefix(64))…\"" : "\"\(key)\""
    }
}
