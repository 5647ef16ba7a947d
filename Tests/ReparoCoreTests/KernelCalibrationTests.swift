import Foundation
import Synchronization
import Testing
@testable import ReparoCore

/// `KernelCalibration`'s store (`CalibrationStore`) on its own files: a choice is measured
/// once, then read from the process cache and from the file by a later store (a later process
/// on the same machine); corrupt, foreign or out-of-range files are ignored, never a crash;
/// concurrent callers agree. And `fastest` picks a clearly faster candidate.
@Suite("Kernel calibration")
struct KernelCalibrationTests {
    /// A fresh directory for one test's calibration file.
    static func temporaryFile() -> URL {
        FileManager.default.temporaryDirectory
            .appendingPathComponent("reparo-calibration-\(getpid())-\(UInt64.random(in: 0...UInt64.max))")
            .appendingPathComponent("calibration.json")
    }

    @Test("A choice is measured once, cached, persisted, and read back by a new store")
    func persists() throws {
        let file = Self.temporaryFile()
        defer { try? FileManager.default.removeItem(at: file.deletingLastPathComponent()) }
        let store = CalibrationStore(file: file, machineKey: "cpu|avx2|Haswell|0.1.0")
        var measured = 0
        #expect(store.choice("shape", candidates: 3, defaultChoice: 0) { measured += 1; return 2 } == 2)
        #expect(store.choice("shape", candidates: 3, defaultChoice: 0) { measured += 1; return 1 } == 2)
        #expect(measured == 1)
        let text = try String(contentsOf: file, encoding: .utf8)
        #expect(text.contains("\"shape\":2") && text.contains("cpu|avx2|Haswell|0.1.0"), "\(text)")

        let later = CalibrationStore(file: file, machineKey: "cpu|avx2|Haswell|0.1.0")
        #expect(later.choice("shape", candidates: 3, defaultChoice: 0) { measured += 1; return 0 } == 2)
        #expect(measured == 1)
        // Another machine key (other CPU, level, core or version) does not use the file's values.
        let other = CalibrationStore(file: file, machineKey: "cpu|avx512|SkylakeX|0.1.0")
        #expect(other.choice("shape", candidates: 3, defaultChoice: 0) { measured += 1; return 1 } == 1)
        #expect(measured == 2)
    }

    @Test("Corrupt, truncated or out-of-range files are ignored and replaced; an out-of-range measure gives the default")
    func badFiles() throws {
        let file = Self.temporaryFile()
        defer { try? FileManager.default.removeItem(at: file.deletingLastPathComponent()) }
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        let key = "machine"
        let contents = [Data([0xFF, 0x00, 0x7B]), Data("{\"machine\": \"machine\", \"choices\": {\"a\": ".utf8),
                        Data("[1, 2]".utf8), Data("{\"machine\": \"machine\", \"choices\": {\"a\": \"x\"}}".utf8),
                        Data("{\"machine\": \"machine\", \"choices\": {\"a\": 7}}".utf8),
                        Data("{\"machine\": \"machine\", \"choices\": {\"a\": -1}}".utf8)]
        for data in contents {
            try data.write(to: file)
            let store = CalibrationStore(file: file, machineKey: key)
            var measured = false
            #expect(store.choice("a", candidates: 2, defaultChoice: 0) { measured = true; return 1 } == 1)
            #expect(measured, "\(String(decoding: data, as: UTF8.self))")
            // Rewritten valid: a new store reads the value back.
            #expect(CalibrationStore(file: file, machineKey: key).choice("a", candidates: 2, defaultChoice: 0) { 0 } == 1)
        }
        let store = CalibrationStore(file: nil, machineKey: key)
        #expect(store.choice("b", candidates: 2, defaultChoice: 1) { 5 } == 1)
        // An unwritable location: the choice still holds in the process.
        let unwritable = CalibrationStore(file: URL(fileURLWithPath: "/proc/reparo/calibration.json"), machineKey: key)
        #expect(unwritable.choice("c", candidates: 2, defaultChoice: 0) { 1 } == 1)
        #expect(unwritable.choice("c", candidates: 2, defaultChoice: 0) { 0 } == 1)
    }

    @Test("Concurrent first calls agree on one value")
    func concurrent() {
        let file = Self.temporaryFile()
        defer { try? FileManager.default.removeItem(at: file.deletingLastPathComponent()) }
        let store = CalibrationStore(file: file, machineKey: "m")
        let results = Mutex<[Int]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { index in
            let value = store.choice("k", candidates: 8, defaultChoice: 0) { index }
            results.withLock { $0.append(value) }
        }
        let values = results.withLock { $0 }
        #expect(values.count == 8 && Set(values).count == 1, "\(values)")
        #expect(CalibrationStore(file: file, machineKey: "m").choice("k", candidates: 8, defaultChoice: 0) { 99 } == values[0])
    }

    @Test("fastest: a clearly faster candidate wins over the preferred one; the preferred wins when it is the fast one")
    func fastest() {
        let slow = { _ = usleep(3_000) }
        #expect(KernelCalibration.fastest(2, preferred: 0, rounds: 2) { if $0 == 0 { slow() } } == 1)
        #expect(KernelCalibration.fastest(2, preferred: 1, rounds: 2) { if $0 == 0 { slow() } } == 1)
        #expect(KernelCalibration.fastest(3, preferred: 0, rounds: 2) { if $0 != 2 { slow() } } == 2)
    }

    @Test("The calibrated GEMM thresholds are ones the calibration can produce, and the defaults without kernels")
    func thresholds() {
        let current = NarrowGemmThresholds.current
        if !VectorKernels.available || !KernelCalibration.enabled {
            #expect(current == .defaults)
        }
        #expect([0, 32, 96, 160, 256].contains(current.maxRows))
        #expect([0, 16_384].contains(current.maxSmallA))
        #expect([0, 32, 96].contains(current.maxRowsTransposedB))
    }
}
