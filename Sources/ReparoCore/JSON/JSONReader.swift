/// A strict pull reader for JSON text (RFC 8259 and nothing more), for text that comes from
/// users and files. The caller walks the document — `peek` at the next value's kind, then
/// `readString`, `readNumber`, `readLiteral`, or `begin` and then `nextKey` (objects) or
/// `nextElement` (arrays) — and the reader checks the grammar between the values it hands out. `StrictJSON` builds a
/// `JSONValue` tree this way; `SafeTensors` reads its header schema directly, building nothing
/// it does not keep.
///
/// Rejected: trailing commas, comments, NaN/Infinity, leading zeros, numbers that overflow a
/// Double, raw control characters in strings, unknown escapes, unpaired surrogate escapes,
/// invalid UTF-8 (overlong forms, encoded surrogates, > U+10FFFF), nesting deeper than
/// `maximumDepth`, and anything after the top-level value (`finish`). Duplicate keys are the
/// caller's to judge: `nextKey` reports where each key starts (`keyOffset`).
///
/// The reader recurses nowhere and keeps no stack (only the depth), so depth costs no call
/// stack; time is linear in the input. Errors are `JSONSyntaxError`, which each caller words.
struct JSONReader {
    /// The kind of value that starts at the next byte.
    enum Kind { case object, array, string, number, bool, null }

    let bytes: UnsafeBufferPointer<UInt8>
    let maximumDepth: Int
    private(set) var position = 0
    /// Where the key that `nextKey` returned last starts (its opening quote).
    private(set) var keyOffset = 0
    private var depth = 0
    /// True right after `begin`: no member yet, so no comma is due.
    private var atFirst = false

    init(_ bytes: UnsafeBufferPointer<UInt8>, maximumDepth: Int) {
        self.bytes = bytes
        self.maximumDepth = maximumDepth
    }

    // MARK: - Structure

    /// The kind of the next value (after whitespace), which is not consumed.
    mutating func peek() throws -> Kind {
        skipWhitespace()
        guard position < bytes.count else { throw error("unexpected end of input, expected a value") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool
        case UInt8(ascii: "n"): return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0") ... UInt8(ascii: "9"): return .number
        default: throw error("unexpected \(describeNext()), expected a value")
        }
    }

    /// Consumes the '{' or '[' that `peek` found; `nextKey` or `nextElement` go on from there.
    mutating func begin() throws {
        guard depth < maximumDepth else { throw error("nested deeper than \(maximumDepth) levels") }
        depth += 1
        position += 1
        atFirst = true
    }

    /// The next member's key of the innermost object, with its ':' consumed (the caller reads
    /// the value next), or nil once the object's '}' is consumed.
    mutating func nextKey() throws -> String? {
        skipWhitespace()
        if atFirst {
            atFirst = false
            if consume("}") { return end() }
            return try readKey(afterComma: false)
        }
        if consume(",") { return try readKey(afterComma: true) }
        guard consume("}") else { throw error("unexpected \(describeNext()), expected ',' or '}'") }
        return end()
    }

    /// True when the innermost array has another element (the caller reads it next); false
    /// once its ']' is consumed.
    mutating func nextElement() throws -> Bool {
        skipWhitespace()
        if atFirst {
            atFirst = false
            if consume("]") { return end() != nil }
            return true
        }
        if consume(",") {
            skipWhitespace()
            if peek(is: "]") { throw error("trailing comma before ']'") }
            return true
        }
        guard consume("]") else { throw error("unexpected \(describeNext()), expected ',' or ']'") }
        return end() != nil
    }

    /// Closes a container; always nil (the value `nextKey` returns at the end).
    private mutating func end() -> String? {
        depth -= 1
        return nil
    }

    /// Reads `"key" :`.
    private mutating func readKey(afterComma: Bool) throws -> String {
        skipWhitespace()
        guard peek(is: "\"") else {
            if afterComma && peek(is: "}") { throw error("trailing comma before '}'") }
            throw error("unexpected \(describeNext()), expected a string key")
        }
        keyOffset = position
        let key = try readString()
        skipWhitespace()
        guard consume(":") else { throw error("unexpected \(describeNext()), expected ':' after a key") }
        return key
    }

    /// Only whitespace may follow the top-level value.
    mutating func finish() throws {
        skipWhitespace()
        guard position == bytes.count else { throw error("unexpected \(describeNext()) after the value") }
    }

    // MARK: - Scalars

    /// A string (RFC 8259 §7) starting at the opening quote: escapes decoded, raw control
    /// characters, unpaired surrogates and invalid UTF-8 rejected.
    mutating func readString() throws -> String {
        skipWhitespace()
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
    private mutating func readEscape(into decoded: inout [UInt8]) throws {
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

    private mutating func readHex4() throws -> UInt32 {
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
    private mutating func skipMultiByteCharacter() throws {
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

    /// A number (RFC 8259 §6), as `.number`. The Double comes from the C library's correctly
    /// rounded conversion unless the literal is an integer that a Double holds exactly.
    mutating func readNumber() throws -> JSONValue {
        skipWhitespace()
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

    /// `true`, `false` or `null`, as `peek` found (`.bool` or `.null`).
    mutating func readLiteral() throws -> JSONValue {
        skipWhitespace()
        switch bytes[position] {
        case UInt8(ascii: "t"): try readWord("true"); return .bool(true)
        case UInt8(ascii: "f"): try readWord("false"); return .bool(false)
        default: try readWord("null"); return .null
        }
    }

    private mutating func readWord(_ word: StaticString) throws {
        for index in 0 ..< word.utf8CodeUnitCount {
            guard position < bytes.count, bytes[position] == word.utf8Start[index] else {
                throw error("unexpected \(describeNext()) in what should be '\(word)'")
            }
            position += 1
        }
    }

    // MARK: - Bytes

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): position += 1
            default: return
            }
        }
    }

    private func peek(is scalar: Unicode.Scalar) -> Bool {
        position < bytes.count && bytes[position] == UInt8(ascii: scalar)
    }

    private mutating func consume(_ scalar: Unicode.Scalar) -> Bool {
        guard peek(is: scalar) else { return false }
        position += 1
        return true
    }

    private func isDigit(at index: Int) -> Bool {
        index < bytes.count && (UInt8(ascii: "0") ... UInt8(ascii: "9")).contains(bytes[index])
    }

    // MARK: - Messages

    func error(_ problem: String, at offset: Int? = nil) -> JSONSyntaxError {
        JSONSyntaxError(problem: problem, offset: offset ?? position)
    }

    private func describeNext() -> String {
        position < bytes.count ? describe(bytes[position]) : "end of input"
    }

    private func describe(_ byte: UInt8) -> String {
        (0x21 ..< 0x7F).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "byte \(hex(byte))"
    }

    private func hex(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16, uppercase: true)
        return "0x" + (digits.count == 1 ? "0" + digits : digits)
    }
}

/// Text that is not JSON: what is wrong, and at which byte (counted from 0).
struct JSONSyntaxError: Error {
    let problem: String
    let offset: Int
}
