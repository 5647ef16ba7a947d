import CVectorKernels
import Foundation

/// The CPU this process runs on: vendor, model name and the vector instruction sets that the
/// CPU has and the OS enables (cpuid + xgetbv, `cpu_features.c`). What `BLASCoreChoice`
/// compares OpenBLAS's core with; empty on non-x86 CPUs.
public struct CPUFeatures: Equatable, Sendable {
    /// One instruction set, named as in /proc/cpuinfo's flags.
    public enum Feature: String, CaseIterable, Sendable {
        case sse3, avx, avx2, fma, avx512f, avx512bw, avx512dq, avx512vl, avx512_bf16

        /// Its CPU_FEATURE_* bit in cpu_features.h.
        var bit: Int32 {
            switch self {
            case .sse3: return CPU_FEATURE_SSE3
            case .avx: return CPU_FEATURE_AVX
            case .avx2: return CPU_FEATURE_AVX2
            case .fma: return CPU_FEATURE_FMA
            case .avx512f: return CPU_FEATURE_AVX512F
            case .avx512bw: return CPU_FEATURE_AVX512BW
            case .avx512dq: return CPU_FEATURE_AVX512DQ
            case .avx512vl: return CPU_FEATURE_AVX512VL
            case .avx512_bf16: return CPU_FEATURE_AVX512_BF16
            }
        }
    }

    /// The cpuid vendor string: "GenuineIntel", "AuthenticAMD", "HygonGenuine", or "".
    public var vendor: String
    /// The model name, e.g. "AMD EPYC 9R14 96-Core Processor"; "" when unknown.
    public var model: String
    public var features: Set<Feature>

    public init(vendor: String, model: String = "", features: Set<Feature>) {
        self.vendor = vendor
        self.model = model
        self.features = features
    }

    public func has(_ feature: Feature) -> Bool { features.contains(feature) }

    /// The features in declaration order (for reports).
    public var featureNames: [String] { Feature.allCases.filter(has).map(\.rawValue) }

    /// This machine's CPU, read once.
    public static let current: CPUFeatures = {
        let flags = cpu_features_flags()
        var buffer = [CChar](repeating: 0, count: 64)
        _ = cpu_features_vendor(&buffer, Int32(buffer.count))
        let vendor = String(cString: buffer)
        _ = cpu_features_brand(&buffer, Int32(buffer.count))
        var model = String(cString: buffer).trimmingCharacters(in: .whitespaces)
        if model.isEmpty { model = procModelName() }
        return CPUFeatures(vendor: vendor, model: model, features: Set(Feature.allCases.filter { flags & $0.bit != 0 }))
    }()

    /// The "model name" line of /proc/cpuinfo (Linux CPUs without a cpuid brand string), or "".
    static func procModelName() -> String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
              let colon = line.firstIndex(of: ":") else { return "" }
        return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
}
