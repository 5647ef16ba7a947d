#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Testing
@testable import ReparoCore

// Expected bytes and values here are written out by hand (the F32 bit patterns of 1.0, -2.0,
// 0.5, 3.0 are 3F800000, C0000000, 3F000000, 40400000) or are the test's own inputs; none is
// produced by the code under test.

// MARK: - Helpers

private enum ErrorKind: String {
    case invalidArgument, io, format, outOfMemory

    func matches(_ error: ReparoError) -> Bool {
        switch self {
        case .invalidArgument: if case .invalidArgument = error { return true }
        case .io: if case .io = error { return true }
        case .format: if case .format = error { return true }
        case .outOfMemory: if case .outOfMemory = error { return true }
        }
        return false
    }
}

/// Runs `body`, which must throw a ReparoError of `kind` whose message contains `mentions`.
private func expectError<R>(_ kind: ErrorKind, mentions: String? = nil,
                            sourceLocation: SourceLocation = #_sourceLocation,
                            _ body: () throws -> R) {
    let error = #expect(throws: ReparoError.self, sourceLocation: sourceLocation) { _ = try body() }
    guard let error else { return }
    #expect(kind.matches(error), "expected .\(kind.rawValue), got \(error)", sourceLocation: sourceLocation)
    if let mentions {
        #expect(error.message.contains(mentions), "message \"\(error.message)\" should mention \"\(mentions)\"",
                sourceLocation: sourceLocation)
    }
}

private func decode(_ bytes: [UInt8]) throws -> (metadata: [String: String], tensors: [NamedTensor]) {
    try bytes.withUnsafeBytes { try SafeTensors.decode($0) }
}

private func littleEndianBytes(_ value: UInt64) -> [UInt8] {
    (0 ..< 8).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
}

/// A file image: header length (little-endian), the header text, then `data`.
private func image(_ header: String, data: [UInt8] = []) -> [UInt8] {
    littleEndianBytes(UInt64(header.utf8.count)) + Array(header.utf8) + data
}

/// One tensor entry of a header, written by hand.
private func entry(_ shape: String, _ offsets: String, dtype: String = "\"F32\"") -> String {
    "{\"dtype\":\(dtype),\"shape\":\(shape),\"data_offsets\":\(offsets)}"
}

private func tensor(_ name: String, _ shape: [Int], _ values: [Float]) throws -> NamedTensor {
    NamedTensor(name: name, shape: shape, values: try FloatBuffer(values))
}

private func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

