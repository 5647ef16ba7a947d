import Foundation
import Testing
@testable import ReparoCore

// Expected values are written out by hand from RFC 8259 (byte offsets counted on the literal
// text, decoded strings spelled with Swift's own escapes); the random-mutation test checks
// against Foundation's JSONSerialization, an independent parser.

private func parse(_ text: String, maximumDepth: Int = 64, maximumLength: Int = 1 << 20) throws -> JSONValue {
    try StrictJSON.parse(text, context: "doc", maximumDepth: maximumDepth, maximumLength: maximumLength)
}

private func parse(bytes: [UInt8]) throws -> JSONValue {
    try StrictJSON.parse(bytes, context: "doc", maximumLength: 1 << 20)
}

/// `body` must throw `.invalidArgument("doc: malformed JSON at byte <byte>: …<mentions>…")`.
private func expectMalformed(at byte: Int, mentions: String, sourceLocation: SourceLocation = #_sourceLocation,
                             _ body: () throws -> JSONValue) {
    let error = #expect(throws: ReparoError.self, sourceLocation: sourceLocation) { _ = try body() }
    guard let error else { return }
    guard case .invalidArgument(let message) = error else {
        Issue.record("expected .invalidArgument, got \(error)", sourceLocation: sourceLocation)
        return
    }
    let prefix = "doc: malformed JSON at byte \(byte): "
    #expect(message.hasPrefix(prefix), "message \"\(message)\" should start with \"\(prefix)\"", sourceLocation: sourceLocation)
    #expect(message.contains(mentions), "message \"\(message)\" should mention \"\(mentions)\"", sourceLocation: sourceLocation)
}

private func integer(_ value: Int) -> JSONValue { .number(Double(value), integer: value) }

/// SplitMix64, local so that these tests depend on nothing but the code under test (also used
/// by JSONWriterTests).
struct MutationGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Strict JSON parser (RFC 8259)")
struct StrictJSONTests {
    @Test("a nested document keeps member order and every value")
    func nestedDocument() throws {
        let text = """
         {"name" : "conv1", "out":16, "ratio":0.25,
          "flags":[true,false,null], "nested":{"a":[1,-2,{"b":[]}],"c":{}},
          "z":"last", "a":"first"}\r\n\t
        """
        let expected = JSONValue.object([
            ("name", .string("conv1")),
            ("out", integer(16)),
            ("ratio", .number(0.25, integer: nil)),
            ("flags", .array([.bool(true), .bool(false), .null])),
            ("nested", .object([
                ("a", .array([integer(1), integer(-2), .object([("b", .array([]))])])),
                ("c", .object([])),
            ])),
            ("z", .string("last")),
            ("a", .string("first")),
        ])
        #expect(try parse(text) == expected)
        #expect(try parse(bytes: Array(text.utf8)) == expected)
        // Any value may stand alone, with whitespace around it.
        #expect(try parse(" true ") == .bool(true))
        #expect(try parse("null") == .null)
        #expect(try parse("\n\"x\"\t") == .string("x"))
        #expect(try parse("[]") == .array([]))
        // The same key in sibling objects, and keys differing only in case, are not duplicates.
        #expect(try parse(#"[{"a":1},{"a":2}]"#) == .array([.object([("a", integer(1))]), .object([("a", integer(2))])]))
        #expect(try parse(#"{"a":1,"A":2}"#) == .object([("a", integer(1)), ("A", integer(2))]))
    }

