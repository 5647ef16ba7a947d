import CVectorKernels
import COpenBLAS

/// OpenBLAS runs single-threaded (set once, process-wide): the engine splits large GEMMs over
/// its own workers (`Parallel`), so BLAS threads never spin-wait against the engine's threads.
let singleThreadedBLAS: Void = openblas_set_num_threads(1)

/// Wrappers over OpenBLAS sgemm, row-major throughout.
public enum BLAS {
    /// C[m×n] = alpha · op(A) · op(B) + beta · C, with op(A) m×k and op(B) k×n, row-major.
    /// Products of at least 2¹⁹ multiply-adds are split over the engine's threads by blocks of
    /// C (columns when n ≥ m, else rows), never along k, into a number of blocks fixed per
    /// machine, so results do not depend on the thread setting. Below that bound (≈ 5 µs on
    /// one core) handing half to a helper costs about what it saves. With libdispatch's
    /// workers (20–45 µs to wake) the bound had to be 2²²; with `WorkerPool`'s polling helpers
    /// batch-1 inference of a pruned VGG-16 measured 0.70–0.74 ms at 2¹⁹ against 0.75–0.82
    /// at 2²². `parallel: false` keeps it on the calling thread (already one of several workers).
    static func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, parallel: Bool = true
    ) {
        // The split is fixed per machine (`reductionGroups` blocks), not per `threads`:
        // OpenBLAS may sum a block differently from the whole (its small-matrix kernel, other
        // blockings), so a split that followed the thread setting would make results depend on
        // the caller's context. With one thread the blocks simply run one after another.
        let pieces = Parallel.reductionGroups
        if !parallel || pieces <= 1 || m &* n &* k < 1 << 19 || max(m, n) < 32 {
            serialGemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                       a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        let splitColumns = n >= m
        let extent = splitColumns ? n : m
        // Blocks of a multiple of 16 (one AVX-512 register of floats), one per piece.
        let block = ((extent + pieces - 1) / pieces + 15) / 16 * 16
        let blocks = (extent + block - 1) / block
        let context = (transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                       b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, block: block, extent: extent, splitColumns: splitColumns)
        Parallel.forEach(blocks, minimumWork: 1 << 20, context: context) { g, index in
            let start = index * g.block
            let size = min(g.block, g.extent - start)
            if g.splitColumns {
                serialGemm(transposeA: g.transposeA, transposeB: g.transposeB, m: g.m, n: size, k: g.k, alpha: g.alpha,
                           a: g.a, lda: g.lda, b: g.transposeB ? g.b + start * g.ldb : g.b + start, ldb: g.ldb,
                           beta: g.beta, c: g.c + start, ldc: g.ldc)
            } else {
                serialGemm(transposeA: g.transposeA, transposeB: g.transposeB, m: size, n: g.n, k: g.k, alpha: g.alpha,
                           a: g.transposeA ? g.a + start : g.a + start * g.lda, lda: g.lda, b: g.b, ldb: g.ldb,
                           beta: g.beta, c: g.c + start * g.ldc, ldc: g.ldc)
            }
        }
    }

    /// Which GEMM runs a product of this shape (op(A) is m×k, op(B) k×n): the narrow kernels
    /// (AVX-512 or AVX2, `VectorKernels.instructionSet`) where they beat OpenBLAS on this machine
    /// (`NarrowGemmThresholds`, calibrated at first use), else OpenBLAS. Both need a full tile
    /// (32 columns; 16 values of k).
    enum Kernel: Equatable { case openBLAS, narrow, narrowTransposedB }

    @inline(__always)
    static func kernel(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float, beta: Float) -> Kernel {
        guard VectorKernels.available, alpha == 1, beta == 0 || beta == 1 else { return .openBLAS }
        let limits = NarrowGemmThresholds.current
        if !transposeB {
            return n >= 32 && (m <= limits.maxRows || m &* k <= limits.maxSmallA) ? .narrow : .openBLAS
        }
        return !transposeA && m <= limits.maxRowsTransposedB && n >= 16 && k >= 64 ? .narrowTransposedB : .openBLAS
    }

    /// One sgemm on the calling thread (for work already split over workers).
    @inline(__always)
    static func serialGemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        switch kernel(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, beta: beta) {
        case .narrow:
            narrow_sgemm(transposeA ? 1 : 0, m, n, k, a, lda, b, ldb, beta == 1 ? 1 : 0, c, ldc)
            return
        case .narrowTransposedB:
            narrow_sgemm_abt(m, n, k, a, lda, b, ldb, beta == 1 ? 1 : 0, c, ldc)
            return
        case .openBLAS:
            break
        }
        _ = singleThreadedBLAS
        cblas_sgemm(
            CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
            blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }
}
