import COpenBLAS
import CVectorKernels

/// Where Reparo's narrow GEMM kernels beat OpenBLAS's sgemm on this machine, for `BLAS.kernel`:
/// op(A)·B runs narrow when m ≤ `maxRows` or m·k ≤ `maxSmallA` (the input-gradient GEMM Wᵀ·dY
/// of a narrow layer); A·Bᵀ (a weight gradient, k ≥ 64) when m ≤ `maxRowsTransposedB`.
///
/// The built-in defaults were measured single-threaded on Zen 4 (AVX-512) against OpenBLAS
/// 0.3.21 (bench/README.md): op(A)·B 1.1–2.1× faster for m ≤ 96 or a small A, 1.0–1.1× at
/// m = 154, 0.85–0.95× for m ≥ 256; A·Bᵀ 1.1–2.6× faster for m ≤ 96 with a long k, 0.8–0.9× at
/// m = 154. On another CPU, kernel level or OpenBLAS core the crossover moves, so the values in
/// use come from `KernelCalibration`: narrow against sgemm at a few conv-like shapes, the
/// default kept unless the other is > 10 % faster (≈ 30–100 ms once per machine, then read from
/// the calibration file).
struct NarrowGemmThresholds: Equatable, Sendable {
    var maxRows: Int
    var maxSmallA: Int
    var maxRowsTransposedB: Int

    static let defaults = NarrowGemmThresholds(maxRows: 160, maxSmallA: 16_384, maxRowsTransposedB: 96)

    /// The thresholds of this process: calibrated at first use when the kernels are available
    /// (and `REPARO_CALIBRATION` is not off), else the defaults.
    static let current: NarrowGemmThresholds = VectorKernels.available ? calibrated() : defaults

    /// The calibrated thresholds (each shape measured only when its answer matters).
    static func calibrated() -> NarrowGemmThresholds {
        var thresholds = defaults
        // op(A)·B with n = 256 columns of a k = 576 (64 channels × 3×3) column matrix.
        if narrowWins(m: 96, n: 256, k: 576, byDefault: true) {
            thresholds.maxRows = !narrowWins(m: 160, n: 256, k: 576, byDefault: true) ? 96
                : narrowWins(m: 256, n: 256, k: 576, byDefault: false) ? 256 : 160
        } else {
            thresholds.maxRows = narrowWins(m: 32, n: 256, k: 576, byDefault: true) ? 32 : 0
        }
        // Wᵀ·dY: A = W [k = 32 output channels × m = 512] transposed.
        thresholds.maxSmallA = narrowWins(m: 512, n: 256, k: 32, transposeA: true, byDefault: true) ? 16_384 : 0
        // dY·colsᵀ: k = 1024 positions, n = 288 (32 channels × 3×3).
        if narrowWins(m: 96, n: 288, k: 1_024, transposeB: true, byDefault: true) {
            thresholds.maxRowsTransposedB = 96
        } else {
            thresholds.maxRowsTransposedB = narrowWins(m: 32, n: 288, k: 1_024, transposeB: true, byDefault: true) ? 32 : 0
        }
        return thresholds
    }

    /// Whether the narrow kernel is chosen for this shape (KernelCalibration: candidate 0 is
    /// sgemm, 1 the narrow kernel), measured on the calling thread with operands of small
    /// integers (exact, no denormals).
    private static func narrowWins(m: Int, n: Int, k: Int, transposeA: Bool = false, transposeB: Bool = false,
                                   byDefault: Bool) -> Bool {
        let key = "sgemm.\(transposeA ? "t" : "n")\(transposeB ? "t" : "n").m\(m).n\(n).k\(k)"
        let choice = KernelCalibration.choice(key, candidates: 2, defaultChoice: byDefault ? 1 : 0) {
            let a = UnsafeMutablePointer<Float>.allocate(capacity: m * k)
            let b = UnsafeMutablePointer<Float>.allocate(capacity: k * n)
            let c = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
            defer {
                a.deallocate()
                b.deallocate()
                c.deallocate()
            }
            for i in 0..<(m * k) { a[i] = Float(i % 7) - 3 }
            for i in 0..<(k * n) { b[i] = Float(i % 5) - 2 }
            _ = singleThreadedBLAS
            // Leading dimensions of the stored (not the transposed) operands.
            let lda = transposeA ? m : k, ldb = transposeB ? k : n
            return KernelCalibration.fastest(2, preferred: byDefault ? 1 : 0, rounds: 4) { candidate in
                if candidate == 0 {
                    cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans,
                                transposeB ? CblasTrans : CblasNoTrans, blasint(m), blasint(n), blasint(k), 1, a,
                                blasint(lda), b, blasint(ldb), 0, c, blasint(n))
                } else if transposeB {
                    narrow_sgemm_abt(m, n, k, a, lda, b, ldb, 0, c, n)
                } else {
                    narrow_sgemm(transposeA ? 1 : 0, m, n, k, a, lda, b, ldb, 0, c, n)
                }
            }
        }
        return choice == 1
    }
}
