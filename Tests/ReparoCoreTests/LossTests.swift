import Foundation
import Testing
@testable import ReparoCore

// Losses against closed forms computed here in Double, and their gradients against central
// finite differences.

// MARK: - Helpers

/// log Σₖ exp(zₖ), shifted by the maximum, in Double.
private func logSumExp(_ z: ArraySlice<Float>) -> Double {
    let values = z.map(Double.init)
    let maximum = values.max() ?? 0
    return maximum + Foundation.log(values.map { Foundation.exp($0 - maximum) }.reduce(0, +))
}

private struct CrossEntropyResult {
    var loss: Double
    var correct: Int
    var gradient: [Float]
}

private func crossEntropy(_ logits: [Float], _ labels: [Int32], classes: Int, gradient: Bool = true) -> CrossEntropyResult {
    let batch = labels.count
    var g = [Float](repeating: .nan, count: logits.count)
    let result = logits.withUnsafeBufferPointer { z in
        labels.withUnsafeBufferPointer { y in
            g.withUnsafeMutableBufferPointer { out in
                CrossEntropy.compute(z.baseAddress!, y.baseAddress!, batch: batch, classes: classes,
                                     gradient: gradient ? out.baseAddress! : nil)
            }
        }
    }
    return CrossEntropyResult(loss: result.loss, correct: result.correct, gradient: g)
}

/// Mean over the batch of log Σ exp(z) − z_label, and (softmax − onehot)/N, in Double.
private func referenceCrossEntropy(_ logits: [Float], _ labels: [Int32], classes: Int) -> (loss: Double, gradient: [Double]) {
    let batch = labels.count
    var loss = 0.0
    var gradient: [Double] = []
    for n in 0..<batch {
        let row = logits[(n * classes)..<((n + 1) * classes)]
        let lse = logSumExp(row)
        loss += lse - Double(row[row.startIndex + Int(labels[n])])
        for (k, z) in row.enumerated() {
            gradient.append((Foundation.exp(Double(z) - lse) - (k == Int(labels[n]) ? 1 : 0)) / Double(batch))
        }
    }
    return (loss / Double(batch), gradient)
}

/// Tung & Mori (ICCV 2019), eq. 2–4, by definition in Double: G = A·Aᵀ, each row divided by
/// its L2 norm (a zero row stays zero, as torch.nn.functional.normalize leaves it),
/// L = ‖Ĝ_s − Ĝ_t‖²_F / b².
private func referenceSimilarityLoss(student: [Double], studentFeatures: Int, teacher: [Double],
                                     teacherFeatures: Int, batch b: Int) -> Double {
    func normalizedGram(_ a: [Double], _ d: Int) -> [Double] {
        var g = [Double](repeating: 0, count: b * b)
        for i in 0..<b {
            for j in 0..<b {
                var total = 0.0
                for k in 0..<d { total += a[i * d + k] * a[j * d + k] }
                g[i * b + j] = total
            }
            let norm = (0..<b).map { g[i * b + $0] * g[i * b + $0] }.reduce(0, +).squareRoot()
            if norm > 0 { for j in 0..<b { g[i * b + j] /= norm } }
        }
        return g
    }
    let gs = normalizedGram(student, studentFeatures), gt = normalizedGram(teacher, teacherFeatures)
    return zip(gs, gt).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / Double(b * b)
}

/// (loss, gradient) from the engine's SimilarityPreservingLoss.
private func similarityLoss(student: [Float], studentFeatures: Int, teacher: [Float], teacherFeatures: Int,
                            batch: Int, weight: Float = 1, gradient: Bool = true) throws -> (loss: Double, gradient: [Float]) {
    let loss = try SimilarityPreservingLoss(batch: batch)
    let s = try FloatBuffer(student), t = try FloatBuffer(teacher)
    let g = try FloatBuffer(count: student.count)
    g.buffer.update(repeating: .nan)
    let value = loss.compute(student: s.pointer, studentFeatures: studentFeatures, teacher: t.pointer,
                             teacherFeatures: teacherFeatures, weight: weight, studentGradient: gradient ? g.pointer : nil)
    return (value, g.array)
}

// MARK: - Cross-entropy

