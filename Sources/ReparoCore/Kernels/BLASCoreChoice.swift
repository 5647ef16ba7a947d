import Foundation

/// Which OpenBLAS kernel core Reparo should run, decided from plain inputs (so tests can fake
/// any CPU and any OpenBLAS): the core OpenBLAS runs, the CPU's features, the environment
/// variables the user set, and which cores the library holds. `BLASCore` applies the decision.
///
/// Why: a DYNAMIC_ARCH OpenBLAS picks its core from the CPU model when it loads, and one older
/// than the CPU (Debian's 0.3.21 on Intel Sapphire Rapids) falls back to `Prescott`, SSE3
/// kernels 3–4× slower than the CPU's AVX-512 ones. Rules: a variable the user set wins
/// (`REPARO_BLAS_CORE`, then `OPENBLAS_CORETYPE`); a core at or above the CPU's best level is
/// kept (never a downgrade); else the best core of the CPU's level that the library holds.
public struct BLASCoreChoice: Equatable, Sendable {
    /// Who chose the core that runs.
    public enum Chooser: String, Sendable {
        /// OpenBLAS, from cpuid, and Reparo kept it.
        case openBLAS = "openblas"
        /// The user, through `OPENBLAS_CORETYPE`.
        case user
        /// Reparo replaced a core below the CPU's level.
        case reparo
        /// The user, through `REPARO_BLAS_CORE=<core>`.
        case forced
    }

    /// The vector instruction level a core's kernels are written for, or a CPU runs.
    public enum Level: Int, Comparable, Sendable {
        case sse, avx, avx2, avx512

        public static func < (lhs: Level, rhs: Level) -> Bool { lhs.rawValue < rhs.rawValue }

        public var name: String { ["sse", "avx", "avx2", "avx512"][rawValue] }
    }

    /// The core to switch to; nil keeps the one running.
    public let target: String?
    public let chooser: Chooser
    /// Why, in a few words (`reparo info --system` prints it).
    public let reason: String

    /// The environment variable that overrides the choice: unset, "" or "auto" decides as
    /// above, "keep" keeps OpenBLAS's core, a core name ("SkylakeX", "Haswell", ...) forces it.
    public static let variable = "REPARO_BLAS_CORE"
    /// OpenBLAS's own variable, read when its core is chosen; Reparo never overrides it.
    public static let openBLASVariable = "OPENBLAS_CORETYPE"

    /// x86-64 core names of OpenBLAS (`gotoblas_corename()`, 0.3.x) and the level of their kernels.
    /// Steamroller and Excavator are OpenBLAS's own picks for those AMD CPUs (Excavator has
    /// AVX2); Cooperlake and SapphireRapids run SkylakeX's kernels plus bfloat16 ones.
    static let coreLevels: [(name: String, level: Level)] = [
        ("Katmai", .sse), ("Coppermine", .sse), ("Northwood", .sse), ("Prescott", .sse), ("Banias", .sse),
        ("Atom", .sse), ("Core2", .sse), ("Penryn", .sse), ("Dunnington", .sse), ("Nehalem", .sse),
        ("Athlon", .sse), ("Opteron", .sse), ("Opteron_SSE3", .sse), ("Barcelona", .sse), ("Nano", .sse),
        ("Bobcat", .sse), ("Sandybridge", .avx), ("Bulldozer", .avx), ("Piledriver", .avx), ("Steamroller", .avx),
        ("Excavator", .avx2), ("Haswell", .avx2), ("Zen", .avx2), ("SkylakeX", .avx512), ("Cooperlake", .avx512),
        ("SapphireRapids", .avx512),
    ]

    /// The canonical spelling and level of a core name (OpenBLAS compares names ignoring case),
    /// nil for a name this table lacks ("Unknown", a non-x86 core, a newer OpenBLAS's core).
    public static func core(named name: String) -> (name: String, level: Level)? {
        let lowered = name.lowercased()
        return coreLevels.first { $0.name.lowercased() == lowered }
    }