private func makeTemporaryDirectory() throws -> String {
    var template = Array("/tmp/reparo-safetensors-XXXXXX".utf8CString)
    let created = template.withUnsafeMutableBufferPointer { buffer -> Bool in
        guard let base = buffer.baseAddress else { return false }
        return mkdtemp(base) != nil
    }
    try #require(created)
    return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

private func removeDirectory(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

private func fileBytes(_ path: String) -> [UInt8]? {
    FileManager.default.contents(atPath: path).map { [UInt8]($0) }
}

private func listing(_ directory: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
}

/// SplitMix64, local to these tests so that they depend on nothing but the code under test.
private struct TestGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A small valid file with several tensors, including a scalar and an empty one.
private func smallValidFile() throws -> [UInt8] {
    try SafeTensors.encode(metadata: ["format": "pt"], tensors: [
        tensor("conv.weight", [2, 1, 1, 2], [1, -2, 0.5, 3]),
        tensor("conv.bias", [2], [0.25, -0.125]),
        tensor("scale", [], [7]),
        tensor("empty", [0], []),
    ])
}

// MARK: - Round trip and independent oracles

@Test func roundTripIsBitIdentical() throws {
    let special: [Float] = [
        -0.0, .infinity, -.infinity, Float(bitPattern: 0x7FC0_0001), Float(bitPattern: 0x7F80_0001),
        .leastNonzeroMagnitude, -.greatestFiniteMagnitude, Float(bitPattern: 0x0001_2345),
    ]
    let tensors = [
        try tensor("zeta.weight", [2, 4], special),
        try tensor("alpha", [], [3.25]),
        try tensor("empty", [0], []),
        try tensor("empty.inner", [2, 0, 3], []),
        try tensor("Gewicht.ä/β", [3, 1], [1, 2, 3]),
        try tensor("we\"ird\\name\n\u{01}", [1, 1, 1, 1, 1, 1, 1, 2], [-1, 1]),
    ]
    let metadata = ["format": "pt", "quote\"d": "back\\slash", "control": "\u{01}\t\n", "unicode": "äβ😀", "": "empty key"]
    let bytes = try SafeTensors.encode(metadata: metadata, tensors: tensors)
    let decoded = try decode(bytes)

    #expect(decoded.metadata == metadata)
    // Encode writes data in the given order, and decode returns file offset order.
    #expect(decoded.tensors.map(\.name) == tensors.map(\.name))
    for (original, copy) in zip(tensors, decoded.tensors) {
        #expect(copy.shape == original.shape, "\(original.name)")
        #expect(bits(copy.values.array) == bits(original.values.array), "\(original.name)")
    }
    #expect(decoded.tensors[1].values.count == 1)
    #expect(decoded.tensors[2].values.count == 0)
}

@Test func randomRoundTripsAreBitIdentical() throws {
    var generator = TestGenerator(state: 42)
    for iteration in 0 ..< 50 {
        var tensors: [NamedTensor] = []
        for index in 0 ..< Int.random(in: 0 ... 5, using: &generator) {
            let shape = (0 ..< Int.random(in: 0 ... 4, using: &generator)).map { _ in Int.random(in: 0 ... 5, using: &generator) }
            let count = shape.reduce(1, *)
            let values = (0 ..< count).map { _ in Float(bitPattern: UInt32.random(in: 0 ... UInt32.max, using: &generator)) }
            tensors.append(try tensor("t\(index)", shape, values))
        }
        let decoded = try decode(SafeTensors.encode(metadata: ["iteration": "\(iteration)"], tensors: tensors))
        #expect(decoded.metadata == ["iteration": "\(iteration)"])
        #expect(decoded.tensors.map(\.name) == tensors.map(\.name))
        for (original, copy) in zip(tensors, decoded.tensors) {
            #expect(copy.shape == original.shape)
            #expect(bits(copy.values.array) == bits(original.values.array))
        }
    }
}

@Test func handBuiltImageDecodes() throws {
    // Header keys in arbitrary order, no padding: data starts at an odd file offset.
    let header = #"{"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}, "__metadata__":{"source":"hand"},"# +
        #""a":{"dtype":"F32","shape":[1,1],"data_offsets":[8,12]},"z":{"dtype":"F32","shape":[0,3],"data_offsets":[12,12]},"# +
        #""s":{"dtype":"F32","shape":[],"data_offsets":[12,16]}}"#
    try #require((8 + header.utf8.count) % 2 == 1)
    let data: [UInt8] = [
        0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0,  // b = [1.0, -2.0]
        0x00, 0x00, 0x40, 0x40,                          // a = [[3.0]]
        0x00, 0x00, 0x00, 0x3F,                          // s = 0.5
    ]
    let file = image(header, data: data)

    // Also from an odd base address, so that no load can rely on alignment.
    var shifted = [UInt8](repeating: 0xAA, count: file.count + 1)
    shifted.replaceSubrange(1..., with: file)
    let fromShifted = try shifted.withUnsafeBytes { try SafeTensors.decode(UnsafeRawBufferPointer(rebasing: $0[1...])) }

    for decoded in [try decode(file), fromShifted] {
        #expect(decoded.metadata == ["source": "hand"])
        // File offset order; the empty "z" and scalar "s" share offset 12, the empty one first.
        #expect(decoded.tensors.map(\.name) == ["b", "a", "z", "s"])
        #expect(decoded.tensors.map(\.shape) == [[2], [1, 1], [0, 3], []])
        #expect(decoded.tensors.map { $0.values.array } == [[1.0, -2.0], [3.0], [], [0.5]])
    }
}

@Test func escapesAndWhitespaceInTheHeaderDecode() throws {
    // Pretty-printed, with every JSON escape in names and metadata.
    let header = "\n{\t\"__metadata__\" :\r\n {\"\\u00e9\\ud83d\\ude00\" : \"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\"},\n" +
        "  \"w\\u00e9\\n\" : { \"data_offsets\" : [ 0 , 4 ] , \"shape\" : [ ] , \"dtype\" : \"F32\" }\n}\n   "
    // The reader requires '{' first, as the reference implementation does.
    expectError(.format, mentions: "JSON object") { try decode(image(header, data: [0, 0, 0x80, 0x3F])) }
    let decoded = try decode(image(String(header.dropFirst()), data: [0, 0, 0x80, 0x3F]))
    #expect(decoded.metadata == ["\u{E9}\u{1F600}": "\"\\/\u{8}\u{C}\n\r\t\u{0}"])
    #expect(decoded.tensors.map(\.name) == ["w\u{E9}\n"])
    #expect(decoded.tensors.first?.values.array == [1.0])
}

@Test func encodeProducesTheDocumentedBytes() throws {
    let bytes = try SafeTensors.encode(metadata: ["format": "pt"], tensors: [
        tensor("b", [2], [1, -2]),
        tensor("a", [], [0.5]),
    ])
    // __metadata__ first, then tensor keys sorted; data in the given order.
    var header = #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[],"data_offsets":[8,12]},"# +
        #""b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
    while header.utf8.count % 8 != 0 { header += " " }
    let expected = littleEndianBytes(UInt64(header.utf8.count)) + Array(header.utf8) + [
        0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0,  // b
        0x00, 0x00, 0x00, 0x3F,                          // a
    ]
    #expect(bytes == expected)
}

@Test func encodeWithoutMetadataOmitsTheKey() throws {
    let bytes = try SafeTensors.encode(metadata: [:], tensors: [tensor("w", [1], [1])])
    let header = String(decoding: bytes[8 ..< bytes.count - 4], as: UTF8.self)
    #expect(header == #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}  "#)  // 54 bytes + 2
    #expect(try decode(bytes).metadata.isEmpty)
}

@Test func nestingInsideStringsIsNotCounted() throws {
    let brackets = String(repeating: "[{", count: 200)
    let header = "{\"__metadata__\":{\"k\":\"\(brackets)\\\"\(brackets)\"},\"w\":\(entry("[1]", "[0,4]"))}"
    let decoded = try decode(image(header, data: [0, 0, 0x80, 0x3F]))
    #expect(decoded.metadata == ["k": brackets + "\"" + brackets])
    #expect(decoded.tensors.first?.values.array == [1.0])
}

// MARK: - Malformed files

@Test func filesShorterThanEightBytesAreRejected() {
    for length in 0 ..< 8 {
        expectError(.format, mentions: "8-byte") { try decode([UInt8](repeating: 0, count: length)) }
    }
}

@Test func headerLengthsAreChecked() {
    let rest = [UInt8](repeating: UInt8(ascii: " "), count: 16)
    expectError(.format, mentions: "header length is 0") { try decode(littleEndianBytes(0) + rest) }
    for length: UInt64 in [.max, 1 << 63, (1 << 63) - 1, 1 << 32, UInt64(SafeTensors.maximumHeaderBytes) + 1] {
        expectError(.format, mentions: "limit") { try decode(littleEndianBytes(length) + rest) }
    }
    expectError(.format, mentions: "follow") { try decode(littleEndianBytes(UInt64(SafeTensors.maximumHeaderBytes)) + rest) }
    expectError(.format, mentions: "follow") { try decode(littleEndianBytes(17) + rest) }
}

@Test func invalidUTF8HeaderIsRejected() {
    for bad: [UInt8] in [[0xFF], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xE2, 0x82]] {
        let header = Array("{\"".utf8) + bad + Array("\":{}}".utf8)
        expectError(.format, mentions: "UTF-8") { try decode(littleEndianBytes(UInt64(header.count)) + header) }
    }
}

@Test func deepNestingIsRejectedWithoutRecursion() {
    // Wherever the nesting starts, the schema allows no deeper value there.
    let prefixes = ["{\"__metadata__\":", "{\"__metadata__\":{\"k\":", "{\"w\":", "{\"w\":{\"shape\":",
                    "{\"w\":{\"data_offsets\":", "{\"w\":{\"x\":"]
    for prefix in prefixes {
        for depth in [65, 1_000_000] {
            let open = prefix + String(repeating: "[{\"a\":", count: depth)
            expectError(.format) { try decode(image(open)) }
            let closed = open + "1" + String(repeating: "}]", count: depth) + "}"
            expectError(.format) { try decode(image(closed)) }
        }
    }
}

/// A header (and data length) that must be rejected with `.format` naming `mentions`.
struct SafeTensorsMalformedCase: Sendable, CustomTestStringConvertible {
    var header: String
    var dataBytes: Int
    var mentions: String
    var testDescription: String { header.count > 100 ? String(header.prefix(100)) + "…" : header }

    init(_ header: String, data: Int = 0, mentions: String) {
        self.header = header
        self.dataBytes = data
        self.mentions = mentions
    }
}

private let malformedCases: [SafeTensorsMalformedCase] = {
    let w = { (shape: String, offsets: String) in "{\"w\":\(entry(shape, offsets))}" }
    var cases: [SafeTensorsMalformedCase] = [
        // Not JSON, or not an object.
        .init("{\"__metadata__\":{\"k\":\"v\"", mentions: "JSON"),
        .init("{} x", mentions: "JSON"),
        .init("{\"__metadata__\":{},}", mentions: "JSON"),
        .init("{\"__metadata__\":{\"k\":\"v\" , }}", mentions: "JSON"),
        .init("{\"__metadata__\" {}}", mentions: "JSON"),
        .init("{\"__metadata__\":{} \"w\":{}}", mentions: "JSON"),
        .init("{\"__metadata__\":{}", mentions: "JSON"),
        .init("{}\u{0}", mentions: "JSON"),
        .init("{\"__metadata__\":{\"k\":\"v}}", mentions: "JSON"),
        .init("{\"__metadata__\":{\"k\":\"\\x\"}}", mentions: "JSON"),
        .init("{\"__metadata__\":{\"k\":\"\\u12\"}}", mentions: "JSON"),
        .init("{\"__metadata__\":{\"k\":\"\\u12g4\"}}", mentions: "JSON"),
        .init("{\"__metadata__\":{\"k\":\"\\ud800\"}}", mentions: "surrogate"),
        .init("{\"__metadata__\":{\"k\":\"\\ud800\\u0041\"}}", mentions: "surrogate"),
        .init("{\"__metadata__\":{\"k\":\"\\udc00\"}}", mentions: "surrogate"),
        .init("{\"__metadata__\":{\"k\":\"v\",\"k\":\"w\"}}", mentions: "repeats key 'k'"),
        .init("\u{FEFF}{}", mentions: "JSON object"),
        .init(" {}", mentions: "JSON object"),
        .init("[1,2]", mentions: "JSON object"),
        .init("\"text\"", mentions: "JSON"),
        .init("123", mentions: "JSON"),
        .init("{\"__metadata__\":{\"k\":\"a\u{01}b\"}}", mentions: "control character"),
        .init("{\"a\u{01}b\":{}}", mentions: "control character"),
        // __metadata__.
        .init("{\"__metadata__\":[]}", mentions: "__metadata__"),
        .init("{\"__metadata__\":\"text\"}", mentions: "__metadata__"),
        .init("{\"__metadata__\":{\"k\":1}}", mentions: "'k'"),
        .init("{\"__metadata__\":{\"k\":null}}", mentions: "'k'"),
        .init("{\"__metadata__\":{\"k\":true}}", mentions: "'k'"),
        .init("{\"__metadata__\":{\"k\":{}}}", mentions: "'k'"),
        .init("{\"__metadata__\":{\"k\":[\"v\"]}}", mentions: "'k'"),
        // Entries that are not objects, or have the wrong fields.
        .init("{\"w\":[1]}", mentions: "'w' is not an object"),
        .init("{\"w\":\"F32\"}", mentions: "'w' is not an object"),
        .init("{\"w\":null}", mentions: "'w' is not an object"),
        .init("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", data: 4, mentions: "lacks field 'dtype'"),
        .init("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", data: 4, mentions: "lacks field 'shape'"),
        .init("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", data: 4, mentions: "lacks field 'data_offsets'"),
        .init("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"foo\":1}}", data: 4, mentions: "'foo'"),
        .init("{\"w\":{}}", mentions: "lacks field"),
        .init("{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", data: 4, mentions: "repeats field 'dtype'"),
        .init("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"shape\":[1],\"data_offsets\":[0,4]}}", data: 4, mentions: "repeats field 'shape'"),
        .init("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"data_offsets\":[0,4]}}", data: 4, mentions: "repeats field 'data_offsets'"),
        // dtype.
        .init("{\"w\":\(entry("[1]", "[0,2]", dtype: "\"F16\""))}", data: 2, mentions: "'F16'"),
        .init("{\"w\":\(entry("[1]", "[0,4]", dtype: "\"f32\""))}", data: 4, mentions: "'f32'"),
        .init("{\"w\":\(entry("[1]", "[0,4]", dtype: "\"I32\""))}", data: 4, mentions: "'I32'"),
        .init("{\"w\":\(entry("[1]", "[0,4]", dtype: "32"))}", data: 4, mentions: "dtype"),
        .init("{\"w\":\(entry("[1]", "[0,4]", dtype: "null"))}", data: 4, mentions: "dtype"),
        // Element count overflow (of the count, and of the byte size).
        .init(w("[4294967296,4294967296]", "[0,4]"), data: 4, mentions: "overflows"),
        .init(w("[2,4611686018427387904]", "[0,4]"), data: 4, mentions: "overflows"),
        .init(w("[4611686018427387904]", "[0,4]"), data: 4, mentions: "overflows"),
        // data_offsets.
        .init(w("[1]", "[8,4]"), data: 8, mentions: "begins after it ends"),
        .init(w("[2]", "[0,4]"), data: 4, mentions: "needs 8"),
        .init(w("[1]", "[0,8]"), data: 8, mentions: "needs 4"),
        .init(w("[1]", "[4,8]"), data: 4, mentions: "beyond"),
        .init(w("[0]", "[8,8]"), data: 4, mentions: "beyond"),
        // The data region must be tiled exactly.
        .init("{\"a\":\(entry("[2]", "[0,8]")),\"b\":\(entry("[2]", "[4,12]"))}", data: 12, mentions: "overlaps"),
        .init("{\"a\":\(entry("[2]", "[0,8]")),\"b\":\(entry("[0]", "[4,4]"))}", data: 8, mentions: "overlaps"),
        .init("{\"a\":\(entry("[1]", "[0,4]")),\"b\":\(entry("[1]", "[0,4]"))}", data: 4, mentions: "overlaps"),
        .init("{\"a\":\(entry("[1]", "[0,4]")),\"b\":\(entry("[1]", "[8,12]"))}", data: 12, mentions: "hole"),
        .init(w("[1]", "[4,8]"), data: 8, mentions: "hole"),
        .init(w("[1]", "[0,4]"), data: 8, mentions: "after the last tensor"),
        .init("{}", data: 4, mentions: "after the last tensor"),
        .init("{\"__metadata__\":{}}", data: 1, mentions: "after the last tensor"),
        // Names.
        .init("{\"\":\(entry("[1]", "[0,4]"))}", data: 4, mentions: "empty name"),
        .init("{\"a\":\(entry("[1]", "[0,4]")),\"a\":\(entry("[1]", "[4,8]"))}", data: 8, mentions: "duplicate key 'a'"),
        .init("{\"a\":\(entry("[1]", "[0,4]")),\"a\":\(entry("[1]", "[0,4]"))}", data: 4, mentions: "duplicate key 'a'"),
        .init("{\"a\":\(entry("[1]", "[0,4]")),\"\\u0061\":\(entry("[1]", "[4,8]"))}", data: 8, mentions: "duplicate key 'a'"),
        .init("{\"__metadata__\":{},\"__metadata__\":{}}", mentions: "duplicate key '__metadata__'"),
        // Canonically equivalent names are one key to Swift, so they cannot both be tensors.
        .init("{\"\u{E1}\":\(entry("[1]", "[0,4]")),\"a\u{301}\":\(entry("[1]", "[4,8]"))}", data: 8, mentions: "duplicate key"),
    ]
    // shape must be an array of at most 8 non-negative integer literals.
    for shape in ["3", "\"[1]\"", "null", "{}", "[2.5]", "[2.0]", "[1e2]", "[true]", "[false]", "[-1]", "[\"2\"]", "[null]",
                  "[[1]]", "[1,1,1,1,1,1,1,1,1]", "[18446744073709551615]", "[9223372036854775808]",
                  "[-9223372036854775809]", "[99999999999999999999999]", "[1,-0.5]", "[01]", "[-0]", "[1,]", "[,1]",
                  "[1E0]"] {
        cases.append(.init(w(shape, "[0,4]"), data: 4, mentions: "'shape'"))
    }
    // Not JSON at all.
    for shape in ["[1 1]", "[0x1]", "[1}"] {
        cases.append(.init(w(shape, "[0,4]"), data: 4, mentions: "JSON"))
    }
    // data_offsets must be two non-negative integer literals.
    for offsets in ["4", "[]", "[0]", "[0,4,8]", "[-1,3]", "[0.0,4]", "[0,4.5]", "[true,4]", "[0,true]", "[\"0\",\"4\"]",
                    "[null,4]", "[0,18446744073709551615]", "[0,9223372036854775808]", "[-9223372036854775809,4]",
                    "[0,99999999999999999999999]", "[0,4e0]"] {
        cases.append(.init(w("[1]", offsets), data: 4, mentions: "'data_offsets'"))
    }
    return cases
}()