    @Test("strings: every escape, \\u with surrogate pairs, raw UTF-8, escaped NUL")
    func strings() throws {
        #expect(try parse(#""\"\\\/\b\f\n\r\t""#) == .string("\"\\/\u{8}\u{C}\n\r\t"))
        #expect(try parse(#""\u0041\u00e9\u20AC\uD83D\uDE00\u0000""#) == .string("Aé€😀\u{0}"))
        #expect(try parse(#""\udbff\udfff""#) == .string("\u{10FFFF}"))
        #expect(try parse("\"é€😀\u{7F}\u{10FFFF}\"") == .string("é€😀\u{7F}\u{10FFFF}"))
        #expect(try parse(#"{"\u0061b":"a\u0062"}"#) == .object([("ab", .string("ab"))]))
        #expect(try parse(bytes: [0x22, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98, 0x80, 0xF4, 0x8F, 0xBF, 0xBF, 0x22])
                == .string("€😀\u{10FFFF}"))
    }

    @Test("numbers: value, and the integer flag only for integer literals that fit an Int", arguments: [
        ("0", 0.0, 0 as Int?),
        ("-12", -12, -12),
        ("1e-3", 0.001, nil),
        ("1E+2", 100, nil),
        ("1e2", 100, nil),
        ("1.0", 1, nil),
        ("0.1", 0.1, nil),
        ("-2.5E-1", -0.25, nil),
        ("1e-400", 0, nil),
        ("9007199254740993", 9_007_199_254_740_992, 9_007_199_254_740_993),
        ("9223372036854775807", 0x1p63, Int.max),
        ("-9223372036854775808", -0x1p63, Int.min),
        ("9223372036854775808", 0x1p63, nil),
        ("-9223372036854775809", -0x1p63, nil),
        ("123456789012345678901234567890", 1.2345678901234568e29, nil),
    ] as [(String, Double, Int?)])
    func numbers(text: String, value: Double, integer: Int?) throws {
        #expect(try parse(text) == .number(value, integer: integer))
        #expect(try parse("[\(text)]") == .array([.number(value, integer: integer)]))
    }

    @Test("-0 is the integer 0 with the Double -0.0")
    func negativeZero() throws {
        guard case .number(let value, let integer) = try parse("-0") else {
            Issue.record("-0 is not a number")
            return
        }
        #expect(value == 0 && value.sign == .minus && integer == 0)
    }

    @Test("malformed text is rejected at the right byte", arguments: [
        // Trailing commas, comments, stray separators.
        (#"{"a":1,}"#, 7, "trailing comma"),
        ("[1,]", 3, "trailing comma"),
        ("[1,,2]", 3, "expected a value"),
        ("[,1]", 1, "expected a value"),
        ("{,}", 1, "expected a string key"),
        ("// c\n{}", 0, "unexpected '/'"),
        (#"{"a":1 /* c */}"#, 7, "expected ',' or '}'"),
        ("[1] # x", 4, "after the value"),
        ("\u{FEFF}{}", 0, "byte order mark"),
        // Numbers outside the grammar.
        ("NaN", 0, "unexpected 'N'"),
        ("[Infinity]", 1, "unexpected 'I'"),
        ("[-Infinity]", 2, "expected a digit after '-'"),
        ("[nan]", 2, "'null'"),
        ("[01]", 1, "leading zero"),
        ("[-01]", 1, "leading zero"),
        ("[00]", 1, "leading zero"),
        ("[1.]", 3, "expected a digit after '.'"),
        ("[.5]", 1, "unexpected '.'"),
        ("[+1]", 1, "unexpected '+'"),
        ("[1e]", 3, "exponent"),
        ("[1e+]", 4, "exponent"),
        ("[-]", 2, "expected a digit after '-'"),
        ("[0x10]", 2, "unexpected 'x'"),
        ("[1.5e400]", 1, "out of range"),
        ("[-1e400]", 1, "out of range"),
        // Strings: raw control characters, bad escapes, unpaired surrogates, no end.
        ("\"a\u{0}b\"", 2, "control character 0x00"),
        ("\"\t\"", 1, "control character 0x09"),
        ("\"\n\"", 1, "control character 0x0A"),
        ("\"\u{1F}\"", 1, "control character 0x1F"),
        (#""\x""#, 1, "invalid escape"),
        (#""\'""#, 1, "invalid escape"),
        (#""\U0041""#, 1, "invalid escape"),
        (#""\u12""#, 5, "4 hex digits"),
        (#""\u12G4""#, 5, "4 hex digits"),
        (#""\ud800""#, 1, "unpaired surrogate"),
        (#""\ud800x""#, 1, "unpaired surrogate"),
        (#""\ud800\u0041""#, 1, "unpaired surrogate"),
        (#""\ud800\ud800""#, 1, "unpaired surrogate"),
        (#""\udc00""#, 1, "unpaired surrogate"),
        (#""\udc00\ud800""#, 1, "unpaired surrogate"),
        (#""abc"#, 0, "unterminated string"),
        ("\"\\", 2, "unterminated string"),
        // Duplicate keys, compared after decoding escapes (and by canonical equivalence).
        (#"{"a":1,"a":2}"#, 7, "duplicate key \"a\""),
        (#"{"a":1,"\u0061":2}"#, 7, "duplicate key \"a\""),
        (#"{"x":{"b":1,"b":1}}"#, 12, "duplicate key \"b\""),
        (#"{"\u00e9":1,"e\u0301":2}"#, 12, "duplicate key"),
        // Anything after the value.
        ("{} x", 3, "after the value"),
        ("1 2", 2, "after the value"),
        ("[1]]", 3, "after the value"),
        (#""a" "b""#, 4, "after the value"),
        ("{}\u{0}", 2, "after the value"),
        // Truncated and misshapen structure.
        ("", 0, "end of input"),
        ("   ", 3, "end of input"),
        ("[1", 2, "end of input, expected ',' or ']'"),
        (#"{"a":1"#, 6, "end of input, expected ',' or '}'"),
        (#"{"a""#, 4, "end of input, expected ':'"),
        (#"{"a":"#, 5, "end of input, expected a value"),
        (#"{"a" 1}"#, 5, "expected ':'"),
        ("{1:2}", 1, "expected a string key"),
        ("{a:1}", 1, "expected a string key"),
        ("['a']", 1, "expected a value"),
        ("[1 2]", 3, "expected ',' or ']'"),
        (#"{"a":1 "b":2}"#, 7, "expected ',' or '}'"),
        ("[1}", 2, "expected ',' or ']'"),
        ("True", 0, "unexpected 'T'"),
        ("[tru]", 4, "'true'"),
        ("[truex]", 5, "unexpected 'x'"),
    ])
    func malformed(text: String, byte: Int, mentions: String) {
        expectMalformed(at: byte, mentions: mentions) { try parse(text) }
    }

    @Test("invalid UTF-8 is rejected inside and outside strings", arguments: [
        ([0x22, 0xFF, 0x22], 1, "invalid UTF-8 byte 0xFF"),
        ([0x22, 0x80, 0x22], 1, "invalid UTF-8 byte 0x80"),                // lone continuation byte
        ([0x22, 0xC0, 0xAF, 0x22], 1, "invalid UTF-8 byte 0xC0"),          // overlong '/'
        ([0x22, 0xE0, 0x80, 0xAF, 0x22], 1, "invalid UTF-8 sequence"),     // overlong '/'
        ([0x22, 0xED, 0xA0, 0x80, 0x22], 1, "invalid UTF-8 sequence"),     // encoded surrogate D800
        ([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], 1, "invalid UTF-8 sequence"), // U+110000
        ([0x22, 0xF5, 0x80, 0x80, 0x80, 0x22], 1, "invalid UTF-8 byte 0xF5"),
        ([0x22, 0xE2, 0x82, 0x22], 1, "invalid UTF-8 sequence"),           // truncated '€'
        ([0x22, 0xE2, 0x82], 1, "invalid UTF-8 sequence"),                 // truncated at the end
        ([0x5B, 0xC3, 0xA9, 0x5D], 1, "unexpected byte 0xC3"),             // [é] outside a string
    ] as [([UInt8], Int, String)])
    func invalidUTF8(bytes: [UInt8], byte: Int, mentions: String) {
        expectMalformed(at: byte, mentions: mentions) { try parse(bytes: bytes) }
    }

    @Test("nesting: 64 levels are accepted, 65 rejected, 100 000 rejected at once")
    func depth() throws {
        func arrays(_ depth: Int) -> String { String(repeating: "[", count: depth) + String(repeating: "]", count: depth) }
        func objects(_ depth: Int) -> String {
            String(repeating: #"{"k":"#, count: depth - 1) + "{}" + String(repeating: "}", count: depth - 1)
        }
        var expected = JSONValue.array([])
        for _ in 1 ..< 64 { expected = .array([expected]) }
        #expect(try parse(arrays(64)) == expected)
        _ = try parse(objects(64))
        expectMalformed(at: 64, mentions: "nested deeper than 64 levels") { try parse(arrays(65)) }
        expectMalformed(at: 5 * 64, mentions: "nested deeper than 64 levels") { try parse(objects(65)) }
        expectMalformed(at: 3, mentions: "nested deeper than 3 levels") { try parse("[[[[]]]]", maximumDepth: 3) }
        // A deep document is refused at its 65th bracket, before the rest is even looked at.
        let start = Date()
        expectMalformed(at: 64, mentions: "nested") { try parse(String(repeating: "[", count: 100_000)) }
        expectMalformed(at: 64, mentions: "nested") { try parse(arrays(100_000)) }
        #expect(Date().timeIntervalSince(start) < 5)
    }

    @Test("the length limit counts UTF-8 bytes")
    func length() throws {
        #expect(try parse(#""é12345""#, maximumLength: 9) == .string("é12345"))
        expectMalformed(at: 8, mentions: "longer than the limit of 8 bytes") { try parse(#""é12345""#, maximumLength: 8) }
    }

    @Test("a document of about 1 MiB parses (in linear time)")
    func largeDocument() throws {
        let item = #"{"name":"layer.\u00e9","out":64,"ratio":0.125,"tags":["a","bc"],"on":true,"off":null}"#
        let count = (1 << 20) / (item.utf8.count + 1) - 1
        let text = "[" + Array(repeating: item, count: count).joined(separator: ",") + "]"
        #expect(text.utf8.count <= 1 << 20)
        guard case .array(let items) = try parse(text) else {
            Issue.record("not an array")
            return
        }
        #expect(items.count == count)
        #expect(items.last == .object([
            ("name", .string("layer.é")), ("out", integer(64)), ("ratio", .number(0.125, integer: nil)),
            ("tags", .array([.string("a"), .string("bc")])), ("on", .bool(true)), ("off", .null),
        ]))
        // One long string and one long number.
        let long = String(repeating: "x", count: 1 << 19)
        #expect(try parse("\"\(long)\"") == .string(long))
        #expect(try parse("0." + String(repeating: "0", count: 100_000) + "1e100001") == .number(1, integer: nil))
    }

    /// Whatever StrictJSON accepts, JSONSerialization must accept too, with the same value.
    /// Numbers that are not integers may differ by a few ulps: Foundation goes through
    /// NSDecimalNumber for long literals, which does not round correctly.
    @Test("5000 random mutations of valid documents: no crash, and agreement with Foundation")
    func mutations() throws {
        let seeds = [
            #"{"name":"conv1","out":16,"ratio":0.25,"flags":[true,false,null],"nested":{"a":[1,-2,3.5e-2,{"b":"x\"y\\z\/\u00e9\ud83d\ude00"}]},"empty":{},"list":[]}"#,
            #"[1,-0,0.5,1E+2,12345678901234567890,"tab\tnew\nline","é€😀",-9223372036854775808]"#,
            #" { "k" : { "k" : { "k" : [ [ [ 0 ] ] ] } } , "s" : "\u0041" } "#,
            #"{"preset":"resnet20","width":0.5,"input":[3,32,32],"classes":10}"#,
        ].map { Array($0.utf8) }
        let alphabet = Array(#"{}[]:,"\ 0123456789-+.eEtrufalsn/"#.utf8) + [0x00, 0x09, 0x0A, 0x1F, 0x7F, 0xC3, 0xA9, 0xED, 0xA0, 0xFF]
        var random = MutationGenerator(state: 20_250_601)
        var accepted = 0, rejected = 0
        for _ in 0 ..< 5000 {
            var bytes = seeds[Int.random(in: 0 ..< seeds.count, using: &random)]
            for _ in 0 ..< Int.random(in: 1 ... 3, using: &random) {
                let index = Int.random(in: 0 ... bytes.count, using: &random)
                let symbol = alphabet[Int.random(in: 0 ..< alphabet.count, using: &random)]
                switch Int.random(in: 0 ..< 6, using: &random) {
                case 0 where index < bytes.count: bytes[index] = symbol
                case 1: bytes.insert(symbol, at: index)
                case 2 where index < bytes.count: bytes.remove(at: index)
                case 3:
                    let end = min(bytes.count, index + Int.random(in: 1 ... 8, using: &random))
                    bytes.insert(contentsOf: bytes[index ..< end], at: Int.random(in: 0 ... bytes.count, using: &random))
                case 4: bytes.removeSubrange(index...)
                default: if index < bytes.count { bytes[index] = UInt8.random(in: 0 ... 255, using: &random) }
                }
            }
            let ours: JSONValue
            do {
                ours = try parse(bytes: bytes)
            } catch let error as ReparoError {
                guard case .invalidArgument(let message) = error, message.hasPrefix("doc: malformed JSON at byte ") else {
                    Issue.record("unexpected error \(error) for \(String(decoding: bytes, as: UTF8.self))")
                    continue
                }
                rejected += 1
                continue
            }
            accepted += 1
            let text = String(decoding: bytes, as: UTF8.self)
            guard let theirs = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]) else {
                Issue.record("accepted, but Foundation rejects: \(text)")
                continue
            }
            #expect(agrees(ours, theirs), "differs from Foundation: \(text)")
        }
        // Both outcomes must be well represented, or the test checks little.
        #expect(accepted > 250 && rejected > 250, "accepted \(accepted), rejected \(rejected)")
    }

    private func agrees(_ ours: JSONValue, _ theirs: Any) -> Bool {
        switch ours {
        case .null: return theirs is NSNull
        case .bool(let flag): return (theirs as? Bool) == flag
        case .number(let value, let integer):
            guard let number = theirs as? NSNumber else { return false }
            if let integer { return number.int64Value == Int64(integer) }
            let difference = abs(number.doubleValue - value)
            return difference <= 4 * value.ulp || difference == 0
        case .string(let string): return (theirs as? String) == string
        case .array(let items):
            guard let array = theirs as? [Any], array.count == items.count else { return false }
            return zip(items, array).allSatisfy { agrees($0, $1) }
        case .object(let members):
            guard let dictionary = theirs as? [String: Any], dictionary.count == members.count else { return false }
            return members.allSatisfy { member in dictionary[member.key].map { agrees(member.value, $0) } ?? false }
        }
    }
}

@Suite("JSONObject on the strict parser")
struct JSONObjectTests {
    @Test("integers come from integer literals only; true is not a number, 1 is not a bool")
    func kinds() throws {
        var object = try JSONObject.parse(#"{"n":3,"x":3.0,"e":3e0,"big":30000000000000000000,"t":true,"s":"3","z":null}"#,
                                          context: "opts")
        #expect(try object.int("n", default: 0, in: 0...9) == 3)
        #expect(try object.double("n", default: 0, in: 0...9) == 3)
        #expect(try object.double("x", default: 0, in: 0...9) == 3)
        #expect(try object.int("z", default: 7, in: 0...9) == 7)
        for key in ["x", "e", "big", "t", "s"] {
            #expect(throws: ReparoError.invalidArgument("opts.\(key): expected an integer" + (["x", "e"].contains(key) ? ", got 3.0" : key == "big" ? ", got 3e+19" : ""))) {
                _ = try object.int(key, default: 0, in: 0...9)
            }
        }
        #expect(throws: ReparoError.invalidArgument("opts.t: expected a number")) { _ = try object.double("t", default: 0, in: 0...9) }
        #expect(throws: ReparoError.invalidArgument("opts.n: expected true or false")) { _ = try object.bool("n", default: false) }
        #expect(try object.bool("t", default: false))
        try object.finish()
    }

    @Test("nested objects and array elements are read from the JSONValue tree, in document order")
    func nested() throws {
        var object = try JSONObject.parse(#"{"o":{"b":1,"a":2.5},"l":[4,"x",4.0],"w":"all","n":["a","b"],"bad":[1]}"#,
                                          context: "opts")
        var inner = try #require(try object.optionalObject("o"))
        #expect(inner.members.map(\.key) == ["b", "a"])
        #expect(try inner.int("b", default: 0, in: 0...9) == 1)
        #expect(try inner.double("a", default: 0, in: 0...9) == 2.5)
        try inner.finish()
        let items = try #require(try object.optionalArray("l"))
        #expect(try JSONObject.integer(items[0], name: "l[0]", in: 0...9) == 4)
        #expect(throws: ReparoError.invalidArgument("l[1]: expected an integer")) { _ = try JSONObject.integer(items[1], name: "l[1]", in: 0...9) }
        #expect(throws: ReparoError.invalidArgument("l[2]: expected an integer, got 4.0")) { _ = try JSONObject.integer(items[2], name: "l[2]", in: 0...9) }
        #expect(throws: ReparoError.invalidArgument("l[0]: 4 is out of range 5...9")) { _ = try JSONObject.integer(items[0], name: "l[0]", in: 5...9) }
        // "A word or a list of names", one reader for expand's layers and the trainer's kd_layers.
        enum Choice: Equatable { case pruned, all, names([String]) }
        let words: KeyValuePairs<String, Choice> = ["pruned": .pruned, "all": .all]
        #expect(try object.optionalWordOrNames("w", words: words, names: Choice.names) == .all)
        #expect(try object.optionalWordOrNames("n", words: words, names: Choice.names) == .names(["a", "b"]))
        #expect(try object.optionalWordOrNames("missing", words: words, names: Choice.names) == nil)
        #expect(throws: ReparoError.invalidArgument("opts.bad[0]: expected a layer name")) {
            _ = try object.optionalWordOrNames("bad", words: words, names: Choice.names)
        }
        #expect(throws: ReparoError.invalidArgument(#"opts.w: "all" is not "conv" or a list of layer names"#)) {
            _ = try object.optionalWordOrNames("w", words: ["conv": Choice.pruned], names: Choice.names)
        }
        #expect(throws: ReparoError.invalidArgument(#"opts.o: expected "pruned", "all" or a list of layer names"#)) {
            _ = try object.optionalWordOrNames("o", words: words, names: Choice.names)
        }
        try object.finish()
        #expect(throws: ReparoError.invalidArgument("spec.layers[0]: expected an object")) {
            _ = try JSONObject(.array([]), context: "spec.layers[0]")
        }
    }

    @Test("errors name the context; limits are JSONObject's")
    func errors() {
        #expect(throws: ReparoError.invalidArgument("options: malformed JSON at byte 7: trailing comma before '}'")) {
            _ = try JSONObject.parse(#"{"a":1,}"#, context: "options")
        }
        #expect(throws: ReparoError.invalidArgument("options: expected a JSON object")) {
            _ = try JSONObject.parse("[1]", context: "options")
        }
        #expect(throws: ReparoError.invalidArgument("options: malformed JSON at byte 64: nested deeper than 64 levels")) {
            _ = try JSONObject.parseValue(String(repeating: "[", count: 65), context: "options")
        }
        #expect(throws: ReparoError.invalidArgument("options: malformed JSON at byte \(1 << 20): longer than the limit of \(1 << 20) bytes")) {
            _ = try JSONObject.parseValue("\"" + String(repeating: "x", count: 1 << 20) + "\"", context: "options")
        }
    }
}