@Suite("Losses")
struct LossTests {
    @Test("CrossEntropy loss, gradient and correct count equal the closed form")
    func crossEntropyClosedForm() {
        var generator = SeededGenerator(seed: 31)
        let batch = 5, classes = 7
        let logits = GradientCheck.normal(batch * classes, generator: &generator).map { $0 * 3 }
        let labels: [Int32] = (0..<batch).map { _ in Int32(generator.nextInt(below: classes)) }
        let result = crossEntropy(logits, labels, classes: classes)
        let reference = referenceCrossEntropy(logits, labels, classes: classes)
        // Float exp and Float z − max: a few u of the logits' size (|z| ≲ 10) → ≲ 1e-6.
        #expect(abs(result.loss - reference.loss) <= 1e-5, "loss \(result.loss), expected \(reference.loss)")
        // Gradient entries lie in [−1/N, 1/N]; Float softmax is good to ~1e-7 of that.
        let error = zip(result.gradient, reference.gradient).map { abs(Double($0) - $1) }.max() ?? .infinity
        #expect(error <= 1e-6, "gradient error \(error)")
        let expectedCorrect = (0..<batch).filter { n in
            let row = logits[(n * classes)..<((n + 1) * classes)]
            return row.firstIndex(of: row.max()!)! - n * classes == Int(labels[n])
        }.count
        #expect(result.correct == expectedCorrect)
        // Without a gradient buffer, the same loss.
        #expect(crossEntropy(logits, labels, classes: classes, gradient: false).loss == result.loss)
    }

    @Test("CrossEntropy with logits of ±1e4 stays finite and exact (the log-sum-exp shift)")
    func crossEntropyHugeLogits() {
        // Every value is exactly representable in Float (1e4 has 10 bits of fraction left).
        let classes = 4
        let logits: [Float] = [
            1e4, 1e4 - 1.5, -1e4, 0,      // label 1: log(1 + e^−1.5) + 1.5 (exp(1e4) overflows unshifted)
            -1e4, -1e4, -1e4, -1e4,       // label 3: log 4 (exp(−1e4) underflows unshifted)
            1e4, -1e4, -1e4, -1e4,        // label 1: 2e4, a confident wrong answer
            1e4, 1e4, 1e4, 9999,          // label 0: log(3 + e^−1)
        ]
        let labels: [Int32] = [1, 3, 1, 0]
        let result = crossEntropy(logits, labels, classes: classes)
        let perSample: [Double] = [
            Foundation.log(1 + Foundation.exp(-1.5)) + 1.5,
            Foundation.log(4),
            2e4,
            Foundation.log(3 + Foundation.exp(-1)),
        ]
        let expected = perSample.reduce(0, +) / 4
        #expect(result.loss.isFinite)
        // The loss is ~5e3: Double accumulation, Float z − max exact here; 1e-6 relative.
        #expect(abs(result.loss - expected) <= 1e-6 * expected, "loss \(result.loss), expected \(expected)")
        #expect(result.gradient.allSatisfy { $0.isFinite })
        let reference = referenceCrossEntropy(logits, labels, classes: classes)
        let error = zip(result.gradient, reference.gradient).map { abs(Double($0) - $1) }.max() ?? .infinity
        #expect(error <= 1e-6, "gradient error \(error)")
        // Each row of the gradient sums to zero (softmax sums to one).
        for n in 0..<4 {
            let total = result.gradient[(n * classes)..<((n + 1) * classes)].map(Double.init).reduce(0, +)
            #expect(abs(total) <= 1e-7, "row \(n) sums to \(total)")
        }
    }

    @Test("CrossEntropy gradient matches central finite differences of its loss")
    func crossEntropyFiniteDifferences() {
        var generator = SeededGenerator(seed: 32)
        let batch = 3, classes = 5
        var logits = GradientCheck.normal(batch * classes, generator: &generator).map { $0 * 2 }
        let labels: [Int32] = [4, 0, 2]
        let analytic = crossEntropy(logits, labels, classes: classes).gradient
        // h = 1e-2: truncation h²·|f'''|/6 ≲ 2e-6 for log-softmax (|f'''| ≤ 0.1), rounding
        // u·L/h ≈ 1e-5; the gradient's scale is ~1/N = 0.3, so 1e-3 of it is ample.
        let h: Float = 1e-2
        var scale = 0.0, maximumError = 0.0
        for i in logits.indices {
            let original = logits[i]
            logits[i] = original + h
            let plus = crossEntropy(logits, labels, classes: classes, gradient: false).loss
            logits[i] = original - h
            let minus = crossEntropy(logits, labels, classes: classes, gradient: false).loss
            logits[i] = original
            let numeric = (plus - minus) / (Double(original + h) - Double(original - h))
            scale = max(scale, abs(numeric))
            maximumError = max(maximumError, abs(numeric - Double(analytic[i])))
        }
        #expect(scale > 0.05)
        #expect(maximumError <= 1e-3 * scale, "max error \(maximumError), scale \(scale)")
    }