@Test(arguments: malformedCases)
func malformedHeaderIsFormatError(_ malformed: SafeTensorsMalformedCase) {
    let file = image(malformed.header, data: [UInt8](repeating: 0, count: malformed.dataBytes))
    expectError(.format, mentions: malformed.mentions) { try decode(file) }
}

@Test func malformedCasesDifferFromValidOnesOnlyInTheFlaw() throws {
    // Guards the malformed table: the same templates with the flaw removed do decode.
    let w = "{\"w\":\(entry("[1]", "[0,4]"))}"
    #expect(try decode(image(w, data: [0, 0, 0, 0])).tensors.count == 1)
    let ab = "{\"a\":\(entry("[1]", "[0,4]")),\"b\":\(entry("[1]", "[4,8]"))}"
    #expect(try decode(image(ab, data: [UInt8](repeating: 0, count: 8))).tensors.map(\.name) == ["a", "b"])
    let maxRank = "{\"w\":\(entry("[1,1,1,1,1,1,1,1]", "[0,4]"))}"
    #expect(try decode(image(maxRank, data: [0, 0, 0, 0])).tensors.first?.shape.count == 8)
    #expect(try decode(image("{}")).tensors.isEmpty)
    #expect(try decode(image("{\"__metadata__\":{}}")).metadata.isEmpty)
}

