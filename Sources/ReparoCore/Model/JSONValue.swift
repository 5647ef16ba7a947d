import Foundation

/// Strict reading of JSON objects for specs and options: every key must be known, every
/// value of the right type and range, and each error names the offending field.
public struct JSONObject {
    public let fields: [String: Any]
    public let context: String
    private var used: Set<String> = []

    /// Maximum nesting accepted before parsing, so a hostile document cannot exhaust the stack.
    public static let maximumDepth = 64
    public static let maximumLength = 1 << 20

    public init(fields: [String: Any], context: String) {
        self.fields = fields
        self.context = context
    }

    /// Parses text that must hold one JSON object. Empty or nil text is an empty object.
    public static func parse(_ text: String?, context: String) throws -> JSONObject {
        guard let text, !text.allSatisfy(\.isWhitespace) else { return JSONObject(fields: [:], context: context) }
        let value = try parseValue(text, context: context)
        guard let object = value as? [String: Any] else {
            throw ReparoError.invalidArgument("\(context): expected a JSON object")
        }
        return JSONObject(fields: object, context: context)
    }

    /// Parses any JSON value after checking its size and nesting depth.
    public static func parseValue(_ text: String, context: String) throws -> Any {
        let bytes = Array(text.utf8)
        guard bytes.count <= maximumLength else {
            throw ReparoError.invalidArgument("\(context): JSON longer than \(maximumLength) bytes")
        }
        try checkDepth(bytes, context: context)
        do {
            return try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
        } catch {
            throw ReparoError.invalidArgument("\(context): malformed JSON (\(error.localizedDescription))")
        }
    }

    static func checkDepth(_ bytes: [UInt8], context: String) throws {
        var depth = 0, inString = false, escaped = false
        for byte in bytes {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > maximumDepth {
                    throw ReparoError.invalidArgument("\(context): JSON nested deeper than \(maximumDepth) levels")
                }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
    }

    func name(_ key: String) -> String { "\(context).\(key)" }

    public func has(_ key: String) -> Bool { fields[key] != nil && !(fields[key] is NSNull) }

    mutating func raw(_ key: String) -> Any? {
        used.insert(key)
        guard let value = fields[key], !(value is NSNull) else { return nil }
        return value
    }

    static func isBool(_ value: Any) -> Bool {
        guard let number = value as? NSNumber else { return value is Bool }
        return type(of: number) == type(of: NSNumber(value: true)) || CFGetTypeIDIsBool(number)
    }

    /// Reads an integer in `range`; `nil` when absent.
    public mutating func optionalInt(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let value = raw(key) else { return nil }
        return try JSONObject.integer(value, name: name(key), in: range)
    }

    public mutating func int(_ key: String, default fallback: Int, in range: ClosedRange<Int>) throws -> Int {
        try optionalInt(key, in: range) ?? fallback
    }

    static func integer(_ value: Any, name: String, in range: ClosedRange<Int>) throws -> Int {
        guard !isBool(value), let number = value as? NSNumber else {
            throw ReparoError.invalidArgument("\(name): expected an integer")
        }
        let double = number.doubleValue
        guard double.isFinite, double.rounded() == double, double >= -9.0e15, double <= 9.0e15 else {
            throw ReparoError.invalidArgument("\(name): expected an integer, got \(number)")
        }
        let integer = Int(double)
        guard range.contains(integer) else {
            throw ReparoError.invalidArgument("\(name): \(integer) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return integer
    }

    public mutating func optionalDouble(_ key: String, in range: ClosedRange<Double>) throws -> Double? {
        guard let value = raw(key) else { return nil }
        return try JSONObject.number(value, name: name(key), in: range)
    }

    public mutating func double(_ key: String, default fallback: Double, in range: ClosedRange<Double>) throws -> Double {
        try optionalDouble(key, in: range) ?? fallback
    }

    static func number(_ value: Any, name: String, in range: ClosedRange<Double>) throws -> Double {
        guard !isBool(value), let number = value as? NSNumber, number.doubleValue.isFinite else {
            throw ReparoError.invalidArgument("\(name): expected a number")
        }
        let double = number.doubleValue
        guard range.contains(double) else {
            throw ReparoError.invalidArgument("\(name): \(double) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return double
    }

    public mutating func bool(_ key: String, default fallback: Bool) throws -> Bool {
        guard let value = raw(key) else { return fallback }
        guard JSONObject.isBool(value), let flag = value as? Bool else {
            throw ReparoError.invalidArgument("\(name(key)): expected true or false")
        }
        return flag
    }

    public mutating func optionalString(_ key: String, allowed: [String]? = nil) throws -> String? {
        guard let value = raw(key) else { return nil }
        guard let string = value as? String else {
            throw ReparoError.invalidArgument("\(name(key)): expected a string")
        }
        if let allowed, !allowed.contains(string) {
            throw ReparoError.invalidArgument("\(name(key)): \"\(string)\" is not one of \(allowed.map { "\"\($0)\"" }.joined(separator: ", "))")
        }
        return string
    }

    public mutating func string(_ key: String, default fallback: String, allowed: [String]? = nil) throws -> String {
        try optionalString(key, allowed: allowed) ?? fallback
    }

    public mutating func optionalObject(_ key: String) throws -> JSONObject? {
        guard let value = raw(key) else { return nil }
        guard let object = value as? [String: Any] else {
            throw ReparoError.invalidArgument("\(name(key)): expected an object")
        }
        return JSONObject(fields: object, context: name(key))
    }

    public mutating func optionalArray(_ key: String) throws -> [Any]? {
        guard let value = raw(key) else { return nil }
        guard let array = value as? [Any] else {
            throw ReparoError.invalidArgument("\(name(key)): expected an array")
        }
        return array
    }

    /// The value under `key` without type checking (for fields that accept several types).
    public mutating func any(_ key: String) -> Any? { raw(key) }

    /// Fails if the object holds keys that were never read.
    public func finish(ignoring extra: Set<String> = []) throws {
        let unknown = Set(fields.keys).subtracting(used).subtracting(extra).sorted()
        if let first = unknown.first {
            let more = unknown.count > 1 ? " (and \(unknown.dropFirst().joined(separator: ", ")))" : ""
            throw ReparoError.invalidArgument("\(context): unknown key \"\(first)\"\(more)")
        }
    }
}

private func CFGetTypeIDIsBool(_ number: NSNumber) -> Bool {
    // swift-corelibs-foundation represents JSON booleans as NSNumber with objCType "c"/"B".
    let type = String(cString: number.objCType)
    return type == "c" || type == "B"
}

/// Serializes a JSON-compatible value with sorted keys (deterministic output).
public func jsonText(_ value: Any) -> String {
    guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed]),
          let text = String(data: data, encoding: .utf8) else { return "{}" }
    return text
}