    // MARK: - Similarity-preserving loss

    @Test("SimilarityPreservingLoss equals Tung & Mori's formula, student and teacher of different widths")
    func similarityValue() throws {
        var generator = SeededGenerator(seed: 33)
        let batch = 5, studentFeatures = 7, teacherFeatures = 12
        let student = GradientCheck.normal(batch * studentFeatures, generator: &generator)
        let teacher = GradientCheck.normal(batch * teacherFeatures, generator: &generator).map { $0 + 0.3 }
        let expected = referenceSimilarityLoss(student: student.map(Double.init), studentFeatures: studentFeatures,
                                               teacher: teacher.map(Double.init), teacherFeatures: teacherFeatures,
                                               batch: batch)
        #expect(expected > 0.01)   // the case is not degenerate
        // The weight scales the gradient only, not the returned loss.
        for weight: Float in [1, 2.5] {
            let (loss, _) = try similarityLoss(student: student, studentFeatures: studentFeatures, teacher: teacher,
                                               teacherFeatures: teacherFeatures, batch: batch, weight: weight)
            // Ĝ entries lie in [−1, 1] with Float error ~√D·u ≈ 2e-7; the loss averages b² squares.
            #expect(abs(loss - expected) <= 1e-5 * expected, "weight \(weight): loss \(loss), expected \(expected)")
        }
    }

    @Test("SimilarityPreservingLoss gradient w.r.t. the student matches central finite differences")
    func similarityGradient() throws {
        var generator = SeededGenerator(seed: 34)
        let batch = 5, studentFeatures = 7, teacherFeatures = 12
        var student = GradientCheck.normal(batch * studentFeatures, generator: &generator)
        let teacher = GradientCheck.normal(batch * teacherFeatures, generator: &generator).map { $0 + 0.3 }
        let weight: Float = 2.5
        let analytic = try similarityLoss(student: student, studentFeatures: studentFeatures, teacher: teacher,
                                          teacherFeatures: teacherFeatures, batch: batch, weight: weight)
            .gradient.map { Double($0) / Double(weight) }
        let scale = analytic.map(abs).max() ?? 0
        #expect(scale > 1e-3)

        // (a) Against the Double reference at h = 1e-4: truncation ~h²·|f'''| ≈ 1e-8 and no
        // Float noise, so the engine's Float gradient (~1e-6 relative) is held to 1e-4.
        var studentDouble = student.map(Double.init)
        let teacherDouble = teacher.map(Double.init)
        func reference(_ a: [Double]) -> Double {
            referenceSimilarityLoss(student: a, studentFeatures: studentFeatures, teacher: teacherDouble,
                                    teacherFeatures: teacherFeatures, batch: batch)
        }
        var errorReference = 0.0
        for i in studentDouble.indices {
            let original = studentDouble[i]
            studentDouble[i] = original + 1e-4
            let plus = reference(studentDouble)
            studentDouble[i] = original - 1e-4
            let minus = reference(studentDouble)
            studentDouble[i] = original
            errorReference = max(errorReference, abs((plus - minus) / 2e-4 - analytic[i]))
        }
        #expect(errorReference <= 1e-4 * scale, "vs reference: max error \(errorReference), scale \(scale)")

        // (b) Against the engine's own Float loss at h = 1e-2 (see GradientCheck.swift for the
        // step): forward and backward agree to 1e-2 of the scale.
        var errorSelf = 0.0
        for i in student.indices {
            let original = student[i]
            student[i] = original + 1e-2
            let plus = try similarityLoss(student: student, studentFeatures: studentFeatures, teacher: teacher,
                                          teacherFeatures: teacherFeatures, batch: batch, gradient: false).loss
            student[i] = original - 1e-2
            let minus = try similarityLoss(student: student, studentFeatures: studentFeatures, teacher: teacher,
                                           teacherFeatures: teacherFeatures, batch: batch, gradient: false).loss
            student[i] = original
            let numeric = (plus - minus) / (Double(original + 1e-2) - Double(original - 1e-2))
            errorSelf = max(errorSelf, abs(numeric - analytic[i]))
        }
        #expect(errorSelf <= 1e-2 * scale, "vs own loss: max error \(errorSelf), scale \(scale)")
    }