@Test func everyTruncationIsRejected() throws {
    let file = try smallValidFile()
    #expect(try decode(file).tensors.count == 4)
    for length in 0 ..< file.count {
        expectError(.format) { try decode(Array(file.prefix(length))) }
    }
}

@Test func randomMutationsNeverCrash() throws {
    let file = try smallValidFile()
    let headerLength = Int(file[0]) | Int(file[1]) << 8
    let header = Array(file[8 ..< 8 + headerLength])
    let data = Array(file[(8 + headerLength)...])
    let interesting = Array("\"{}[],:-.0123456789eE \\tfnu_".utf8)
    var generator = TestGenerator(state: 2024)

    /// 1-4 edits: random bytes, JSON punctuation and digits, deletions, insertions.
    func mutate(_ bytes: inout [UInt8]) {
        for _ in 0 ..< Int.random(in: 1 ... 4, using: &generator) where !bytes.isEmpty {
            let position = Int.random(in: 0 ..< bytes.count, using: &generator)
            let symbol = interesting[Int.random(in: 0 ..< interesting.count, using: &generator)]
            switch Int.random(in: 0 ..< 4, using: &generator) {
            case 0: bytes[position] = UInt8.random(in: 0 ... 255, using: &generator)
            case 1: bytes[position] = symbol
            case 2: bytes.remove(at: position)
            default: bytes.insert(symbol, at: position)
            }
        }
    }

    var accepted = 0
    var rejected = 0
    for iteration in 0 ..< 10_000 {
        var mutated: [UInt8]
        if iteration % 4 != 0 {
            // Keep the length prefix consistent so that the edits reach the JSON and its checks.
            var editedHeader = header
            mutate(&editedHeader)
            var editedData = data
            if Int.random(in: 0 ..< 8, using: &generator) == 0 { mutate(&editedData) }
            mutated = littleEndianBytes(UInt64(editedHeader.count)) + editedHeader + editedData
        } else {
            mutated = file
            mutate(&mutated)
        }
        do {
            let decoded = try decode(mutated)
            accepted += 1
            // Whatever is accepted must be self-consistent, and valid JSON to an independent parser.
            var names: Set<String> = []
            for tensor in decoded.tensors {
                #expect(!tensor.name.isEmpty && names.insert(tensor.name).inserted)
                #expect(tensor.shape.allSatisfy { $0 >= 0 } && tensor.shape.count <= 8)
                #expect(tensor.shape.reduce(1, *) == tensor.values.count)
            }
            let length = Int(mutated[0]) | Int(mutated[1]) << 8 | Int(mutated[2]) << 16
            let parsed = try? JSONSerialization.jsonObject(with: Data(mutated[8 ..< 8 + length])) as? [String: Any]
            #expect(parsed.map { Set($0.keys.filter { $0 != "__metadata__" }) } == names)
            #expect(parsed.map { ($0["__metadata__"] as? [String: String]) ?? [:] } == decoded.metadata)
        } catch let error as ReparoError {
            rejected += 1
            #expect(ErrorKind.format.matches(error), "unexpected \(error)")
        }
    }
    #expect(accepted + rejected == 10_000)
    // Both outcomes occur, so the mutations exercise the checks rather than only the framing.
    #expect(rejected > 1_000 && accepted > 100)
}

