/// A convolution on planes so small that every output position sees (nearly) every input
/// position — VGG's 2×2 layers, any 1×1 plane — computed as ONE dense linear map per batch.
///
/// Per image the conv is a linear map from x [Cin, Q] (Q = H·W input positions) to y [Cout, P]
/// (P = Hout·Wout). Its matrix T [Cout·P, Cin·Q] holds T[(co, p), (ci, q)] = W[co, ci, u, v]
/// when tap (u, v) carries input q to output p, else 0. In NCHW a batch's x already is an
/// [N, Cin·Q] row-major matrix and y an [N, Cout·P] one, so
///   forward   y  = x · Tᵀ + b              (one GEMM over the batch, no im2col, no reordering)
///   input     dx = dy · T
///   weight    dT = dyᵀ · x,   dW[co, ci, u, v] += Σ over the (p, q) that tap (u, v) links of dT
/// On a 2×2 plane with a 3×3 kernel and padding 1, each output sees all 4 inputs through 4 of
/// the 9 taps: im2col computes 9 products per (output, channel pair), 5 of them against padding
/// zeros; this map computes 4 — 2.25× fewer multiply-adds, as GEMMs of a regular shape
/// (N × 4·Cout × 4·Cin) instead of narrow ones with 4·N columns.
///
/// T is rebuilt at every forward from the weight and kept for the backward that follows. Row
/// block (co, ·) of T comes from row co of W alone, so the rebuild streams W and T once
/// (W is cold by then: a transpose-based layout cost 3× more). Entries no tap links never
/// change: they are zeroed once, when the workspace is made.
struct SmallPlaneConvolution {
    let inputChannels: Int
    let outputChannels: Int
    let inputPositions: Int    // Q = H·W
    let outputPositions: Int   // P = Hout·Wout
    let kernelArea: Int        // k·k
    /// For each (tap, input position q, output position p) the conv links, in a fixed order:
    /// the tap's index u·k + v, and the place p·(Cin·Q) + q of its entry in T's first block.
    let taps: [Int]
    let places: [Int]

    init(conv: Conv2D) {
        let input = conv.inputShape, output = conv.outputShape
        let k = conv.kernelSize
        inputChannels = input.channels
        outputChannels = output.channels
        inputPositions = input.spatial
        outputPositions = output.spatial
        kernelArea = k * k
        let rowLength = input.channels * input.spatial
        var taps: [Int] = [], places: [Int] = []
        for oh in 0..<output.height {
            for ow in 0..<output.width {
                for u in 0..<k {
                    let ih = oh * conv.stride - conv.padding + u
                    guard ih >= 0, ih < input.height else { continue }
                    for v in 0..<k {
                        let iw = ow * conv.stride - conv.padding + v
                        guard iw >= 0, iw < input.width else { continue }
                        taps.append(u * k + v)
                        places.append((oh * output.width + ow) * rowLength + ih * input.width + iw)
                    }
                }
            }
        }
        self.taps = taps
        self.places = places
    }

    /// T's rows (Cout·P) and columns (Cin·Q).
    var rows: Int { outputChannels * outputPositions }
    var columns: Int { inputChannels * inputPositions }

    /// Whether this path computes `conv` for a batch of `batch` images (`forced` by tests):
    /// the map costs Q/k² of im2col's multiply-adds, so it takes planes of at most k² input
    /// positions, and T may hold at most twice the weight's values (P·Q ≤ 2k²); and batches of
    /// at least `minimumBatch` images, which pay for rebuilding T at every forward.
    static func applies(to conv: Conv2D, batch: Int, forced: Bool?) -> Bool {
        let area = conv.kernelSize * conv.kernelSize
        let q = conv.inputShape.spatial, p = conv.outputShape.spatial
        guard conv.kernelSize > 1, q <= area, p * q <= 2 * area else { return false }
        return forced ?? (batch >= minimumBatch)
    }

    /// Smallest batch this path takes by default. Measured on pruned VGG-16's 154-wide 2×2
    /// layers (bench/README.md): at batch 64 a training step's forward and backward of such a
    /// layer take half the im2col path's time, batch-64 inference gains 1–7 % overall; at 8–32
    /// images inference is even to 5 % slower and training even; at batch 1 inference is 2×
    /// slower (rebuilding T is then most of the work).
    static let minimumBatch = 64

