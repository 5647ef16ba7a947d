/// A JSON value (RFC 8259): what `StrictJSON` reads and `JSONWriter` writes. Objects keep their
/// members in order; `StrictJSON` guarantees that no two of them share a key.
public enum JSONValue: Sendable {
    case null
    case bool(Bool)
    /// `integer` is the exact value when the literal has neither fraction nor exponent and fits
    /// an Int; so `1.0`, `1e2` and 9223372036854775808 are numbers but not integers.
    case number(Double, integer: Int?)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    /// An integer literal.
    public static func int(_ value: Int) -> JSONValue { .number(Double(value), integer: value) }

    /// A number that is not an integer literal (written as Swift prints it, less a final ".0").
    public static func double(_ value: Double) -> JSONValue { .number(value, integer: nil) }

    public static func ints(_ values: [Int]) -> JSONValue { .array(values.map(JSONValue.int)) }

    /// An object from a dictionary; the writer puts the keys in order (`JSONWriter.sortedKeys`).
    public init(_ members: [String: JSONValue]) {
        self = .object(members.map { (key: $0.key, value: $0.value) })
    }

    /// The members of an object, nil for any other value.
    public var members: [(key: String, value: JSONValue)]? {
        if case .object(let members) = self { return members }
        return nil
    }
}

// No integer or float literals: with them, every arithmetic expression on literals in the
// module would have one more type to try (and some would time out the type checker). Numbers
// are spelled `.int(4)`, `.double(0.5)`.
extension JSONValue: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral,
                     ExpressibleByDictionaryLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(elements.map { (key: $0.0, value: $0.1) })
    }
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