// MARK: - read(path:)

@Test func readReportsFileSystemErrors() throws {
    let directory = try makeTemporaryDirectory()
    defer { removeDirectory(directory) }
    let missing = directory + "/missing.safetensors"
    expectError(.io, mentions: missing) { try SafeTensors.read(path: missing) }
    expectError(.io, mentions: directory) { try SafeTensors.read(path: directory) }
    // A FIFO would block a plain open(2) until a writer appears.
    let fifo = directory + "/fifo"
    try #require(mkfifo(fifo, 0o600) == 0)
    expectError(.io, mentions: fifo) { try SafeTensors.read(path: fifo) }
    expectError(.invalidArgument, mentions: "NUL") { try SafeTensors.read(path: directory + "/a\u{0}b") }
}

@Test func readReportsMalformedContentsWithThePath() throws {
    let directory = try makeTemporaryDirectory()
    defer { removeDirectory(directory) }
    let empty = directory + "/empty.safetensors"
    try #require(FileManager.default.createFile(atPath: empty, contents: Data()))
    expectError(.format, mentions: empty) { try SafeTensors.read(path: empty) }
    let truncated = directory + "/truncated.safetensors"
    try #require(FileManager.default.createFile(atPath: truncated, contents: Data(try smallValidFile().dropLast())))
    expectError(.format, mentions: truncated) { try SafeTensors.read(path: truncated) }
}

