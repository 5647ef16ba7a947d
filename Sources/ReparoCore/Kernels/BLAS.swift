import COpenBLAS

/// Thin wrappers over OpenBLAS, row-major throughout.
public enum BLAS {
    /// C[m×n] = alpha · op(A) · op(B) + beta · C, with op(A) m×k and op(B) k×n, row-major.
    @inline(__always)
    static func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        cblas_sgemm(
            CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
            blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }

    /// Sets the number of threads OpenBLAS uses (process-wide).
    public static func setThreads(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, min(count, 256))))
    }

    public static var threads: Int { Int(openblas_get_num_threads()) }
}
