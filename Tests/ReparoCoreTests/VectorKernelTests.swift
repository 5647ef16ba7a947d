import CVectorKernels
import Foundation
import Testing
@testable import ReparoCore

// The kernels of every level this CPU runs (Sources/CVectorKernels: avx512, avx2, portable C),
// each level's table called directly, whatever the build and whatever REPARO_ISA says (a debug
// build compiles them unoptimized and the engine does not use them, but they still compute the
// same values), against oracles that share nothing with them:
// - the GEMMs against a Double triple loop. Tolerance: a Float32 sum of k products in any
//   order is within k·u·Σ|aᵢbᵢ| of the exact sum (u = 2⁻²⁴; Higham, Accuracy and Stability,
//   §3.1), a bound that holds for every blocking and FMA use; one wrong, missing or duplicated
//   term of this random data is far larger than it;
// - im2col / col2im rows against the Swift loops (`im2colScalar`, `col2imScalar`, themselves
//   checked by the convolution and gradient tests): the same copies and the same additions in
//   the same order, so equal bit for bit.
// A level the CPU lacks is not run (the list of levels says which ran).

private let cpuHasAVX512 = vector_kernels_cpu_supported() != 0

/// The levels whose kernels this CPU can run and this build has.
private let testedLevels: [VectorKernels.InstructionSet] = VectorKernels.InstructionSet.allCases.filter {
    level($0) <= vector_kernels_cpu_level() && vector_kernels_table_for(level($0)) != nil
}

private func level(_ set: VectorKernels.InstructionSet) -> Int32 {
    switch set {
    case .portable: return Int32(vector_kernels_portable.rawValue)
    case .avx2: return Int32(vector_kernels_avx2.rawValue)
    case .avx512: return Int32(vector_kernels_avx512.rawValue)
    }
}

/// The kernels of `set` (only called for `testedLevels`).
private func kernelTable(_ set: VectorKernels.InstructionSet) -> vector_kernels_table {
    vector_kernels_table_for(level(set))!.pointee
}

private func randomMatrix(_ count: Int, seed: UInt64) -> [Float] {
    var generator = SeededGenerator(seed: seed)
    return (0..<count).map { _ in generator.nextUniform() * 2 - 1 }
}

/// Checks C (row-major, ldc) against the exact product within the k·u·Σ|ab| bound; `old` is
/// the C before the call when accumulating. `element(i, p)`, `other(p, j)` read op(A), op(B).
private func checkProduct(m: Int, n: Int, k: Int, c: [Float], ldc: Int, old: [Float]?,
                          element: (Int, Int) -> Float, other: (Int, Int) -> Float,
                          _ label: String) {
    let unit = 0x1p-24
    var worst = 0.0
    for i in 0..<m {
        for j in 0..<n {
            var exact = old.map { Double($0[i * ldc + j]) } ?? 0
            var magnitude = abs(exact)
            for p in 0..<k {
                let term = Double(element(i, p)) * Double(other(p, j))
                exact += term
                magnitude += abs(term)
            }
            let actual = Double(c[i * ldc + j])
            let bound = Double(k + 1) * unit * magnitude
            worst = max(worst, actual.isNaN ? .infinity : abs(actual - exact) - bound)
        }
    }
    #expect(worst <= 0, "\(label): error exceeds the k·u·Σ|ab| bound by \(worst)")
}

/// Runs `body` with the base addresses of two operands and a result.
private func withPointers(_ a: [Float], _ b: [Float], _ c: inout [Float],
                          _ body: (UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?) -> Void) {
    a.withUnsafeBufferPointer { a in
        b.withUnsafeBufferPointer { b in
            c.withUnsafeMutableBufferPointer { c in body(a.baseAddress, b.baseAddress, c.baseAddress) }
        }
    }
}

/// The padding columns of C (j ≥ n, up to ldc) still hold their old bits.
private func expectPaddingUntouched(_ c: [Float], _ old: [Float], m: Int, n: Int, ldc: Int, _ label: String) {
    for i in 0..<m {
        for j in n..<ldc where c[i * ldc + j].bitPattern != old[i * ldc + j].bitPattern {
            Issue.record("\(label): wrote C[\(i), \(j)] outside the matrix")
        }
    }
}

