/// Similarity-preserving knowledge distillation (Tung & Mori, ICCV 2019, eq. 2–4).
/// For a batch of b samples with activations A `[b, D]` (any D):
///   G = A·Aᵀ `[b, b]`, Ĝ = G with each row L2-normalized,
///   L = ‖Ĝ_student − Ĝ_teacher‖²_F / b².
/// Gradient: ∂L/∂Ĝ_s = 2(Ĝ_s − Ĝ_t)/b²; through the row normalization
/// ∂L/∂gᵢ = (∂L/∂ĝᵢ − ĝᵢ(ĝᵢ·∂L/∂ĝᵢ)) / ‖gᵢ‖; through G = A·Aᵀ, ∂L/∂A = (∂L/∂G + ∂L/∂Gᵀ)·A.
final class SimilarityPreservingLoss {
    let batch: Int
    private let studentGram: FloatBuffer
    private let teacherGram: FloatBuffer
    private let gramGradient: FloatBuffer
    private let norms: FloatBuffer

    init(batch: Int) throws {
        self.batch = batch
        studentGram = try FloatBuffer(count: batch * batch)
        teacherGram = try FloatBuffer(count: batch * batch)
        gramGradient = try FloatBuffer(count: batch * batch)
        norms = try FloatBuffer(count: batch)
    }

    /// Row-normalized Gram matrix of `a` `[b, features]` into `gram`; row norms into `norms`.
    static func normalizedGram(_ a: UnsafePointer<Float>, features: Int, batch b: Int,
                               gram: UnsafeMutablePointer<Float>, norms: UnsafeMutablePointer<Float>?) {
        BLAS.gemm(transposeA: false, transposeB: true, m: b, n: b, k: features,
                  a: a, lda: features, b: a, ldb: features, beta: 0, c: gram, ldc: b)
        for i in 0..<b {
            let row = gram + i * b
            var squares: Double = 0
            for j in 0..<b { squares += Double(row[j]) * Double(row[j]) }
            let norm = Float(squares.squareRoot())
            norms?[i] = norm
            // An all-zero activation row has no direction: leave it zero (PyTorch's normalize eps).
            let inverse = norm > 1e-12 ? 1 / norm : 0
            for j in 0..<b { row[j] *= inverse }
        }
    }

    /// Loss for one layer pair; writes `weight · ∂L/∂A_student` into `studentGradient`. The
    /// teacher's normalized Gram matrix stays in `lastTeacherGram` until the next call.
    func compute(student: UnsafePointer<Float>, studentFeatures: Int, teacher: UnsafePointer<Float>,
                 teacherFeatures: Int, weight: Float, studentGradient: UnsafeMutablePointer<Float>?) -> Double {
        Self.normalizedGram(teacher, features: teacherFeatures, batch: batch, gram: teacherGram.pointer, norms: nil)
        return compute(student: student, studentFeatures: studentFeatures, teacherGram: teacherGram.pointer,
                       weight: weight, studentGradient: studentGradient)
    }

    /// The teacher's normalized Gram matrix `[b, b]` of the last `compute(…teacher:…)`.
    var lastTeacherGram: UnsafePointer<Float> { UnsafePointer(teacherGram.pointer) }

    /// Loss for one layer pair against a given normalized teacher Gram matrix `[b, b]` (as
    /// `normalizedGram` makes it); writes `weight · ∂L/∂A_student` into `studentGradient`.
    func compute(student: UnsafePointer<Float>, studentFeatures: Int, teacherGram gt: UnsafePointer<Float>,
                 weight: Float, studentGradient: UnsafeMutablePointer<Float>?) -> Double {
        let b = batch
        let gs = studentGram.pointer, dG = gramGradient.pointer, norms = norms.pointer
        Self.normalizedGram(student, features: studentFeatures, batch: b, gram: gs, norms: norms)
        var loss: Double = 0
        let scale = 1 / Float(b * b)
        for i in 0..<(b * b) {
            let difference = gs[i] - gt[i]
            loss += Double(difference) * Double(difference)
            dG[i] = 2 * difference * scale * weight
        }
        loss /= Double(b * b)
        guard let studentGradient else { return loss }
        // Through the row normalization, in place: dG row i becomes ∂L/∂gᵢ.
        for i in 0..<b {
            let row = dG + i * b, normalized = gs + i * b
            let norm = norms[i]
            guard norm > 1e-12 else {
                row.update(repeating: 0, count: b)
                continue
            }
            var dot: Float = 0
            for j in 0..<b { dot += normalized[j] * row[j] }
            let inverse = 1 / norm
            for j in 0..<b { row[j] = (row[j] - normalized[j] * dot) * inverse }
        }
        // Symmetrize: ∂L/∂G + ∂L/∂Gᵀ, into gs (no longer needed).
        for i in 0..<b {
            for j in 0..<b { gs[i * b + j] = dG[i * b + j] + dG[j * b + i] }
        }
        BLAS.gemm(transposeA: false, transposeB: false, m: b, n: studentFeatures, k: b,
                  a: gs, lda: b, b: student, ldb: studentFeatures, beta: 0, c: studentGradient, ldc: studentFeatures)
        return loss
    }
}