    /// The best level this CPU runs: AVX-512 needs F, BW, DQ and VL (what SkylakeX's kernels
    /// use), AVX2 needs FMA too (Haswell's).
    public static func level(of cpu: CPUFeatures) -> Level {
        let avx2 = cpu.has(.avx) && cpu.has(.avx2) && cpu.has(.fma)
        if avx2 && cpu.has(.avx512f) && cpu.has(.avx512bw) && cpu.has(.avx512dq) && cpu.has(.avx512vl) { return .avx512 }
        if avx2 { return .avx2 }
        return cpu.has(.avx) ? .avx : .sse
    }

    /// Cores for a CPU of `level`, best first. SkylakeX, not Cooperlake, for AVX-512:
    /// OpenBLAS 0.3.21's `OPENBLAS_CORETYPE` cannot name Cooperlake ("Core not found"), and
    /// its sgemm is SkylakeX's or slower (1024³ on Zen 4: 60–63 GFLOP/s against 69–72).
    /// Zen before Haswell on AMD and Hygon CPUs, as OpenBLAS picks for them itself.
    static func candidates(for level: Level, vendor: String) -> [String] {
        let amd = vendor == "AuthenticAMD" || vendor == "HygonGenuine"
        switch level {
        case .avx512: return ["SkylakeX"] + candidates(for: .avx2, vendor: vendor)
        case .avx2: return (amd ? ["Zen", "Haswell"] : ["Haswell", "Zen"]) + candidates(for: .avx, vendor: vendor)
        case .avx: return ["Sandybridge"]
        case .sse: return []
        }
    }

    /// Decides. `running`: `openblas_get_corename()`; `coreTypeVariable`, `reparoVariable`:
    /// the values of `OPENBLAS_CORETYPE` and `REPARO_BLAS_CORE` (nil when unset);
    /// `hasCore`: whether the library holds a core of that (canonical) name.
    public static func decide(running: String, cpu: CPUFeatures, coreTypeVariable: String?, reparoVariable: String?,
                              hasCore: (String) -> Bool) -> BLASCoreChoice {
        let kept: Chooser = coreTypeVariable == nil ? .openBLAS : .user
        let cpuLevel = level(of: cpu)
        let setting = (reparoVariable ?? "").trimmingCharacters(in: .whitespaces)
        switch setting.lowercased() {
        case "", "auto":
            break
        case "keep":
            return BLASCoreChoice(target: nil, chooser: kept, reason: "\(variable)=keep")
        default:
            guard let forced = core(named: setting) else {
                return BLASCoreChoice(target: nil, chooser: kept, reason: "\(variable)=\(setting) names no x86-64 core of OpenBLAS; ignored")
            }
            guard forced.level <= cpuLevel else {
                return BLASCoreChoice(target: nil, chooser: kept,
                                      reason: "\(variable)=\(forced.name) needs \(forced.level.name), this CPU runs \(cpuLevel.name); ignored")
            }
            if forced.name.lowercased() == running.lowercased() {
                return BLASCoreChoice(target: nil, chooser: .forced, reason: "\(variable)=\(forced.name), already running")
            }
            guard hasCore(forced.name) else {
                return BLASCoreChoice(target: nil, chooser: kept, reason: "\(variable)=\(forced.name): this OpenBLAS has no such core; ignored")
            }
            return BLASCoreChoice(target: forced.name, chooser: .forced, reason: "\(variable)=\(forced.name)")
        }
        if let coreType = coreTypeVariable {
            return BLASCoreChoice(target: nil, chooser: .user, reason: "\(openBLASVariable)=\(coreType) set by the user")
        }
        guard let current = core(named: running) else {
            return BLASCoreChoice(target: nil, chooser: .openBLAS, reason: "core \(running) unknown to Reparo; kept")
        }
        guard current.level < cpuLevel else {
            return BLASCoreChoice(target: nil, chooser: .openBLAS,
                                  reason: "\(current.name) (\(current.level.name)) matches the CPU's best level (\(cpuLevel.name))")
        }
        for name in candidates(for: cpuLevel, vendor: cpu.vendor) {
            guard let candidate = core(named: name), candidate.level > current.level, hasCore(name) else { continue }
            return BLASCoreChoice(target: name, chooser: .reparo,
                                  reason: "\(current.name) runs \(current.level.name) kernels on a CPU with \(cpuLevel.name)")
        }
        return BLASCoreChoice(target: nil, chooser: .openBLAS,
                              reason: "\(current.name) is below the CPU's \(cpuLevel.name), but this OpenBLAS has no better core")
    }
}
