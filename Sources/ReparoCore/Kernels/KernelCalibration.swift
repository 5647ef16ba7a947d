import Foundation

/// Choices between kernels (narrow GEMM or OpenBLAS at a shape, Winograd or direct conv for a
/// layer) made by measuring once instead of by constants tuned on one CPU.
///
/// A choice is an index among `candidates`, cached for the process and persisted per machine in
/// `<cache dir>/calibration-<hash>.json` (cache dir: `REPARO_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/reparo`, else `~/.cache/reparo`), one file per machine key = CPU brand +
/// kernel level + OpenBLAS core + Reparo version. A later process on the same machine reads the
/// file and takes the same paths, so its results repeat bit for bit (the candidates sum in
/// different orders, so a fresh measurement could otherwise flip a near tie and the last bits).
/// The file is written atomically (temporary file + rename); an unreadable, corrupt or foreign
/// file is ignored (and replaced on the next write), never an error. The first value stored for
/// a key wins, in the process and in the file (a second process that measured concurrently adopts
/// the file's value when it writes).
///
/// `REPARO_CALIBRATION=off` skips measuring and the file: every choice is its built-in default
/// (what tests that compare against fixed expectations may set). Unset or any other value: on.
enum KernelCalibration {
    /// The cached choice for `key` (an index < candidates); the first time (per process and,
    /// when persisted, per machine) it calls `measure`, which returns the faster candidate's
    /// index. With calibration off, returns `defaultChoice` without measuring. Thread-safe;
    /// `measure` runs on the calling thread without any lock held (two threads may both measure
    /// a new key: the first result stored is the one every caller gets).
    static func choice(_ key: String, candidates: Int, defaultChoice: Int, measure: () -> Int) -> Int {
        let fallback = min(max(defaultChoice, 0), max(candidates - 1, 0))
        guard enabled, candidates > 1 else { return fallback }
        return store.choice(key, candidates: candidates, defaultChoice: fallback, measure: measure)
    }

    /// Whether choices are measured (`REPARO_CALIBRATION` is not "off"); read once.
    static let enabled: Bool = ProcessInfo.processInfo.environment["REPARO_CALIBRATION"] != "off"

    /// The index of the fastest of `count` candidates, `preferred` unless another is faster by
    /// more than `margin` (0.1: 10 %), so noise does not flip a near tie away from the default:
    /// each `run(index)` is timed `rounds` times, the candidates interleaved round by round (a
    /// burst of noise hits all of them), and the minimum time of each compared. `run` should do a
    /// fixed, small amount of work (≈ 0.1–2 ms).
    static func fastest(_ count: Int, preferred: Int = 0, margin: Double = 0.1, rounds: Int = 5,
                        _ run: (Int) -> Void) -> Int {
        guard count > 1 else { return 0 }
        var best = [UInt64](repeating: .max, count: count)
        for candidate in 0..<count { run(candidate) }  // warm caches and lazy state
        for _ in 0..<max(rounds, 1) {
            for candidate in 0..<count {
                let start = DispatchTime.now().uptimeNanoseconds
                run(candidate)
                best[candidate] = min(best[candidate], DispatchTime.now().uptimeNanoseconds &- start)
            }
        }
        let fastest = best.indices.min { best[$0] < best[$1] } ?? 0
        guard preferred >= 0, preferred < count, fastest != preferred else { return fastest }
        return Double(best[fastest]) * (1 + margin) < Double(best[preferred]) ? fastest : preferred
    }

    /// What the persisted choices depend on: "<CPU brand>|<level>|<OpenBLAS core>|<version>".
    static let machineKey: String = {
        let core = ComputeEnvironment.blasCore   // after BLASCore's fix of a generic core
        return "\(VectorKernels.cpuName)|\(VectorKernels.instructionSet.rawValue)|\(core)|\(Reparo.version)"
    }()

    /// The directory of the calibration files (see the type's comment).
    static var directory: URL {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["REPARO_CACHE_DIR"], !path.isEmpty { return URL(fileURLWithPath: path) }
        if let path = environment["XDG_CACHE_HOME"], !path.isEmpty {
            return URL(fileURLWithPath: path).appendingPathComponent("reparo")
        }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/reparo")
    }

    /// This machine's file: the machine key's 64-bit FNV-1a hash in the name, the key inside.
    static var file: URL {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in machineKey.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return directory.appendingPathComponent("calibration-\(String(hash, radix: 16)).json")
    }

    private static let store = CalibrationStore(file: file, machineKey: machineKey)

    /// For `reparo info --system`: whether choices are measured, this machine's file and how
    /// many choices it holds now (0 when missing or not this machine's).
    static var summary: (enabled: Bool, file: String, persistedChoices: Int) {
        (enabled, file.path, enabled ? store.persistedChoices : 0)
    }
}

/// Kernel choices of one machine key: a lock-protected dictionary, loaded from `file` at first
/// use and written back (atomically) when a choice is added (`KernelCalibration`).
final class CalibrationStore: @unchecked Sendable {
    private let lock = NSLock()
    private var choices: [String: Int]?
    /// The JSON file of the choices; nil: kept in memory only.
    let file: URL?
    let machineKey: String

    init(file: URL?, machineKey: String) {
        self.file = file
        self.machineKey = machineKey
    }

    /// The stored choice for `key` when there is one below `candidates`; else `measure()`'s
    /// (`defaultChoice` when out of range), stored unless another caller stored one first.
    /// `measure` runs without the lock held.
    func choice(_ key: String, candidates: Int, defaultChoice: Int, measure: () -> Int) -> Int {
        if let known = cached(key), known < candidates { return known }
        let measured = measure()
        return record(key, measured >= 0 && measured < candidates ? measured : defaultChoice, candidates: candidates)
    }

    private func cached(_ key: String) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        if choices == nil { choices = readFile() }
        return choices?[key]
    }

    /// Stores `value` unless a value is already known for `key` (in the process or, newly, in
    /// the file: another process may have written it since it was read), persists, and returns
    /// the value that holds.
    private func record(_ key: String, _ value: Int, candidates: Int) -> Int {
        lock.lock()
        defer { lock.unlock() }
        var current = choices ?? [:]
        if let known = current[key], known < candidates { return known }
        for (name, stored) in readFile() where current[name] == nil || name == key { current[name] = stored }
        if let known = current[key], known < candidates {
            choices = current
            return known
        }
        current[key] = value
        choices = current
        writeFile(current)
        return value
    }

    /// How many choices the file holds for this machine key now.
    var persistedChoices: Int { readFile().count }

    /// The choices in the file; empty when it is missing, unreadable, corrupt, too large or
    /// written for another machine key.
    private func readFile() -> [String: Int] {
        guard let file, let data = try? Data(contentsOf: file), data.count < 1 << 20,
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              object["machine"] as? String == machineKey,
              let stored = object["choices"] as? [String: Any] else { return [:] }
        var choices: [String: Int] = [:]
        for (key, value) in stored {
            if let number = value as? Int, number >= 0 { choices[key] = number }
        }
        return choices
    }

    /// Writes the file atomically (temporary file in the same directory + rename); failures
    /// (read-only home, no space) are ignored: the choices still hold for this process.
    private func writeFile(_ choices: [String: Int]) {
        guard let file else { return }
        let object: [String: Any] = ["machine": machineKey, "choices": choices]
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        let directory = file.deletingLastPathComponent()
        let temporary = directory.appendingPathComponent(
            ".\(file.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max))")
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try data.write(to: temporary)
            if rename(temporary.path, file.path) != 0 { try? FileManager.default.removeItem(at: temporary) }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
        }
    }
}