@Suite("Vector kernels, every level")
struct VectorKernelTests {
    @Test("op(A)·B matches the exact product within the rounding bound, all tile edges",
          arguments: testedLevels, [false, true])
    func narrowGemm(level: VectorKernels.InstructionSet, transposeA: Bool) throws {
        let kernels = kernelTable(level)
        var seed: UInt64 = transposeA ? 100 : 1
        // m: every tile height 1…8 (avx512) and 1…6 (avx2) and balanced splits; n: below, at and across the 16- and
        // 32-column edges; k: empty, short, at and across the 256 depth block.
        for m in [1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 17, 20, 39] {
            for n in [1, 15, 16, 17, 32, 33, 70] {
                for k in [0, 1, 7, 256, 257, 600] where m * n * k <= 400_000 {
                    for accumulate in [false, true] {
                        seed &+= 1
                        let lda = (transposeA ? m : k) + 3, ldb = n + 2, ldc = n + 5
                        let rowsA = transposeA ? k : m
                        let a = randomMatrix(max(rowsA * lda, 1), seed: seed)
                        let b = randomMatrix(max(k * ldb, 1), seed: seed &+ 7_777)
                        // NaN where C is not to be read (beta = 0) shows a kernel reading it.
                        let old = accumulate ? randomMatrix(m * ldc, seed: seed &+ 99) : [Float](repeating: .nan, count: m * ldc)
                        var c = old
                        withPointers(a, b, &c) { a, b, c in
                            kernels.narrow_sgemm(transposeA ? 1 : 0, m, n, k, a, lda, b, ldb, accumulate ? 1 : 0, c, ldc)
                        }
                        checkProduct(m: m, n: n, k: k, c: c, ldc: ldc, old: accumulate ? old : nil,
                                     element: { i, p in transposeA ? a[p * lda + i] : a[i * lda + p] },
                                     other: { p, j in b[p * ldb + j] },
                                     "m \(m) n \(n) k \(k) transposeA \(transposeA) accumulate \(accumulate)")
                        expectPaddingUntouched(c, old, m: m, n: n, ldc: ldc, "m \(m) n \(n) k \(k)")
                    }
                }
            }
        }
    }

    @Test("A·Bᵀ matches the exact product within the rounding bound, all tile edges", arguments: testedLevels)
    func narrowGemmTransposedB(level: VectorKernels.InstructionSet) throws {
        let kernels = kernelTable(level)
        var seed: UInt64 = 5_000
        for m in [1, 3, 4, 5, 8, 13, 20, 39] {
            for n in [1, 5, 6, 7, 12, 25] {
                for k in [0, 1, 15, 16, 17, 64, 333] {
                    for accumulate in [false, true] {
                        seed &+= 1
                        let lda = k + 3, ldb = k + 1, ldc = n + 2
                        let a = randomMatrix(max(m * lda, 1), seed: seed)
                        let b = randomMatrix(max(n * ldb, 1), seed: seed &+ 31)
                        let old = accumulate ? randomMatrix(m * ldc, seed: seed &+ 77) : [Float](repeating: .nan, count: m * ldc)
                        var c = old
                        withPointers(a, b, &c) { a, b, c in
                            kernels.narrow_sgemm_abt(m, n, k, a, lda, b, ldb, accumulate ? 1 : 0, c, ldc)
                        }
                        checkProduct(m: m, n: n, k: k, c: c, ldc: ldc, old: accumulate ? old : nil,
                                     element: { i, p in a[i * lda + p] }, other: { p, j in b[j * ldb + p] },
                                     "A·Bᵀ m \(m) n \(n) k \(k) accumulate \(accumulate)")
                        expectPaddingUntouched(c, old, m: m, n: n, ldc: ldc, "A·Bᵀ m \(m) n \(n) k \(k)")
                    }
                }
            }
        }
    }

