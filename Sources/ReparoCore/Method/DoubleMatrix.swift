import COpenBLAS

/// Dense Double matrices for the exact algebra of expand and collapse.
enum DoubleMatrix {
    /// C[m×n] = A[m×k] · B[k×n] (row-major, optional transposes as in BLAS).
    static func multiply(_ a: [Double], _ b: [Double], m: Int, n: Int, k: Int,
                         transposeA: Bool = false, transposeB: Bool = false) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        if m == 0 || n == 0 { return c }
        _ = singleThreadedBLAS
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    guard let a = a.baseAddress, let b = b.baseAddress, let c = c.baseAddress else { return }
                    cblas_dgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                                blasint(m), blasint(n), blasint(k), 1, a, blasint(transposeA ? m : k),
                                b, blasint(transposeB ? k : n), 0, c, blasint(n))
                }
            }
        }
        return c
    }

    /// A random `rows × columns` matrix with orthonormal columns (QᵀQ = I), rows ≥ columns:
    /// Gaussian entries, then modified Gram–Schmidt in Double.
    static func semiOrthogonal(rows: Int, columns: Int, generator: inout SeededGenerator) -> [Double] {
        // Work on Qᵀ so that each column is contiguous.
        var transposed = [Double](repeating: 0, count: rows * columns)
        for i in transposed.indices { transposed[i] = Double(generator.nextNormal()) }
        transposed.withUnsafeMutableBufferPointer { buffer in
            guard let q = buffer.baseAddress else { return }
            for j in 0..<columns {
                let column = q + j * rows
                for _ in 0..<2 {  // twice is enough (Giraud et al. 2005)
                    for p in 0..<j {
                        let other = q + p * rows
                        var dot = 0.0
                        for i in 0..<rows { dot += column[i] * other[i] }
                        for i in 0..<rows { column[i] -= dot * other[i] }
                    }
                }
                var norm = 0.0
                for i in 0..<rows { norm += column[i] * column[i] }
                let inverse = 1 / norm.squareRoot()
                for i in 0..<rows { column[i] *= inverse }
            }
        }
        var q = [Double](repeating: 0, count: rows * columns)
        for j in 0..<columns {
            for i in 0..<rows { q[i * columns + j] = transposed[j * rows + i] }
        }
        return q
    }
}

extension FloatBuffer {
    var doubles: [Double] { (0..<count).map { Double(pointer[$0]) } }

    convenience init(doubles: [Double]) throws {
        try self.init(count: doubles.count)
        for i in 0..<doubles.count { pointer[i] = Float(doubles[i]) }
    }
}
