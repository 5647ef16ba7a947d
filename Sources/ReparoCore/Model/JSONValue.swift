import Foundation

/// Strict reading of JSON objects for specs and options: every key must be known, every
/// value of the right type and range, and each error names the offending field.
public struct JSONObject {
    public let fields: [String: Any]
    public let context: String
    private var used: Set<String> = []

    /// Limits applied by `parse` and `parseValue`: nesting (so a hostile document cannot
    /// exhaust memory or the stack) and length in UTF-8 bytes.
    public static let maximumDepth = 64
    public static let maximumLength = 1 << 20

    /// `fields` holds values as `parseValue` returns them: NSNull, Bool, Int (integer
    /// literals only), Double, String, [Any] and [String: Any].
    public init(fields: [String: Any], context: String) {
        self.fields = fields
        self.context = context
    }

    /// Parses text that must hold one JSON object. Empty or nil text is an empty object.
    public static func parse(_ text: String?, context: String) throws -> JSONObject {
        guard let text, !text.allSatisfy(\.isWhitespace) else { return JSONObject(fields: [:], context: context) }
        guard let object = try parseValue(text, context: context) as? [String: Any] else {
            throw ReparoError.invalidArgument("\(context): expected a JSON object")
        }
        return JSONObject(fields: object, context: context)
    }

    /// Parses any JSON value with `StrictJSON` (within `maximumDepth` and `maximumLength`) into
    /// NSNull, Bool, Int, Double, String, [Any] and [String: Any]: an Int exactly when the literal
    /// is an integer literal that fits, so `1.0` and `1e2` are Doubles and `true` is never a number.
    public static func parseValue(_ text: String, context: String) throws -> Any {
        try StrictJSON.parse(text, context: context, maximumDepth: maximumDepth, maximumLength: maximumLength).anyValue
    }

    func name(_ key: String) -> String { "\(context).\(key)" }

    public func has(_ key: String) -> Bool { fields[key] != nil && !(fields[key] is NSNull) }

    mutating func raw(_ key: String) -> Any? {
        used.insert(key)
        guard let value = fields[key], !(value is NSNull) else { return nil }
        return value
    }

    /// `value` if its dynamic type is exactly `T`. Casting with `as?` alone would let an
    /// NSNumber pass for a Bool, an Int and a Double alike.
    static func exactly<T>(_ value: Any, _: T.Type) -> T? {
        type(of: value) == T.self ? value as? T : nil
    }

    /// Reads an integer in `range`; `nil` when absent.
    public mutating func optionalInt(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let value = raw(key) else { return nil }
        return try JSONObject.integer(value, name: name(key), in: range)
    }

    public mutating func int(_ key: String, default fallback: Int, in range: ClosedRange<Int>) throws -> Int {
        try optionalInt(key, in: range) ?? fallback
    }

    /// An integer literal (`4`, not `4.0`, `4e0` or `true`) in `range`.
    static func integer(_ value: Any, name: String, in range: ClosedRange<Int>) throws -> Int {
        guard let integer = exactly(value, Int.self) else {
            if let double = exactly(value, Double.self) {
                throw ReparoError.invalidArgument("\(name): expected an integer, got \(double)")
            }
            throw ReparoError.invalidArgument("\(name): expected an integer")
        }
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

    /// Any number literal (integer or not) in `range`; `true` is not a number.
    static func number(_ value: Any, name: String, in range: ClosedRange<Double>) throws -> Double {
        guard let double = exactly(value, Double.self) ?? exactly(value, Int.self).map(Double.init), double.isFinite else {
            throw ReparoError.invalidArgument("\(name): expected a number")
        }
        guard range.contains(double) else {
            throw ReparoError.invalidArgument("\(name): \(double) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return double
    }

    public mutating func bool(_ key: String, default fallback: Bool) throws -> Bool {
        guard let value = raw(key) else { return fallback }
        guard let flag = JSONObject.exactly(value, Bool.self) else {
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

extension JSONValue {
    /// The value in the Foundation-style form `JSONObject` works with (see `parseValue`).
    /// Recursion is as deep as the value, which `StrictJSON` bounds by its `maximumDepth`.
    var anyValue: Any {
        switch self {
        case .null: return NSNull()
        case .bool(let flag): return flag
        case .number(let double, let integer): return integer.map { $0 as Any } ?? double
        case .string(let string): return string
        case .array(let items): return items.map(\.anyValue)
        case .object(let members):
            // StrictJSON rejects duplicate keys; a hand-built value keeps its last one, as
            // JSONSerialization did.
            return Dictionary(members.map { ($0.key, $0.value.anyValue) }, uniquingKeysWith: { $1 })
        }
    }
}

/// Serializes a JSON-compatible value with sorted keys (deterministic output).
public func jsonText(_ value: Any) -> String {
    guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed]),
          let text = String(data: data, encoding: .utf8) else { return "{}" }
    return text
}