@Test func readRefusesOversizedFileBeforeReading() throws {
    let directory = try makeTemporaryDirectory()
    defer { removeDirectory(directory) }
    // Sparse: takes no disk space, and would take 8 GiB of memory if it were read.
    let path = directory + "/huge.safetensors"
    let descriptor = open(path, O_WRONLY | O_CREAT, 0o600)
    try #require(descriptor >= 0)
    let truncated = ftruncate(descriptor, off_t(SafeTensors.maximumFileBytes + 1))
    close(descriptor)
    try #require(truncated == 0)
    expectError(.outOfMemory, mentions: path) { try SafeTensors.read(path: path) }
}

// MARK: - write(path:)

@Test func writeThenReadRoundTrips() throws {
    let directory = try makeTemporaryDirectory()
    defer { removeDirectory(directory) }
    let path = directory + "/model.safetensors"
    let tensors = [try tensor("b", [2], [1, -2]), try tensor("a", [], [0.5]), try tensor("e", [0], [])]
    try SafeTensors.write(path: path, metadata: ["k": "v"], tensors: tensors)

    #expect(fileBytes(path) == (try SafeTensors.encode(metadata: ["k": "v"], tensors: tensors)))
    let loaded = try SafeTensors.read(path: path)
    #expect(loaded.metadata == ["k": "v"])
    #expect(loaded.tensors.map(\.name) == ["b", "a", "e"])
    #expect(loaded.tensors.map { $0.values.array } == [[1, -2], [0.5], []])
    #expect(listing(directory) == ["model.safetensors"])
    var info = stat()
    try #require(stat(path, &info) == 0)
    #expect(info.st_mode & 0o777 == 0o644)
}