    @Test("SimilarityPreservingLoss of identical activations is 0 with a zero gradient")
    func similarityIdentical() throws {
        var generator = SeededGenerator(seed: 35)
        let batch = 6, features = 9
        let a = GradientCheck.normal(batch * features, generator: &generator)
        let (loss, gradient) = try similarityLoss(student: a, studentFeatures: features, teacher: a,
                                                  teacherFeatures: features, batch: batch, weight: 3)
        #expect(abs(loss) <= 1e-12, "loss \(loss)")
        #expect(gradient.allSatisfy { abs($0) <= 1e-6 }, "gradient \(gradient)")
    }

    @Test("SimilarityPreservingLoss is 0 when the teacher's Gram matrix is a multiple of the student's")
    func similarityScaleInvariant() throws {
        // Teacher = [A, 2A] (twice as wide): G_t = 5·A·Aᵀ, the same rows once normalized.
        var generator = SeededGenerator(seed: 36)
        let batch = 4, features = 5
        let a = GradientCheck.normal(batch * features, generator: &generator)
        var teacher: [Float] = []
        for n in 0..<batch {
            let row = a[(n * features)..<((n + 1) * features)]
            teacher += row
            teacher += row.map { 2 * $0 }
        }
        let (loss, gradient) = try similarityLoss(student: a, studentFeatures: features, teacher: teacher,
                                                  teacherFeatures: 2 * features, batch: batch)
        // Only Float rounding of Ĝ (~1e-7 per entry) separates the two: L ~ 1e-14.
        #expect(abs(loss) <= 1e-10, "loss \(loss)")
        #expect(gradient.allSatisfy { abs($0) <= 1e-5 }, "gradient \(gradient)")
    }

    @Test("SimilarityPreservingLoss with an all-zero activation row gives no NaN and the reference value")
    func similarityZeroRow() throws {
        var generator = SeededGenerator(seed: 37)
        let batch = 5, studentFeatures = 6, teacherFeatures = 8, zeroRow = 2
        var student = GradientCheck.normal(batch * studentFeatures, generator: &generator)
        var teacher = GradientCheck.normal(batch * teacherFeatures, generator: &generator)
        for k in 0..<studentFeatures { student[zeroRow * studentFeatures + k] = 0 }

        for zeroTeacher in [false, true] {
            if zeroTeacher { for k in 0..<teacherFeatures { teacher[4 * teacherFeatures + k] = 0 } }
            let (loss, gradient) = try similarityLoss(student: student, studentFeatures: studentFeatures, teacher: teacher,
                                                      teacherFeatures: teacherFeatures, batch: batch)
            let expected = referenceSimilarityLoss(student: student.map(Double.init), studentFeatures: studentFeatures,
                                                   teacher: teacher.map(Double.init), teacherFeatures: teacherFeatures,
                                                   batch: batch)
            #expect(loss.isFinite && abs(loss - expected) <= 1e-5 * expected, "loss \(loss), expected \(expected)")
            #expect(gradient.allSatisfy { $0.isFinite }, "gradient \(gradient)")

            // Rows other than the zero one: the loss is smooth there (the zero row's Ĝ row
            // stays 0 whatever they do), so finite differences of the reference apply.
            var a = student.map(Double.init)
            let t = teacher.map(Double.init)
            var maximumError = 0.0, scale = 0.0
            for i in a.indices where i / studentFeatures != zeroRow {
                let original = a[i]
                a[i] = original + 1e-4
                let plus = referenceSimilarityLoss(student: a, studentFeatures: studentFeatures, teacher: t,
                                                   teacherFeatures: teacherFeatures, batch: batch)
                a[i] = original - 1e-4
                let minus = referenceSimilarityLoss(student: a, studentFeatures: studentFeatures, teacher: t,
                                                    teacherFeatures: teacherFeatures, batch: batch)
                a[i] = original
                let numeric = (plus - minus) / 2e-4
                scale = max(scale, abs(numeric))
                maximumError = max(maximumError, abs(numeric - Double(gradient[i])))
            }
            #expect(scale > 1e-3)
            #expect(maximumError <= 1e-4 * scale, "zero teacher row \(zeroTeacher): max error \(maximumError), scale \(scale)")
        }
    }
}
