import COpenBLAS

/// What a run's numbers depend on beyond its settings: the OpenBLAS kernel core (chosen by
/// `OPENBLAS_CORETYPE`, or by OpenBLAS from the CPU) and whether Reparo's AVX-512 kernels run.
/// Each sums in its own order, so results repeat bit for bit within one environment and
/// differ in the last bits — and, through training, in the trajectory — across them.
public enum ComputeEnvironment {
    /// OpenBLAS's core name, e.g. "Cooperlake", "SkylakeX", "Haswell", "Prescott".
    public static var blasCore: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// Whether Reparo's AVX-512 kernels run in this process (`VectorKernels.available`).
    public static var vectorKernels: Bool { VectorKernels.available }

    /// "OpenBLAS core Cooperlake, AVX-512 kernels on".
    public static var summary: String {
        "OpenBLAS core \(blasCore), AVX-512 kernels \(vectorKernels ? "on" : "off")"
    }
}