@Test func writeHandlesUnusualFileNames() throws {
    let directory = try makeTemporaryDirectory()
    defer { removeDirectory(directory) }
    // A leading combining mark (which joins the "/" into one Character), spaces, and a name
    // of 250 bytes: too long to take a temporary-name suffix without shortening it.
    let names = ["\u{301}w.safetensors", "with space.safetensors", String(repeating: "n", count: 238) + ".safetensors"]
    for name in names {
        try SafeTensors.write(path: directory + "/" + name, metadata: [:], tensors: [try tensor("w", [1], [2])])
        #expect(try SafeTensors.read(path: directory + "/" + name).tensors.first?.values.array == [2])
    }
    #expect(Set(listing(directory).map { Array($0.utf8) }) == Set(names.map { Array($0.utf8) }))
}

@Test func writeLargeTensorStreamsEveryChunk() throws {
    let directory = try makeTemporaryDirectory()
    defer { removeDirectory(directory) }
    let path = directory + "/large.safetensors"
    // Several 16384-float chunks plus a partial one.
    let values = (0 ..< 50_001).map { Float($0) * 0.5 - 7 }
    try SafeTensors.write(path: path, metadata: [:], tensors: [try tensor("w", [50_001], values)])
    #expect(try SafeTensors.read(path: path).tensors.first?.values.array == values)
}

