/// Strict reading of JSON objects for specs and options: every key must be known, every
/// value of the right type and range, and each error names the offending field.
public struct JSONObject {
    /// The members in document order (`StrictJSON` guarantees unique keys).
    public let members: [(key: String, value: JSONValue)]
    public let context: String
    /// Each key's position in `members` (the last one for a hand-built object that repeats a key).
    private let positions: [String: Int]
    private var used: Set<String> = []

    /// Limits applied by `parse` and `parseValue`: nesting (so a hostile document cannot
    /// exhaust memory) and length in UTF-8 bytes.
    public static let maximumDepth = 64
    public static let maximumLength = 1 << 20

    /// `value`'s members; `.invalidArgument("<context>: expected an object")` for any other value.
    public init(_ value: JSONValue, context: String) throws {
        guard let members = value.members else { throw ReparoError.invalidArgument("\(context): expected an object") }
        self.members = members
        self.context = context
        positions = Dictionary(members.indices.map { (members[$0].key, $0) }, uniquingKeysWith: { $1 })
    }

    /// Parses text that must hold one JSON object. Empty or nil text is an empty object.
    public static func parse(_ text: String?, context: String) throws -> JSONObject {
        guard let text, !text.allSatisfy(\.isWhitespace) else { return try JSONObject(.object([]), context: context) }
        let value = try parseValue(text, context: context)
        guard value.members != nil else { throw ReparoError.invalidArgument("\(context): expected a JSON object") }
        return try JSONObject(value, context: context)
    }

    /// Parses any JSON value with `StrictJSON`, within `maximumDepth` and `maximumLength`.
    public static func parseValue(_ text: String, context: String) throws -> JSONValue {
        try StrictJSON.parse(text, context: context, maximumDepth: maximumDepth, maximumLength: maximumLength)
    }

    func name(_ key: String) -> String { "\(context).\(key)" }

    public func has(_ key: String) -> Bool {
        guard let position = positions[key] else { return false }
        return members[position].value != .null
    }

    /// The value under `key`, marked as read; nil when absent or null.
    mutating func raw(_ key: String) -> JSONValue? {
        used.insert(key)
        guard let position = positions[key], members[position].value != .null else { return nil }
        return members[position].value
    }

    /// `read(value, name)` of the value under `key`; nil when absent or null.
    private mutating func optional<T>(_ key: String, _ read: (JSONValue, String) throws -> T) throws -> T? {
        guard let value = raw(key) else { return nil }
        return try read(value, name(key))
    }

    /// Reads an integer in `range`; `nil` when absent.
    public mutating func optionalInt(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        try optional(key) { try JSONObject.integer($0, name: $1, in: range) }
    }

    public mutating func int(_ key: String, default fallback: Int, in range: ClosedRange<Int>) throws -> Int {
        try optionalInt(key, in: range) ?? fallback
    }

    /// An integer literal (`4`, not `4.0`, `4e0` or `true`) in `range`.
    public static func integer(_ value: JSONValue, name: String, in range: ClosedRange<Int>) throws -> Int {
        guard case .number(let double, let integer) = value else {
            throw ReparoError.invalidArgument("\(name): expected an integer")
        }
        guard let integer else { throw ReparoError.invalidArgument("\(name): expected an integer, got \(double)") }
        return try range.validate(integer, name)
    }

    public mutating func optionalDouble(_ key: String, in range: ClosedRange<Double>) throws -> Double? {
        try optional(key) { try JSONObject.number($0, name: $1, in: range) }
    }

    public mutating func double(_ key: String, default fallback: Double, in range: ClosedRange<Double>) throws -> Double {
        try optionalDouble(key, in: range) ?? fallback
    }

    /// Any number literal (integer or not) in `range`; `true` is not a number.
    public static func number(_ value: JSONValue, name: String, in range: ClosedRange<Double>) throws -> Double {
        guard case .number(let double, _) = value, double.isFinite else {
            throw ReparoError.invalidArgument("\(name): expected a number")
        }
        return try range.validate(double, name)
    }

    public mutating func bool(_ key: String, default fallback: Bool) throws -> Bool {
        try optional(key) { value, name in
            guard case .bool(let flag) = value else { throw ReparoError.invalidArgument("\(name): expected true or false") }
            return flag
        } ?? fallback
    }

    public mutating func optionalString(_ key: String, allowed: [String]? = nil) throws -> String? {
        try optional(key) { value, name in
            guard case .string(let string) = value else { throw ReparoError.invalidArgument("\(name): expected a string") }
            if let allowed, !allowed.contains(string) {
                throw ReparoError.invalidArgument("\(name): \"\(string)\" is not one of \(allowed.map { "\"\($0)\"" }.joined(separator: ", "))")
            }
            return string
        }
    }

    public mutating func string(_ key: String, default fallback: String, allowed: [String]? = nil) throws -> String {
        try optionalString(key, allowed: allowed) ?? fallback
    }

    public mutating func optionalObject(_ key: String) throws -> JSONObject? {
        try optional(key) { try JSONObject($0, context: $1) }
    }

    public mutating func optionalArray(_ key: String) throws -> [JSONValue]? {
        try optional(key) { value, name in
            guard case .array(let items) = value else { throw ReparoError.invalidArgument("\(name): expected an array") }
            return items
        }
    }

    /// A field that holds one of a few words or a list of layer names ("all", ["layers.3"]),
    /// as `words[word]` or `names(list)`; nil when absent.
    public mutating func optionalWordOrNames<T>(_ key: String, words: KeyValuePairs<String, T>,
                                                names: ([String]) -> T) throws -> T? {
        try optional(key) { value, name in
            let choices = words.map { "\"\($0.key)\"" }.joined(separator: ", ") + " or a list of layer names"
            switch value {
            case .string(let word):
                guard let chosen = words.first(where: { $0.key == word }) else {
                    throw ReparoError.invalidArgument("\(name): \"\(word)\" is not \(choices)")
                }
                return chosen.value
            case .array(let items):
                return names(try items.enumerated().map { index, item in
                    guard case .string(let layer) = item else {
                        throw ReparoError.invalidArgument("\(name)[\(index)]: expected a layer name")
                    }
                    return layer
                })
            default:
                throw ReparoError.invalidArgument("\(name): expected \(choices)")
            }
        }
    }

    /// Fails if the object holds keys that were never read.
    public func finish(ignoring extra: Set<String> = []) throws {
        let unknown = Set(positions.keys).subtracting(used).subtracting(extra).sorted()
        if let first = unknown.first {
            let more = unknown.count > 1 ? " (and \(unknown.dropFirst().joined(separator: ", ")))" : ""
            throw ReparoError.invalidArgument("\(context): unknown key \"\(first)\"\(more)")
        }
    }
}
