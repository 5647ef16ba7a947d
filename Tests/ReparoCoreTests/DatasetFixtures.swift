import Foundation
import Testing
@testable import ReparoCore

// Helpers shared by the dataset tests (DatasetTests.swift, GzipIDXTests.swift): scratch
// files, IDX files assembled byte by byte from the published format, and error checks.

/// A fresh directory under the system temp dir, removed when the value is released.
final class ScratchDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory
            .appendingPathComponent("reparo-dataset-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let file = path + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        return file
    }
}

func bigEndian(_ value: UInt32) -> [UInt8] {
    [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
}

/// An IDX file: magic, each dimension as a big-endian uint32, then the payload.
func idx(magic: UInt32, dims: [UInt32], payload: [UInt8]) -> [UInt8] {
    bigEndian(magic) + dims.flatMap(bigEndian) + payload
}

func idxImages(_ count: Int, _ height: Int, _ width: Int, payload: [UInt8]) -> [UInt8] {
    idx(magic: 0x0000_0803, dims: [UInt32(count), UInt32(height), UInt32(width)], payload: payload)
}

func idxLabels(_ labels: [UInt8]) -> [UInt8] {
    idx(magic: 0x0000_0801, dims: [UInt32(labels.count)], payload: labels)
}

/// The `ReparoError` cases a dataset reader throws.
enum DatasetErrorKind: String { case invalidArgument, io, format }

/// Checks that `body` throws a `ReparoError` of `kind` whose message contains `mention`.
func expectError(_ kind: DatasetErrorKind, mentioning mention: String = "",
                 sourceLocation: SourceLocation = #_sourceLocation,
                 _ body: () throws -> Dataset) {
    do {
        let dataset = try body()
        Issue.record("expected .\(kind.rawValue), got a dataset of \(dataset.count) samples",
                     sourceLocation: sourceLocation)
    } catch let error as ReparoError {
        let actual: DatasetErrorKind?
        switch error {
        case .invalidArgument: actual = .invalidArgument
        case .io: actual = .io
        case .format: actual = .format
        default: actual = nil
        }
        #expect(actual == kind, "expected .\(kind.rawValue), got \(error)", sourceLocation: sourceLocation)
        #expect(error.message.contains(mention), "message \"\(error.message)\" should mention \"\(mention)\"",
                sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected ReparoError, got \(error)", sourceLocation: sourceLocation)
    }
}