@Test func writeReplacesAnExistingFileAndKeepsItsPermissions() throws {
    let directory = try makeTemporaryDirectory()
    defer { removeDirectory(directory) }
    let path = directory + "/model.safetensors"
    try SafeTensors.write(path: path, metadata: ["version": "A"], tensors: [try tensor("w", [3], [1, 2, 3])])
    try #require(chmod(path, 0o600) == 0)
    try SafeTensors.write(path: path, metadata: ["version": "B"], tensors: [try tensor("v", [1], [9])])

    let loaded = try SafeTensors.read(path: path)
    #expect(loaded.metadata == ["version": "B"])
    #expect(loaded.tensors.map(\.name) == ["v"])
    #expect(loaded.tensors.first?.values.array == [9])
    #expect(listing(directory) == ["model.safetensors"])
    var info = stat()
    try #require(stat(path, &info) == 0)
    #expect(info.st_mode & 0o777 == 0o600)
}

@Test func failedWriteLeavesThePreviousFileAndNoTemporaryFile() throws {
    let directory = try makeTemporaryDirectory()
    defer { removeDirectory(directory) }
    let path = directory + "/a.safetensors"
    try SafeTensors.write(path: path, metadata: [:], tensors: [try tensor("w", [2], [1, 2])])
    let before = try #require(fileBytes(path))
    let tensors = [try tensor("w", [1], [5])]

    // Missing directory: the temporary file cannot even be created.
    let missing = directory + "/missing/b.safetensors"
    expectError(.io, mentions: missing) { try SafeTensors.write(path: missing, metadata: [:], tensors: tensors) }

    // The target is a non-empty directory: everything is written, then the rename fails.
    let occupied = directory + "/sub"
    try #require(mkdir(occupied, 0o755) == 0)
    try #require(FileManager.default.createFile(atPath: occupied + "/keep", contents: Data([1])))
    expectError(.io, mentions: occupied) { try SafeTensors.write(path: occupied, metadata: [:], tensors: tensors) }
    #expect(listing(occupied) == ["keep"])

    // A path that names a directory by its trailing slash.
    expectError(.io, mentions: occupied) { try SafeTensors.write(path: occupied + "/", metadata: [:], tensors: tensors) }

    // Invalid tensors are refused before the file system is touched.
    expectError(.invalidArgument) { try SafeTensors.write(path: path, metadata: [:], tensors: [try tensor("w", [2], [5])]) }
    expectError(.invalidArgument, mentions: "NUL") { try SafeTensors.write(path: path + "\u{0}x", metadata: [:], tensors: tensors) }

    #expect(fileBytes(path) == before)
    #expect(listing(directory) == ["a.safetensors", "sub"])
}

// MARK: - encode validation

@Test func encodeRejectsInvalidTensors() throws {
    let valid = try tensor("w", [2], [1, 2])
    let cases: [(tensors: [NamedTensor], mentions: String)] = [
        ([try tensor("", [1], [1])], "empty name"),
        ([valid, try tensor("w", [1], [3])], "duplicate tensor name 'w'"),
        ([try tensor("__metadata__", [1], [1])], "reserved"),
        ([try tensor("w", [2, 2], [1, 2, 3])], "4 elements"),
        ([try tensor("w", [], [])], "1 elements"),
        ([try tensor("w", [0], [1])], "0 elements"),
        ([try tensor("w", [-1, -2], [1, 2])], "negative"),
        ([try tensor("w", [1, 1, 1, 1, 1, 1, 1, 1, 1], [1])], "9 dimensions"),
        ([try tensor("w", [Int.max, 2], [1])], "overflows"),
    ]
    for (tensors, mentions) in cases {
        expectError(.invalidArgument, mentions: mentions) { try SafeTensors.encode(metadata: [:], tensors: tensors) }
    }
    #expect(try SafeTensors.encode(metadata: [:], tensors: [valid]).count == 8 + 56 + 8)
}