    @Test("Gathered B rows and multi-segment sums match the exact product within the rounding bound", arguments: testedLevels)
    func gatheredRows(level: VectorKernels.InstructionSet) throws {
        let kernels = kernelTable(level)
        var generator = SeededGenerator(seed: 77)
        for (m, n, k) in [(5, 40, 9), (19, 33, 300), (8, 70, 27), (3, 17, 1)] {
            // op(A)·B with B's row p at a random offset of a pool (rows may overlap, as a
            // conv's shifted taps do).
            let pool = randomMatrix(4_000, seed: UInt64(m * n * k))
            let offsets = (0..<k).map { _ in generator.nextInt(below: 4_000 - n) }
            let a = randomMatrix(m * k, seed: UInt64(m + n + k))
            var c = [Float](repeating: .nan, count: m * n)
            a.withUnsafeBufferPointer { a in
                pool.withUnsafeBufferPointer { pool in
                    offsets.withUnsafeBufferPointer { offsets in
                        c.withUnsafeMutableBufferPointer { c in
                            kernels.narrow_sgemm_gathered(m, n, k, a.baseAddress, k, pool.baseAddress, offsets.baseAddress, 0,
                                                  c.baseAddress, n)
                        }
                    }
                }
            }
            checkProduct(m: m, n: n, k: k, c: c, ldc: n, old: nil, element: { i, p in a[i * k + p] },
                         other: { p, j in pool[offsets[p] + j] }, "gathered m \(m) n \(n) k \(k)")

            // A·Bᵀ over 3 segments: C = Σ_s A_s·B_sᵀ, A_s = A + s·aStep, B_s's row j at
            // pool + offsets[j] + s·bStep; as one product over the concatenated sums.
            let segments = 3, aStep = m * k + 5, bStep = 97
            let rows = (0..<n).map { _ in generator.nextInt(below: 4_000 - k - 2 * bStep) }
            let stacked = randomMatrix(segments * aStep, seed: UInt64(k))
            let old = randomMatrix(m * n, seed: 5)
            var d = old
            stacked.withUnsafeBufferPointer { stacked in
                pool.withUnsafeBufferPointer { pool in
                    rows.withUnsafeBufferPointer { rows in
                        d.withUnsafeMutableBufferPointer { d in
                            kernels.narrow_sgemm_abt_gathered(m, n, k, stacked.baseAddress, k, pool.baseAddress, rows.baseAddress,
                                                      segments, aStep, bStep, 1, d.baseAddress, n)
                        }
                    }
                }
            }
            checkProduct(m: m, n: n, k: segments * k, c: d, ldc: n, old: old,
                         element: { i, p in stacked[(p / k) * aStep + i * k + p % k] },
                         other: { p, j in pool[rows[j] + (p / k) * bStep + p % k] }, "segments m \(m) n \(n) k \(k)")
        }
    }

