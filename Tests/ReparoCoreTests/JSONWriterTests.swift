import Foundation
import Testing
@testable import ReparoCore

// The oracle is Foundation's JSONSerialization with .sortedKeys, which wrote every JSON text of
// the engine before JSONWriter: for the same content, the bytes must be the same (saved specs
// and the CLI's teacher-cache key are compared and hashed across versions).

private func foundationText(_ value: Any) throws -> String {
    let data = try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed])
    return String(decoding: data, as: UTF8.self)
}

/// `value` as Foundation's JSON form (test-only: the engine has no such adapter any more).
private func foundationValue(_ value: JSONValue) -> Any {
    switch value {
    case .null: return NSNull()
    case .bool(let flag): return flag
    case .number(let double, let integer): return integer.map { $0 as Any } ?? double
    case .string(let string): return string
    case .array(let items): return items.map(foundationValue)
    case .object(let members): return Dictionary(members.map { ($0.key, foundationValue($0.value)) }, uniquingKeysWith: { $1 })
    }
}

@Suite("JSONWriter writes what JSONSerialization wrote")
struct JSONWriterTests {
    @Test("hand-picked values: escapes, slashes, numbers")
    func handPicked() throws {
        let value: JSONValue = [
            "s": .string("a/b \"q\" \\ \u{1}\u{8}\u{C}\n\r\t\u{1F}\u{7F} é 😀 \u{2028}"),
            "numbers": .array([.int(0), .int(-7), .int(Int.max), .int(Int.min), .double(0.05), .double(1e-12), .double(5e-4),
                               .double(1e16), .double(2), .double(-0.0), .double(123456789.123), .double(0.1 + 0.2)]),
            "flags": [true, false, .null], "empty_object": JSONValue([:]), "empty_array": [],
            "nested": ["b_c": ["z": "1"], "a": .ints([3, 2, 1])],
        ]
        let text = JSONWriter.text(value)
        #expect(text == (try foundationText(foundationValue(value))))
        #expect(text.contains(#""a\/b \"q\" \\ \u0001\b\f\n\r\t\u001f"#))
        // Without slash escapes and in the given order (the safetensors header's settings).
        let ordered = JSONWriter(sortedKeys: false, escapesSlashes: false).bytes(["z": "a/b", "a": .double(0.5)])
        #expect(String(decoding: ordered, as: UTF8.self) == #"{"z":"a/b","a":0.5}"#)
        // JSON has no NaN or infinity.
        #expect(JSONWriter.text(.array([.double(.nan), .double(.infinity)])) == "[null,null]")
    }

    @Test("2000 random values, and each parses back to itself")
    func randomValues() throws {
        var random = MutationGenerator(state: 17)
        let keyAlphabet = Array("abcdefghijklmnopqrstuvwxyz_")
        let stringAlphabet: [Character] = ["a", "Z", "0", " ", "/", "\\", "\"", "\u{0}", "\u{1}", "\n", "\t", "\u{7F}", "é", "€", "😀", "\u{2028}"]
        func randomValue(depth: Int) -> JSONValue {
            switch Int.random(in: 0 ..< (depth > 3 ? 5 : 7), using: &random) {
            case 0: return .null
            case 1: return .bool(Bool.random(using: &random))
            case 2: return .int(Int.random(in: Int.min ... Int.max, using: &random) >> Int.random(in: 0 ..< 64, using: &random))
            case 3:
                var double = Double(bitPattern: random.next())
                if !double.isFinite { double = Double.random(in: -1e6 ... 1e6, using: &random) }
                return .double(double)
            case 4:
                return .string(String((0 ..< Int.random(in: 0 ..< 8, using: &random)).map { _ in stringAlphabet.randomElement(using: &random) ?? "a" }))
            case 5: return .array((0 ..< Int.random(in: 0 ..< 4, using: &random)).map { _ in randomValue(depth: depth + 1) })
            default:
                var members: [String: JSONValue] = [:]
                for _ in 0 ..< Int.random(in: 0 ..< 5, using: &random) {
                    let key = String((0 ..< Int.random(in: 1 ..< 6, using: &random)).map { _ in keyAlphabet.randomElement(using: &random) ?? "a" })
                    members[key] = randomValue(depth: depth + 1)
                }
                return JSONValue(members)
            }
        }
        for _ in 0 ..< 2000 {
            let value = randomValue(depth: 0)
            let text = JSONWriter.text(value)
            #expect(text == (try foundationText(foundationValue(value))))
            // Read back, the text is the same value (objects then in key order).
            #expect(JSONWriter.text(try StrictJSON.parse(text, context: "t", maximumLength: 1 << 20)) == text)
        }
    }

    @Test("specs and descriptions of every preset, dense, pruned, expanded and folded: Foundation's canonical bytes")
    func presets() throws {
        for preset in Presets.names {
            let dense = try Model(specJSON: #"{"preset":"\#(preset)","width":0.25}"#, seed: 1)
            let pruned = try Pruning.prune(dense, options: PruneOptions(ratio: 0.5))
            let expanded = try Expansion.expand(pruned, options: ExpandOptions(rate: 2, layers: .all))
            let folded = try Collapse.collapse(expanded, options: CollapseOptions(foldBatchNorm: true))
            for model in [dense, pruned, expanded, folded] {
                for text in [model.spec.jsonText, model.describe()] {
                    // Foundation reads the text and writes its own canonical form of it.
                    let reread = try JSONSerialization.jsonObject(with: Data(text.utf8))
                    #expect(text == (try foundationText(reread)), "\(preset) \(model.state)")
                }
            }
        }
    }
}
