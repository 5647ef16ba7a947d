import COpenBLAS
import Foundation

/// What a run's numbers depend on beyond its settings: the OpenBLAS kernel core (chosen by
/// OpenBLAS from the CPU, by the user, or fixed by Reparo, see `BLASCore`) and the instruction
/// set of Reparo's own kernels (AVX-512, AVX2+FMA or portable C, see `VectorKernels`). Each sums in its own order, so results repeat bit for bit within one
/// environment and differ in the last bits — and, through training, in the trajectory — across
/// them. `json` is what `reparo_system_info` and `reparo info --system` report.
public enum ComputeEnvironment {
    /// OpenBLAS's core name after Reparo's choice, e.g. "Cooperlake", "SkylakeX", "Haswell".
    public static var blasCore: String {
        _ = singleThreadedBLAS
        return BLASCore.runningCore
    }

    /// Who chose `blasCore`: "openblas", "user" (OPENBLAS_CORETYPE), "reparo", "forced" (REPARO_BLAS_CORE).
    public static var blasCoreChooser: String {
        _ = singleThreadedBLAS
        return BLASCore.prepared.chooser.rawValue
    }

    /// The instruction set of Reparo's own kernels in this process: "avx512", "avx2" or
    /// "portable" (the CPU's best, or lower when `REPARO_ISA` asks; see `VectorKernels`).
    public static var kernelISA: String { VectorKernels.instructionSet.rawValue }

    /// "OpenBLAS core Cooperlake (openblas), kernels avx512".
    public static var summary: String {
        "OpenBLAS core \(blasCore) (\(blasCoreChooser)), kernels \(kernelISA)"
    }

    private static func environment(_ name: String) -> JSONValue {
        getenv(name).map { .string(String(cString: $0)) } ?? .null
    }

    /// The CPU, the BLAS and its core, the kernels and the thread settings:
    /// {"version", "cpu": {"vendor","model","features":[..],"level"},
    ///  "blas": {"config","core","detected_core","chooser","reason","threads"},
    ///  "kernels": {"isa"}, "calibration": {"enabled","file","persisted_choices"},
    ///  "threads": {"engine_default","usable_cpus","online_cpus"},
    ///  "environment": {"OPENBLAS_CORETYPE","REPARO_BLAS_CORE","OPENBLAS_NUM_THREADS","OMP_NUM_THREADS"}}
    /// (environment values null when unset). OpenBLAS's threads are 1: Reparo splits GEMMs itself.
    public static var json: JSONValue {
        _ = singleThreadedBLAS
        let state = BLASCore.prepared
        let cpu = CPUFeatures.current
        let config = openblas_get_config().map { String(cString: $0) } ?? "unknown"
        let calibration = KernelCalibration.summary
        return [
            "version": .string(Reparo.version),
            "cpu": [
                "vendor": .string(cpu.vendor), "model": .string(cpu.model),
                "features": .array(cpu.featureNames.map(JSONValue.string)),
                "level": .string(BLASCoreChoice.level(of: cpu).name),
            ],
            "blas": [
                "config": .string(config), "core": .string(BLASCore.runningCore), "detected_core": .string(state.detected),
                "chooser": .string(state.chooser.rawValue), "reason": .string(state.reason),
                "threads": .int(Int(openblas_get_num_threads())),
            ],
            "kernels": ["isa": .string(kernelISA)],
            "calibration": [
                "enabled": .bool(calibration.enabled), "file": .string(calibration.file),
                "persisted_choices": .int(calibration.persistedChoices),
            ],
            "threads": [
                "engine_default": .int(ExecutionContext.standard.threads), "usable_cpus": .int(Parallel.cores),
                "online_cpus": .int(ProcessInfo.processInfo.activeProcessorCount),
            ],
            "environment": [
                "OPENBLAS_CORETYPE": environment(BLASCoreChoice.openBLASVariable),
                "REPARO_BLAS_CORE": environment(BLASCoreChoice.variable),
                "OPENBLAS_NUM_THREADS": environment("OPENBLAS_NUM_THREADS"),
                "OMP_NUM_THREADS": environment("OMP_NUM_THREADS"),
            ],
        ]
    }

    /// `json` as lines for people (`reparo info --system`).
    public static var text: String {
        _ = singleThreadedBLAS
        let state = BLASCore.prepared
        let cpu = CPUFeatures.current
        let config = openblas_get_config().map { String(cString: $0) } ?? "unknown"
        let calibration = KernelCalibration.summary
        func variable(_ name: String) -> String { "\(name)=" + (getenv(name).map { String(cString: $0) } ?? "(unset)") }
        return [
            "CPU        \(cpu.model.isEmpty ? "unknown" : cpu.model) (\(cpu.vendor.isEmpty ? "no cpuid" : cpu.vendor))",
            "features   \(cpu.featureNames.joined(separator: " ")) — best level \(BLASCoreChoice.level(of: cpu).name)",
            "OpenBLAS   \(config)",
            "BLAS core  \(BLASCore.runningCore), chosen by \(state.chooser.rawValue) (OpenBLAS had \(state.detected)): \(state.reason)",
            "kernels    \(kernelISA)",
            "calibrated " + (calibration.enabled
                ? "\(calibration.persistedChoices) choices in \(calibration.file) (delete it to measure again)"
                : "off (REPARO_CALIBRATION=off: built-in thresholds)"),
            "threads    engine default \(ExecutionContext.standard.threads), usable CPUs \(Parallel.cores) of "
                + "\(ProcessInfo.processInfo.activeProcessorCount), OpenBLAS \(openblas_get_num_threads())",
            "variables  " + [BLASCoreChoice.variable, BLASCoreChoice.openBLASVariable, "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"]
                .map(variable).joined(separator: " "),
        ].joined(separator: "\n")
    }
}
