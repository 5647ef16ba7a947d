import Foundation
import Testing
@testable import ReparoCore

/// `BLASCoreChoice` on faked CPUs and OpenBLAS cores (the expected cores are OpenBLAS's names
/// for those CPUs, written out by hand), and `CPUFeatures.current` against the kernel's
/// /proc/cpuinfo flags. The switch itself is tested in processes of their own
/// (bindings/python/tests/test_blas_core.py): it changes process-wide state.
@Suite("BLAS core choice")
struct BLASCoreChoiceTests {
    static let avx512: Set<CPUFeatures.Feature> = [.sse3, .avx, .avx2, .fma, .avx512f, .avx512bw, .avx512dq, .avx512vl]
    static let sapphireRapids = CPUFeatures(vendor: "GenuineIntel", features: avx512.union([.avx512_bf16]))
    static let zen4 = CPUFeatures(vendor: "AuthenticAMD", features: avx512.union([.avx512_bf16]))
    static let intelLaptop = CPUFeatures(vendor: "GenuineIntel", features: [.sse3, .avx, .avx2, .fma])
    static let zen3 = CPUFeatures(vendor: "AuthenticAMD", features: [.sse3, .avx, .avx2, .fma])
    static let ivyBridge = CPUFeatures(vendor: "GenuineIntel", features: [.sse3, .avx])
    static let core2 = CPUFeatures(vendor: "GenuineIntel", features: [.sse3])
    /// Every core of Debian's DYNAMIC_ARCH build (its exported gotoblas_* tables).
    static func everyCore(_ name: String) -> Bool { true }

    static func decide(_ running: String, _ cpu: CPUFeatures, coreType: String? = nil, reparo: String? = nil,
                       has: (String) -> Bool = everyCore) -> BLASCoreChoice {
        BLASCoreChoice.decide(running: running, cpu: cpu, coreTypeVariable: coreType, reparoVariable: reparo, hasCore: has)
    }

    @Test func generic_core_on_avx512_cpu_becomes_skylakex() {
        let choice = Self.decide("Prescott", Self.sapphireRapids)
        #expect(choice.target == "SkylakeX")
        #expect(choice.chooser == .reparo)
        #expect(choice.reason.contains("Prescott"))
    }

    @Test func zen4_running_cooperlake_is_kept() {
        let choice = Self.decide("Cooperlake", Self.zen4)
        #expect(choice.target == nil)
        #expect(choice.chooser == .openBLAS)
        // An AVX-512 core is never replaced on an AVX-512 CPU, whichever it is.
        #expect(Self.decide("SkylakeX", Self.zen4).target == nil)
        #expect(Self.decide("SapphireRapids", Self.sapphireRapids).target == nil)
    }

    @Test func avx2_laptop_with_prescott_gets_haswell_or_zen_by_vendor() {
        #expect(Self.decide("Prescott", Self.intelLaptop).target == "Haswell")
        #expect(Self.decide("Prescott", Self.zen3).target == "Zen")
        #expect(Self.decide("Nehalem", Self.zen3).chooser == .reparo)
        // On an AVX-512 AMD CPU still SkylakeX, and Zen when the library lacks SkylakeX.
        #expect(Self.decide("Zen", Self.zen4).target == "SkylakeX")
        #expect(Self.decide("Prescott", Self.zen4, has: { $0 != "SkylakeX" }).target == "Zen")
    }

    @Test func sandybridge_on_avx2_becomes_haswell() {
        #expect(Self.decide("Sandybridge", Self.intelLaptop).target == "Haswell")
        #expect(Self.decide("sandybridge", Self.intelLaptop).target == "Haswell")  // OpenBLAS ignores case
        #expect(Self.decide("Prescott", Self.ivyBridge).target == "Sandybridge")
        #expect(Self.decide("Sandybridge", Self.ivyBridge).target == nil)
    }

    @Test func never_downgrades() {
        #expect(Self.decide("Haswell", Self.intelLaptop).target == nil)
        #expect(Self.decide("Zen", Self.intelLaptop).target == nil)
        // A core above the CPU (a user's odd setting, a virtual CPU hiding features) stays too.
        #expect(Self.decide("SkylakeX", Self.intelLaptop).target == nil)
        #expect(Self.decide("Haswell", Self.ivyBridge).target == nil)
    }

    @Test func a_user_set_coretype_is_kept() {
        let choice = Self.decide("Prescott", Self.sapphireRapids, coreType: "Prescott")
        #expect(choice.target == nil)
        #expect(choice.chooser == .user)
        // Even a name OpenBLAS did not know (it then chose from cpuid): the user's call.
        #expect(Self.decide("Prescott", Self.sapphireRapids, coreType: "SapphireRapids").chooser == .user)
        #expect(Self.decide("Prescott", Self.sapphireRapids, coreType: "").target == nil)
    }

    @Test func old_cpu_keeps_its_core() {
        let choice = Self.decide("Core2", Self.core2)
        #expect(choice.target == nil)
        #expect(choice.chooser == .openBLAS)
        #expect(Self.decide("Prescott", CPUFeatures(vendor: "", features: [])).target == nil)  // non-x86
    }

