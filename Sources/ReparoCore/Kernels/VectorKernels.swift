import CVectorKernels

/// The CVectorKernels target's kernels (narrow GEMMs, stride-1 im2col/col2im, padded planes,
/// 2×2 max pooling), in an AVX-512 and an AVX2+FMA version chosen once per process from cpuid
/// and `REPARO_ISA` (see vector_kernels.h).
enum VectorKernels {
    /// A level of the kernels; raw values are `REPARO_ISA`'s spellings.
    enum InstructionSet: String, CaseIterable, Sendable {
        /// None of the kernels: OpenBLAS and the engine's Swift loops (non-x86 CPUs, x86 CPUs
        /// without AVX2+FMA, debug builds, `REPARO_ISA=portable`).
        case portable
        /// The 256-bit AVX2+FMA kernels.
        case avx2
        /// The AVX-512F kernels.
        case avx512
    }

    /// The level this process uses (read once: cpuid, clamped `REPARO_ISA`, the build).
    static let instructionSet: InstructionSet = {
        switch vector_kernels_level() {
        case Int32(vector_kernels_avx512.rawValue): return .avx512
        case Int32(vector_kernels_avx2.rawValue): return .avx2
        default: return .portable
        }
    }()

    /// Whether this process uses them at all (`instructionSet` is not `portable`).
    static let available = instructionSet != .portable

    /// The CPU's brand string from cpuid ("unknown CPU" where it has none).
    static let cpuName: String = {
        var bytes = [CChar](repeating: 0, count: 64)
        vector_kernels_cpu_name(&bytes, Int32(bytes.count))
        let name = String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "unknown CPU" : name
    }()
}
