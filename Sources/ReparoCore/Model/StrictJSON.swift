/// A JSON value (RFC 8259) as `StrictJSON` reads it. Objects keep their members in document
/// order; `StrictJSON` guarantees that no two of them share a key.
public enum JSONValue: Sendable {
    case null
    case bool(Bool)
    /// `integer` is the exact value when the literal has neither fraction nor exponent and fits
    /// an Int; so `1.0`, `1e2` and 9223372036854775808 are numbers but not integers.
    case number(Double, integer: Int?)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])
}

extension JSONValue: Equatable {
    /// Structural equality; objects compare member by member, in order.
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.number(a, integerA), .number(b, integerB)): return a == b && integerA == integerB
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }
}

/// A strict JSON reader: RFC 8259 and nothing more, for text that comes from users and files.
///
/// Rejected: trailing commas, comments, a leading byte order mark, NaN/Infinity, leading zeros,
/// numbers that overflow a Double, raw control characters in strings, unknown escapes, unpaired
/// surrogate escapes, invalid UTF-8 (overlong forms, encoded surrogates, > U+10FFFF), two members
/// of one object with the same key, anything after the value, nesting deeper than
/// `maximumDepth`, and text longer than `maximumLength` bytes.
///
/// Keys are compared after decoding escapes, with Swift's `String` equality (canonical
/// equivalence). That is stricter than RFC 8259 §8.3 (code units) on purpose: "\u00e9" and
/// "e\u0301" would be one key in any Swift dictionary built from the result, so accepting both
/// would lose a value silently.
///
/// The reader keeps its own stack of open containers instead of recursing, so depth costs no
/// call stack; time and memory are linear in the input.
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
        var reader = Reader(bytes: bytes, context: context, maximumDepth: maximumDepth)
        guard bytes.count <= maximumLength else {
            throw reader.error("longer than the limit of \(maximumLength) bytes", at: maximumLength)
        }
        return try reader.readDocument()
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
}

private struct Reader {
    let bytes: UnsafeBufferPointer<UInt8>
    let context: String
    let maximumDepth: Int
    var position = 0

    init(bytes: UnsafeBufferPointer<UInt8>, context: String, maximumDepth: Int) {
        self.bytes = bytes
        self.context = context
        self.maximumDepth = maximumDepth
    }

    mutating func readDocument() throws -> JSONValue {
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF {
            throw error("a byte order mark is not allowed", at: 0)
        }
        var stack: [Frame] = []
        readingValues: while true {
            skipWhitespace()
            guard position < bytes.count else { throw error("unexpected end of input, expected a value") }
            var value: JSONValue
            switch bytes[position] {
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                guard stack.count < maximumDepth else { throw error("nested deeper than \(maximumDepth) levels") }
                let isObject = bytes[position] == UInt8(ascii: "{")
                position += 1
                skipWhitespace()
                if consume(isObject ? "}" : "]") {
                    value = isObject ? .object([]) : .array([])
                } else {
                    // A non-empty container: read its first member's value on the next turn.
                    var frame = Frame(isObject: isObject)
                    if isObject { try readKey(into: &frame, afterComma: false) }
                    stack.append(frame)
                    continue readingValues
                }
            case UInt8(ascii: "\""): value = .string(try readString())
            case UInt8(ascii: "t"): try readLiteral("true"); value = .bool(true)
            case UInt8(ascii: "f"): try readLiteral("false"); value = .bool(false)
            case UInt8(ascii: "n"): try readLiteral("null"); value = .null
            case UInt8(ascii: "-"), UInt8(ascii: "0") ... UInt8(ascii: "9"): value = try readNumber()
            default: throw error("unexpected \(describeNext()), expected a value")
            }
            // Hand the value to the innermost open container, closing every one that ends here.
            while let last = stack.indices.last {
                if stack[last].isObject {
                    stack[last].members.append((stack[last].key, value))
                } else {
                    stack[last].items.append(value)
                }
                let closer: Unicode.Scalar = stack[last].isObject ? "}" : "]"
                skipWhitespace()
                if consume(",") {
                    if stack[last].isObject {
                        try readKey(into: &stack[last], afterComma: true)
                    } else {
                        skipWhitespace()
                        if peek(is: "]") { throw error("trailing comma before ']'") }
                    }
                    continue readingValues
                }
                guard consume(closer) else { throw error("unexpected \(describeNext()), expected ',' or '\(closer)'") }
                let frame = stack.removeLast()
                value = frame.isObject ? .object(frame.members) : .array(frame.items)
            }
            skipWhitespace()
            guard position == bytes.count else { throw error("unexpected \(describeNext()) after the value") }
            return value
        }
    }