    @Test func unknown_core_names_are_kept() {
        for name in ["Unknown", "NEOVERSEN1", "GraniteRapids", ""] {
            let choice = Self.decide(name, Self.sapphireRapids)
            #expect(choice.target == nil, "\(name)")
            #expect(choice.chooser == .openBLAS)
        }
    }

    @Test func library_without_better_cores_is_kept() {
        let choice = Self.decide("Prescott", Self.sapphireRapids, has: { _ in false })
        #expect(choice.target == nil)
        #expect(choice.reason.contains("no better core"))
        #expect(Self.decide("Prescott", Self.intelLaptop, has: { $0 == "Sandybridge" }).target == "Sandybridge")
    }

    @Test func reparo_variable_keeps_or_forces() {
        let keep = Self.decide("Prescott", Self.sapphireRapids, reparo: "keep")
        #expect(keep.target == nil && keep.chooser == .openBLAS)
        #expect(Self.decide("Prescott", Self.sapphireRapids, coreType: "Prescott", reparo: " KEEP ").chooser == .user)
        #expect(Self.decide("Prescott", Self.sapphireRapids, reparo: "auto").target == "SkylakeX")
        #expect(Self.decide("Prescott", Self.sapphireRapids, reparo: "").target == "SkylakeX")
        // A forced core wins over OPENBLAS_CORETYPE and may be lower than the CPU's best ...
        let forced = Self.decide("Cooperlake", Self.zen4, coreType: "Cooperlake", reparo: "haswell")
        #expect(forced.target == "Haswell" && forced.chooser == .forced)
        #expect(Self.decide("Haswell", Self.zen4, reparo: "Haswell").target == nil)
        #expect(Self.decide("Haswell", Self.zen4, reparo: "Haswell").chooser == .forced)
        // ... but never one the CPU cannot run, one unknown, or one the library lacks.
        for (setting, has) in [("SkylakeX", Self.everyCore), ("Skylake", Self.everyCore), ("Zen", { $0 != "Zen" })] {
            let refused = Self.decide("Haswell", Self.intelLaptop, reparo: setting, has: has)
            #expect(refused.target == nil && refused.chooser == .openBLAS, "\(setting)")
            #expect(refused.reason.contains("ignored"))
        }
    }

    @Test func levels_need_every_feature_the_kernels_use() {
        #expect(BLASCoreChoice.level(of: Self.zen4) == .avx512)
        var noVL = Self.avx512
        noVL.remove(.avx512vl)  // Knights Landing: AVX-512F without VL runs Haswell's kernels
        #expect(BLASCoreChoice.level(of: CPUFeatures(vendor: "GenuineIntel", features: noVL)) == .avx2)
        #expect(BLASCoreChoice.level(of: CPUFeatures(vendor: "GenuineIntel", features: [.avx, .avx2])) == .avx)
        #expect(BLASCoreChoice.level(of: Self.core2) == .sse)
    }

    /// Independent oracle: the kernel's flags line (it also checks OS support: a feature whose
    /// registers the kernel does not save is not listed). SSE3 is "pni" there.
    @Test func cpu_features_match_proc_cpuinfo() throws {
        #if os(Linux) && arch(x86_64)
        let text = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("flags") })
        let flags = Set(line.split(separator: " ").map(String.init))
        let cpu = CPUFeatures.current
        for feature in CPUFeatures.Feature.allCases {
            let name = feature == .sse3 ? "pni" : feature.rawValue
            #expect(cpu.has(feature) == flags.contains(name), "\(feature)")
        }
        #expect(!cpu.vendor.isEmpty)
        #expect(!cpu.model.isEmpty)
        #endif
    }

    /// The running process: what was decided is what runs, and the check sgemm passes on it.
    @Test func prepared_core_runs_and_computes() {
        let state = BLASCore.prepared
        #expect(state.running == BLASCore.runningCore)
        #expect(BLASCore.sgemmIsCorrect())
        #expect(!state.reason.isEmpty)
    }

    /// The check after a switch rejects what a broken core would give: one element off by a
    /// tenth of its size, a NaN, a transposed operand.
    @Test func sgemm_check_rejects_wrong_products() {
        let m = 5, n = 4, k = 3
        let a = (0..<m * k).map { Float($0 % 7) - 2.5 }
        let b = (0..<k * n).map { Float($0 % 5) * 0.75 - 1 }
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { for p in 0..<k { c[i * n + j] += a[i * k + p] * b[p * n + j] } } }
        #expect(BLASCore.matches(c, a, b, m: m, n: n, k: k))
        var off = c
        off[7] += max(abs(off[7]), 1) * 0.1
        #expect(!BLASCore.matches(off, a, b, m: m, n: n, k: k))
        var nan = c
        nan[0] = .nan
        #expect(!BLASCore.matches(nan, a, b, m: m, n: n, k: k))
        var transposed = [Float](repeating: 0, count: m * n)  // a·(b read as n×k, transposed)
        for i in 0..<m { for j in 0..<n { for p in 0..<k { transposed[i * n + j] += a[i * k + p] * b[j * k + p] } } }
        #expect(!BLASCore.matches(transposed, a, b, m: m, n: n, k: k))
    }
}