    /// `body(taps, places, link count)` with the link tables' addresses, for a parallel loop
    /// over the output channels (channels are independent). `expand` and `reduce` keep their
    /// own pointer walks: one shared per-entry closure measured 25–40 % slower on the 2×2 layers.
    @inline(__always)
    private func withLinks(_ body: (UnsafePointer<Int>, UnsafePointer<Int>, Int) -> Void) {
        taps.withUnsafeBufferPointer { taps in
            places.withUnsafeBufferPointer { places in
                guard let taps = taps.baseAddress, let places = places.baseAddress else { return }
                body(taps, places, self.taps.count)
            }
        }
    }

    /// Writes W [Cout, Cin, k, k] into the linked entries of T (the others stay zero).
    func expand(_ w: UnsafePointer<Float>, into matrix: UnsafeMutablePointer<Float>) {
        let cin = inputChannels, q = inputPositions, area = kernelArea
        let weightRow = cin * area, block = outputPositions * columns
        withLinks { taps, places, links in
            Parallel.forEach(outputChannels, minimumWork: cin * links * 4,
                             context: (w: w, matrix: matrix, taps: taps, places: places, links: links, cin: cin, q: q,
                                       area: area, weightRow: weightRow, block: block)) { c, co in
                let (taps, places, links) = (c.taps, c.places, c.links)
                var kernel = c.w + co &* c.weightRow
                var target = c.matrix + co &* c.block
                for _ in 0..<c.cin {
                    var link = 0
                    while link < links { target[places[link]] = kernel[taps[link]]; link &+= 1 }
                    kernel += c.area
                    target += c.q
                }
            }
        }
    }

    /// dW [Cout, Cin, k, k] += the sums of dT over the entries each tap links (in a fixed order).
    func reduce(_ matrixGradient: UnsafePointer<Float>, into dW: UnsafeMutablePointer<Float>) {
        let cin = inputChannels, q = inputPositions, area = kernelArea
        let weightRow = cin * area, block = outputPositions * columns
        withLinks { taps, places, links in
            Parallel.forEach(outputChannels, minimumWork: cin * links * 4,
                             context: (dW: dW, matrixGradient: matrixGradient, taps: taps, places: places, links: links,
                                       cin: cin, q: q, area: area, weightRow: weightRow, block: block)) { c, co in
                let (taps, places, links) = (c.taps, c.places, c.links)
                var kernel = c.dW + co &* c.weightRow
                var source = c.matrixGradient + co &* c.block
                for _ in 0..<c.cin {
                    var link = 0
                    while link < links { kernel[taps[link]] += source[places[link]]; link &+= 1 }
                    kernel += c.area
                    source += c.q
                }
            }
        }
    }

    /// y [N, Cout·P] = x [N, Cin·Q] · Tᵀ + b, T expanded from `w` into `matrix`.
    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, weight w: UnsafePointer<Float>,
                 bias: UnsafePointer<Float>?, matrix: UnsafeMutablePointer<Float>) {
        expand(w, into: matrix)
        if let bias {
            // y starts as the bias of each output channel; the GEMM adds x · Tᵀ to it.
            for co in 0..<outputChannels { Vector.fill(y + co * outputPositions, count: outputPositions, value: bias[co]) }
            for n in 1..<max(batch, 1) { (y + n * rows).update(from: y, count: rows) }
        }
        BLAS.gemm(transposeA: false, transposeB: true, m: batch, n: rows, k: columns, a: x, lda: columns,
                  b: matrix, ldb: columns, beta: bias == nil ? 0 : 1, c: y, ldc: rows)
    }

    /// dx = dy · T; dW += the tap sums of dyᵀ · x; db += Σ dy. T is the one the forward built.
    func backward(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>?, batch: Int,
                  matrix: UnsafePointer<Float>, matrixGradient: UnsafeMutablePointer<Float>,
                  weightGradient: UnsafeMutablePointer<Float>?, biasGradient: UnsafeMutablePointer<Float>?) {
        if let weightGradient {
            BLAS.gemm(transposeA: true, transposeB: false, m: rows, n: columns, k: batch, a: dy, lda: rows,
                      b: x, ldb: columns, beta: 0, c: matrixGradient, ldc: columns)
            reduce(matrixGradient, into: weightGradient)
        }
        if let biasGradient {
            for n in 0..<batch {
                for co in 0..<outputChannels {
                    biasGradient[co] += Vector.sum(dy + n * rows + co * outputPositions, count: outputPositions)
                }
            }
        }
        guard let dx else { return }
        BLAS.gemm(transposeA: false, transposeB: false, m: batch, n: columns, k: rows, a: dy, lda: rows,
                  b: matrix, ldb: columns, beta: 0, c: dx, ldc: columns)
    }
}
