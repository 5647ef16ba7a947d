/// Writes a `JSONValue` as compact JSON text: the one writer behind saved specs, the
/// safetensors header, `reparo_model_describe` and the CLI's JSON output.
///
/// The defaults reproduce what Foundation's `JSONSerialization` with `.sortedKeys` wrote
/// before this writer existed, byte for byte, so that texts compared or hashed across versions
/// (the spec in weights files and checkpoints, the CLI's teacher-cache key) are unchanged:
/// keys in sorted order, "/" escaped as "\/", \b \f \n \r \t and \u00xx (lowercase) for the
/// other control characters, everything else as raw UTF-8; an integer as its digits, any other
/// number as Swift prints the Double less a final ".0" (0.05, 1e-05, 2). Keys are sorted by
/// their UTF-8 bytes, which is JSONSerialization's order for the lowercase ASCII keys that
/// Reparo writes. A non-finite number, which JSON cannot express, is written as null.
public struct JSONWriter {
    /// Objects' members in key order (by UTF-8 bytes) rather than in the order given.
    public var sortedKeys = true
    /// "/" as "\/" (JSONSerialization's habit) rather than raw.
    public var escapesSlashes = true

    public init(sortedKeys: Bool = true, escapesSlashes: Bool = true) {
        self.sortedKeys = sortedKeys
        self.escapesSlashes = escapesSlashes
    }

    /// `value` as text with the default settings.
    public static func text(_ value: JSONValue) -> String {
        String(decoding: JSONWriter().bytes(value), as: UTF8.self)
    }

    /// `value` as UTF-8 bytes. Recursion is as deep as the value (a parsed value is at most
    /// `maximumDepth` deep; built ones are shallow).
    public func bytes(_ value: JSONValue) -> [UInt8] {
        var output: [UInt8] = []
        write(value, to: &output)
        return output
    }

    public func write(_ value: JSONValue, to output: inout [UInt8]) {
        switch value {
        case .null: output.append(contentsOf: "null".utf8)
        case .bool(let flag): output.append(contentsOf: (flag ? "true" : "false").utf8)
        case .number(let double, let integer):
            if let integer {
                output.append(contentsOf: String(integer).utf8)
            } else if double.isFinite {
                var text = double.description
                if text.hasSuffix(".0") { text.removeLast(2) }
                output.append(contentsOf: text.utf8)
            } else {
                output.append(contentsOf: "null".utf8)
            }
        case .string(let string): write(string, to: &output)
        case .array(let items):
            output.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                write(item, to: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(var members):
            if sortedKeys { members.sort { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) } }
            output.append(UInt8(ascii: "{"))
            for (index, member) in members.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                write(member.key, to: &output)
                output.append(UInt8(ascii: ":"))
                write(member.value, to: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    /// A string literal (RFC 8259 §7).
    public func write(_ string: String, to output: inout [UInt8]) {
        let hexDigits: StaticString = "0123456789abcdef"
        output.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): output.append(UInt8(ascii: "\\")); output.append(byte)
            case UInt8(ascii: "/") where escapesSlashes: output.append(UInt8(ascii: "\\")); output.append(byte)
            case 0x08: output.append(contentsOf: "\\b".utf8)
            case 0x0C: output.append(contentsOf: "\\f".utf8)
            case 0x0A: output.append(contentsOf: "\\n".utf8)
            case 0x0D: output.append(contentsOf: "\\r".utf8)
            case 0x09: output.append(contentsOf: "\\t".utf8)
            case 0 ..< 0x20:
                output.append(contentsOf: "\\u00".utf8)
                output.append(hexDigits.utf8Start[Int(byte >> 4)])
                output.append(hexDigits.utf8Start[Int(byte & 0xF)])
            default: output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }
}