    @Test("Splitting C into column or row pieces gives bit-identical results (thread-count independence)", arguments: testedLevels)
    func splitInvariance(level: VectorKernels.InstructionSet) throws {
        let kernels = kernelTable(level)
        let m = 39, n = 150, k = 700
        let a = randomMatrix(m * k, seed: 1), b = randomMatrix(k * n, seed: 2), bt = randomMatrix(n * k, seed: 3)
        var whole = [Float](repeating: 0, count: m * n), pieces = whole
        var wholeT = whole, piecesT = whole
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                bt.withUnsafeBufferPointer { bt in
                    let a = a.baseAddress!, b = b.baseAddress!, bt = bt.baseAddress!
                    whole.withUnsafeMutableBufferPointer { c in
                        kernels.narrow_sgemm(0, m, n, k, a, k, b, n, 0, c.baseAddress, n)
                    }
                    pieces.withUnsafeMutableBufferPointer { c in
                        let c = c.baseAddress!
                        kernels.narrow_sgemm(0, m, 48, k, a, k, b, n, 0, c, n)                       // columns 0..<48
                        kernels.narrow_sgemm(0, 20, n - 48, k, a, k, b + 48, n, 0, c + 48, n)         // rows 0..<20, rest
                        kernels.narrow_sgemm(0, m - 20, n - 48, k, a + 20 * k, k, b + 48, n, 0, c + 20 * n + 48, n)
                    }
                    wholeT.withUnsafeMutableBufferPointer { c in
                        kernels.narrow_sgemm_abt(m, n, k, a, k, bt, k, 0, c.baseAddress, n)
                    }
                    piecesT.withUnsafeMutableBufferPointer { c in
                        let c = c.baseAddress!
                        kernels.narrow_sgemm_abt(m, 61, k, a, k, bt, k, 0, c, n)
                        kernels.narrow_sgemm_abt(m, n - 61, k, a, k, bt + 61 * k, k, 0, c + 61, n)
                    }
                }
            }
        }
        #expect(whole.map(\.bitPattern) == pieces.map(\.bitPattern))
        #expect(wholeT.map(\.bitPattern) == piecesT.map(\.bitPattern))
    }

    @Test("im2col and col2im rows equal the Swift loops bit for bit (kernel 1/3/5, padding 0–2, widths 1–33)", arguments: testedLevels)
    func unfoldAndFold(level: VectorKernels.InstructionSet) throws {
        let kernels = kernelTable(level)
        var seed: UInt64 = 9_000
        for (kernel, padding) in [(1, 0), (3, 1), (3, 0), (5, 2), (3, 2)] {
            for (height, width) in [(1, 1), (2, 2), (4, 4), (3, 7), (8, 8), (5, 16), (6, 17), (2, 33)] {
                let outputHeight = height + 2 * padding - kernel + 1, outputWidth = width + 2 * padding - kernel + 1
                guard outputHeight > 0, outputWidth > 0 else { continue }
                seed &+= 1
                let batch = 3, channels = 2, images = 1..<3
                let g = ConvolutionGeometry(batch: batch, inputChannels: channels, inputHeight: height, inputWidth: width,
                                            kernelHeight: kernel, kernelWidth: kernel, stride: 1, padding: padding,
                                            outputHeight: outputHeight, outputWidth: outputWidth)
                let x = try FloatBuffer(randomMatrix(batch * channels * height * width, seed: seed))
                let columnCount = g.patchSize * images.count * g.outputSpatial
                let expected = try FloatBuffer(count: columnCount), actual = try FloatBuffer(count: columnCount)
                actual.buffer.update(repeating: .nan)
                im2colScalar(x.pointer, g, images: images, expected.pointer, parallel: false)
                var geometry = g.unfoldGeometry
                for row in 0..<g.patchSize {
                    kernels.unfold_row_stride1(x.pointer, &geometry, row, images.lowerBound, images.count,
                                       actual.pointer + row * images.count * g.outputSpatial)
                }
                #expect(actual.array.map(\.bitPattern) == expected.array.map(\.bitPattern),
                        "im2col kernel \(kernel) padding \(padding) \(height)×\(width)")

                let columns = try FloatBuffer(randomMatrix(columnCount, seed: seed &+ 5))
                // Images outside `images` must stay untouched: fill them with a marker.
                let foldedExpected = try FloatBuffer(count: x.count), foldedActual = try FloatBuffer(count: x.count)
                foldedExpected.buffer.update(repeating: 42)
                foldedActual.buffer.update(repeating: 42)
                col2imScalar(columns.pointer, g, images: images, foldedExpected.pointer, parallel: false)
                for c in 0..<channels {
                    kernels.fold_channel_stride1(columns.pointer, &geometry, c, images.lowerBound, images.count, foldedActual.pointer)
                }
                #expect(foldedActual.array.map(\.bitPattern) == foldedExpected.array.map(\.bitPattern),
                        "col2im kernel \(kernel) padding \(padding) \(height)×\(width)")
            }
        }
    }

    @Test("2×2 max pooling equals the definition: values bit for bit, winners' indices, ties and NaNs (widths 2–35)", arguments: testedLevels)
    func maxPool(level: VectorKernels.InstructionSet) throws {
        let kernels = kernelTable(level)
        var generator = SeededGenerator(seed: 77)
        for height in [2, 3, 5, 8] {
            for width in [2, 3, 4, 7, 8, 16, 31, 32, 33, 35] {
                let planes = 3, count = planes * height * width
                // Few distinct values (many ties), some NaNs, all negative (a max from 0 would fail).
                let x: [Float] = (0..<count).map { _ in
                    generator.nextInt(below: 13) == 0 ? .nan : -1 - Float(generator.nextInt(below: 4))
                }
                let (values, indices) = TestSupport.maxPool(x, planes: planes, height: height, width: width, kernel: 2,
                                                            stride: 2)
                let outputs = values.count
                let input = try FloatBuffer(x)
                let y = try FloatBuffer(count: outputs + 1)  // one float past the outputs: must stay untouched
                y.buffer.update(repeating: 42)
                var argmax = [Int32](repeating: -7, count: outputs + 1)
                argmax.withUnsafeMutableBufferPointer { kernels.max_pool_2x2(input.pointer, planes, height, width, y.pointer, $0.baseAddress) }
                let label = "\(height)×\(width)"
                #expect(Array(y.array.prefix(outputs)).map(\.bitPattern) == values.map(\.bitPattern), "values \(label)")
                #expect(argmax.prefix(outputs).map(Int.init) == indices, "indices \(label)")
                #expect(y.array.last == 42 && argmax.last == -7, "wrote past the outputs \(label)")
                // Without indices (inference): the same values.
                let values2 = try FloatBuffer(count: outputs)
                kernels.max_pool_2x2(input.pointer, planes, height, width, values2.pointer, nil)
                #expect(values2.array.map(\.bitPattern) == values.map(\.bitPattern), "values without indices \(label)")
            }
        }
    }

    @Test("Padding planes and cropping them back (with and without bias) copy exactly (widths 1–35)",
          arguments: testedLevels)
    func padAndCrop(level: VectorKernels.InstructionSet) throws {
        let kernels = kernelTable(level)
        for (height, width, padding) in [(1, 1, 1), (3, 7, 1), (4, 8, 2), (5, 9, 1), (2, 16, 1), (3, 17, 2), (2, 35, 1)] {
            let planes = 3, paddedWidth = width + 2 * padding, paddedPlane = (height + 2 * padding) * paddedWidth
            let x = randomMatrix(planes * height * width, seed: UInt64(height * 100 + width))
            let marker: Float = 42
            var padded = [Float](repeating: marker, count: planes * paddedPlane)
            x.withUnsafeBufferPointer { x in
                padded.withUnsafeMutableBufferPointer { kernels.pad_planes(x.baseAddress, planes, height, width, padding, $0.baseAddress) }
            }
            var expected = [Float](repeating: marker, count: planes * paddedPlane)
            for plane in 0..<planes {
                for row in 0..<height {
                    for column in 0..<width {
                        expected[plane * paddedPlane + (row + padding) * paddedWidth + column + padding] =
                            x[(plane * height + row) * width + column]
                    }
                }
            }
            #expect(padded.map(\.bitPattern) == expected.map(\.bitPattern), "pad \(height)×\(width) p\(padding)")

            // Crop the padded planes' interiors back (row stride paddedWidth), plus a bias per plane.
            let bias: [Float] = [0.5, -1.25, 3]
            for withBias in [false, true] {
                var cropped = [Float](repeating: marker, count: planes * height * width + 1)
                padded.withUnsafeBufferPointer { padded in
                    bias.withUnsafeBufferPointer { bias in
                        cropped.withUnsafeMutableBufferPointer {
                            kernels.crop_planes(padded.baseAddress! + padding * paddedWidth + padding, planes, height, width,
                                                paddedWidth, paddedPlane, withBias ? bias.baseAddress : nil, $0.baseAddress)
                        }
                    }
                }
                let wanted = x.enumerated().map { index, value in withBias ? value + bias[index / (height * width)] : value }
                #expect(cropped.prefix(wanted.count).map(\.bitPattern) == wanted.map(\.bitPattern) && cropped.last == marker,
                        "crop \(height)×\(width) bias \(withBias)")
            }
        }
    }

    @Test("op(A)·B is bit-identical at the avx2 and avx512 levels (the same FMA chain per element)")
    func narrowGemmAcrossLevels() {
        guard testedLevels.contains(.avx2), testedLevels.contains(.avx512) else { return }
        for (m, n, k) in [(7, 45, 300), (20, 33, 600), (1, 17, 5)] {
            let a = randomMatrix(m * k, seed: 11), b = randomMatrix(k * n, seed: 12)
            var results: [[UInt32]] = []
            for level in [VectorKernels.InstructionSet.avx2, .avx512] {
                var c = randomMatrix(m * n, seed: 13)
                withPointers(a, b, &c) { a, b, c in kernelTable(level).narrow_sgemm(0, m, n, k, a, k, b, n, 1, c, n) }
                results.append(c.map(\.bitPattern))
            }
            #expect(results[0] == results[1], "m \(m) n \(n) k \(k)")
        }
    }

    @Test("The engine uses the kernels when the test script asks for an optimized build on an AVX2 or AVX-512 CPU")
    func engineUsesKernels() {
        // scripts/test.sh compiles the C targets with -O2 and sets REPARO_EXPECT_VECTOR_KERNELS=1,
        // so a lost flag cannot silently leave every conv test on the OpenBLAS path.
        let environment = ProcessInfo.processInfo.environment
        guard environment["REPARO_EXPECT_VECTOR_KERNELS"] == "1", environment["REPARO_ISA"] == nil else { return }
        #expect(VectorKernels.available == (vector_kernels_cpu_level() != Int32(vector_kernels_portable.rawValue)))
        #expect(VectorKernels.available == (cpuHasAVX512 || VectorKernels.instructionSet == .avx2))
    }
}