    /// Reads `"key" :` into `frame`, rejecting a key the object already has.
    mutating func readKey(into frame: inout Frame, afterComma: Bool) throws {
        skipWhitespace()
        guard peek(is: "\"") else {
            if afterComma && peek(is: "}") { throw error("trailing comma before '}'") }
            throw error("unexpected \(describeNext()), expected a string key")
        }
        let start = position
        let key = try readString()
        guard frame.keys.insert(key).inserted else { throw error("duplicate key \(quoted(key))", at: start) }
        frame.key = key
        skipWhitespace()
        guard consume(":") else { throw error("unexpected \(describeNext()), expected ':' after a key") }
    }

    /// A string (RFC 8259 §7) starting at the opening quote: escapes decoded, raw control
    /// characters, unpaired surrogates and invalid UTF-8 rejected.
    mutating func readString() throws -> String {
        let start = position
        position += 1
        var decoded: [UInt8] = []
        var hasEscapes = false
        var runStart = position
        while position < bytes.count {
            let byte = bytes[position]
            switch byte {
            case UInt8(ascii: "\""):
                let run = UnsafeBufferPointer(rebasing: bytes[runStart ..< position])
                position += 1
                guard hasEscapes else { return String(decoding: run, as: UTF8.self) }
                decoded.append(contentsOf: run)
                return String(decoding: decoded, as: UTF8.self)
            case UInt8(ascii: "\\"):
                hasEscapes = true
                decoded.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart ..< position]))
                try readEscape(into: &decoded)
                runStart = position
            case 0x00 ..< 0x20:
                throw error("control character \(hex(byte)) in a string (it must be escaped)")
            case 0x20 ..< 0x80:
                position += 1
            default:
                try skipMultiByteCharacter()
            }
        }
        throw error("unterminated string", at: start)
    }

    /// Decodes the escape at `position` (a backslash) as UTF-8 into `decoded`.
    mutating func readEscape(into decoded: inout [UInt8]) throws {
        let start = position
        position += 1
        guard position < bytes.count else { throw error("unterminated string") }
        let escape = bytes[position]
        position += 1
        switch escape {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(escape)
        case UInt8(ascii: "b"): decoded.append(0x08)
        case UInt8(ascii: "f"): decoded.append(0x0C)
        case UInt8(ascii: "n"): decoded.append(0x0A)
        case UInt8(ascii: "r"): decoded.append(0x0D)
        case UInt8(ascii: "t"): decoded.append(0x09)
        case UInt8(ascii: "u"):
            var code = try readHex4()
            if (0xD800 ..< 0xDC00).contains(code) {
                // A high surrogate counts only as the first half of a \uD8xx\uDCxx pair.
                guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"),
                      bytes[position + 1] == UInt8(ascii: "u") else { throw error("unpaired surrogate escape", at: start) }
                position += 2
                let low = try readHex4()
                guard (0xDC00 ..< 0xE000).contains(low) else { throw error("unpaired surrogate escape", at: start) }
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
            }
            guard let scalar = Unicode.Scalar(code) else { throw error("unpaired surrogate escape", at: start) }
            UTF8.encode(scalar) { decoded.append($0) }
        default:
            throw error("invalid escape: '\\' followed by \(describe(escape))", at: start)
        }
    }

    mutating func readHex4() throws -> UInt32 {
        var code: UInt32 = 0
        for _ in 0 ..< 4 {
            guard position < bytes.count else { throw error("unterminated \\u escape") }
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0") ... UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a") ... UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A") ... UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error("\\u escape needs 4 hex digits, found \(describeNext())")
            }
            code = code << 4 | UInt32(digit)
            position += 1
        }
        return code
    }

    /// Steps over one well-formed UTF-8 sequence of 2 to 4 bytes (Unicode 15, table 3-7): no
    /// overlong forms, no encoded surrogates, nothing above U+10FFFF.
    mutating func skipMultiByteCharacter() throws {
        let lead = bytes[position]
        var length = 2
        var secondRange: ClosedRange<UInt8> = 0x80 ... 0xBF
        switch lead {
        case 0xC2 ... 0xDF: length = 2
        case 0xE0: length = 3; secondRange = 0xA0 ... 0xBF
        case 0xE1 ... 0xEC, 0xEE ... 0xEF: length = 3
        case 0xED: length = 3; secondRange = 0x80 ... 0x9F
        case 0xF0: length = 4; secondRange = 0x90 ... 0xBF
        case 0xF1 ... 0xF3: length = 4
        case 0xF4: length = 4; secondRange = 0x80 ... 0x8F
        default: throw error("invalid UTF-8 byte \(hex(lead))")
        }
        for offset in 1 ..< length {
            let range: ClosedRange<UInt8> = offset == 1 ? secondRange : 0x80 ... 0xBF
            guard position + offset < bytes.count, range.contains(bytes[position + offset]) else {
                throw error("invalid UTF-8 sequence")
            }
        }
        position += length
    }

    /// A number (RFC 8259 §6). The Double comes from the C library's correctly rounded
    /// conversion unless the literal is an integer that a Double holds exactly.
    mutating func readNumber() throws -> JSONValue {
        let start = position
        let negative = bytes[position] == UInt8(ascii: "-")
        if negative { position += 1 }
        guard isDigit(at: position) else { throw error("expected a digit after '-'") }
        // Accumulated negatively so that Int.min fits; nil once it overflows.
        var negated: Int? = 0
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
            if isDigit(at: position) { throw error("leading zero in a number", at: start) }
        } else {
            while isDigit(at: position) {
                if let value = negated {
                    let (scaled, overflow1) = value.multipliedReportingOverflow(by: 10)
                    let (sum, overflow2) = scaled.subtractingReportingOverflow(Int(bytes[position] - UInt8(ascii: "0")))
                    negated = overflow1 || overflow2 ? nil : sum
                }
                position += 1
            }
        }
        var isIntegerLiteral = true
        if peek(is: ".") {
            isIntegerLiteral = false
            position += 1
            guard isDigit(at: position) else { throw error("expected a digit after '.'") }
            while isDigit(at: position) { position += 1 }
        }
        if peek(is: "e") || peek(is: "E") {
            isIntegerLiteral = false
            position += 1
            if peek(is: "+") || peek(is: "-") { position += 1 }
            guard isDigit(at: position) else { throw error("expected a digit in the exponent") }
            while isDigit(at: position) { position += 1 }
        }
        var integer: Int? = nil
        if isIntegerLiteral, let negated {
            integer = negative ? negated : (negated == Int.min ? nil : -negated)
        }
        if let integer, integer.magnitude <= 1 << 53 {
            return .number(negative && integer == 0 ? -0.0 : Double(integer), integer: integer)
        }
        let literal = String(decoding: UnsafeBufferPointer(rebasing: bytes[start ..< position]), as: UTF8.self)
        guard let double = Double(literal), double.isFinite else {
            throw error("number \(literal.count > 40 ? String(literal.prefix(40)) + "…" : literal) is out of range", at: start)
        }
        return .number(double, integer: integer)
    }

    mutating func readLiteral(_ word: StaticString) throws {
        for index in 0 ..< word.utf8CodeUnitCount {
            guard position < bytes.count, bytes[position] == word.utf8Start[index] else {
                throw error("unexpected \(describeNext()) in what should be '\(word)'")
            }
            position += 1
        }
    }

    // MARK: - Bytes

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): position += 1
            default: return
            }
        }
    }

    func peek(is scalar: Unicode.Scalar) -> Bool {
        position < bytes.count && bytes[position] == UInt8(ascii: scalar)
    }

    mutating func consume(_ scalar: Unicode.Scalar) -> Bool {
        guard peek(is: scalar) else { return false }
        position += 1
        return true
    }

    func isDigit(at index: Int) -> Bool {
        index < bytes.count && (UInt8(ascii: "0") ... UInt8(ascii: "9")).contains(bytes[index])
    }

    // MARK: - Messages

    func error(_ problem: String, at offset: Int? = nil) -> ReparoError {
        ReparoError.invalidArgument("\(context): malformed JSON at byte \(offset ?? position): \(problem)")
    }

    func describeNext() -> String {
        position < bytes.count ? describe(bytes[position]) : "end of input"
    }

    func describe(_ byte: UInt8) -> String {
        (0x21 ..< 0x7F).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "byte \(hex(byte))"
    }

    func hex(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16, uppercase: true)
        return "0x" + (digits.count == 1 ? "0" + digits : digits)
    }

    /// A key for messages, cut short so that a hostile document cannot make the message huge.
    func quoted(_ key: String) -> String {
        key.count > 64 ? "\"\(key.prefix(64))…\"" : "\"\(key)\""
    }
}
