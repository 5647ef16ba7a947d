import CVectorKernels

/// A stride-1 "same" convolution (odd kernel k, padding (k − 1)/2: VGG's and ResNet's 3×3)
/// computed without im2col, one image at a time (an implicit GEMM):
///
/// The image is copied into zero-bordered planes of width Wp = W + 2p. In that layout the
/// column-matrix row of tap (c, u, v), read at output position q = oh·Wp + ow, is the padded
/// plane of channel c shifted by u·Wp + v: a contiguous run, so the GEMM reads its B rows
/// straight from the padded planes through a table of offsets (`narrow_sgemm_gathered`). The
/// output comes out in the same padded-width layout, [Cout, (H − 1)·Wp + W]; its 2p extra
/// columns per row (ow ≥ W, garbage) are dropped when copying to y. That costs 2p/W more
/// multiply-adds (6 % at 32×32, 12.5 % at 16×16) and saves building and reading the K × H·W
/// column matrix twice per training step, which on those large planes is ~25 % of a conv's time.
///
///   forward   Y' = W · B(x̃),            y = crop(Y') + b
///   weight    dW += dỸ · B(x̃)ᵀ          (dỸ: dy padded the same way; its extra columns are the
///                                        zero borders, so garbage positions add nothing)
///   input     dX' = W̃ · B(dỹ),           dx = crop(dX')
/// where x̃, dỹ are the padded planes and W̃[ci, (co, u, v)] = W[co, ci, k−1−u, k−1−v]: for stride 1
/// and same padding, the input gradient is the convolution of the padded output gradient with
/// the rotated, transposed kernel (so no col2im either).
struct PaddedWidthConvolution {
    let inputChannels: Int
    let outputChannels: Int
    let height: Int
    let width: Int
    let kernelSize: Int

    var padding: Int { (kernelSize - 1) / 2 }
    var paddedWidth: Int { width + 2 * padding }
    var paddedPlane: Int { (height + 2 * padding) * paddedWidth }
    /// GEMM columns per image: H rows of Wp positions, without the last row's garbage tail.
    var columns: Int { (height - 1) * paddedWidth + width }
    var patchSize: Int { inputChannels * kernelSize * kernelSize }
    var transposedPatchSize: Int { outputChannels * kernelSize * kernelSize }

    /// Floats of a padded buffer of `images` × `channels` planes: the GEMM's garbage columns of
    /// the last row read up to k − 1 floats past the last plane.
    func paddedCount(channels: Int, images: Int) -> Int { images * channels * paddedPlane + kernelSize }

    /// Whether this path computes `conv`: stride 1, same padding, kernel > 1, the AVX-512
    /// or AVX2 kernels present (`VectorKernels.available`) and, unless forced (tests), output rows at least `minimumWidth` wide
    /// (below that the extra columns cost more than im2col).
    static func applies(to conv: Conv2D, forced: Bool?) -> Bool {
        guard conv.stride == 1, conv.kernelSize > 1, conv.kernelSize % 2 == 1,
              conv.padding == (conv.kernelSize - 1) / 2, VectorKernels.available else { return false }
        return forced ?? (conv.outputShape.width >= minimumWidth)
    }

    /// Narrowest output row this path takes by default (measured: bench/README.md).
    static let minimumWidth = 12

    /// Offsets of the B rows of taps (c, u, v), c < `channels`, in padded planes.
    func tapOffsets(channels: Int) -> [Int] {
        var offsets: [Int] = []
        offsets.reserveCapacity(channels * kernelSize * kernelSize)
        for c in 0..<channels {
            for u in 0..<kernelSize {
                for v in 0..<kernelSize { offsets.append(c * paddedPlane + u * paddedWidth + v) }
            }
        }
        return offsets
    }

    /// W̃[ci, (co, u, v)] = W[co, ci, k−1−u, k−1−v] into `rotated` [Cin, Cout·k·k].
    func rotate(_ w: UnsafePointer<Float>, into rotated: UnsafeMutablePointer<Float>) {
        let area = kernelSize * kernelSize
        for co in 0..<outputChannels {
            for ci in 0..<inputChannels {
                let source = w + (co * inputChannels + ci) * area
                let target = rotated + ci * transposedPatchSize + co * area
                for tap in 0..<area { target[area - 1 - tap] = source[tap] }
            }
        }
    }

    /// How `count` columns are cut for the engine's threads: one piece (on the calling thread),
    /// or `Parallel.reductionGroups` pieces of `block` columns (multiples of 32, the kernels'
    /// tile) when the product is worth a dispatch (≥ 2¹⁹ multiply-adds in all, as in
    /// `BLAS.gemm`; `workPerColumn` = multiply-adds per column). Results do not depend on the
    /// split: each output element is one kernel sum. Piece p is `columns(p, block, count)`.
    @inline(__always)
    static func columnPieces(_ count: Int, workPerColumn: Int, parallel: Bool) -> (pieces: Int, block: Int) {
        let pieces = parallel ? Parallel.reductionGroups : 1
        if pieces <= 1 || count &* workPerColumn < 1 << 19 { return (1, max(count, 1)) }
        let block = ((count + pieces - 1) / pieces + 31) / 32 * 32
        return ((count + block - 1) / block, block)
    }

    @inline(__always)
    static func columns(_ piece: Int, block: Int, count: Int) -> Range<Int> {
        (piece * block)..<min(count, (piece + 1) * block)
    }

    /// y (one image, [Cout, H, W]) = conv(x (one image)) + bias.
    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, weight w: UnsafePointer<Float>,
                 bias: UnsafePointer<Float>?, offsets: UnsafePointer<Int>?, padded: UnsafeMutablePointer<Float>,
                 staging: UnsafeMutablePointer<Float>, parallel: Bool) {
        pad_planes(x, inputChannels, height, width, padding, padded)
        let columns = self.columns, patchSize = self.patchSize
        let (pieces, block) = PaddedWidthConvolution.columnPieces(columns, workPerColumn: outputChannels * patchSize,
                                                                  parallel: parallel)
        Parallel.forEach(pieces, minimumWork: 1 << 16,
                         context: (outputChannels: outputChannels, patchSize: patchSize, w: w, padded: padded,
                                   offsets: offsets, staging: staging, columns: columns, block: block)) { c, piece in
            let range = PaddedWidthConvolution.columns(piece, block: c.block, count: c.columns)
            narrow_sgemm_gathered(c.outputChannels, range.count, c.patchSize, c.w, c.patchSize, c.padded + range.lowerBound,
                                  c.offsets, 0, c.staging + range.lowerBound, c.columns)
        }
        crop_planes(staging, outputChannels, height, width, paddedWidth, columns, bias, y)
    }

    /// Pads the output gradients of `images` consecutive images into `paddedGradient`
    /// ([images, Cout] planes, read by both backward products).
    func padGradient(_ dy: UnsafePointer<Float>, images: Int, into paddedGradient: UnsafeMutablePointer<Float>) {
        pad_planes(dy, images * outputChannels, height, width, padding, paddedGradient)
    }

    /// dW [Cout, Cin·k·k] += Σ over `images` consecutive images of dỹ · B(x̃)ᵀ: one kernel call
    /// whose sums run over every image before each dW element is reduced (per-image calls
    /// would reduce, and read and write dW, once per image). `padded` receives the x̃.
    func weightGradient(_ x: UnsafePointer<Float>, images: Int, paddedGradient: UnsafePointer<Float>,
                        into dW: UnsafeMutablePointer<Float>, offsets: UnsafePointer<Int>?,
                        padded: UnsafeMutablePointer<Float>, parallel: Bool) {
        pad_planes(x, images * inputChannels, height, width, padding, padded)
        // dỹ read from its first interior element; rows step by whole padded planes.
        let gradient = paddedGradient + padding * paddedWidth + padding
        let columns = self.columns, plane = paddedPlane
        let gradientImage = outputChannels * plane, inputImage = inputChannels * plane
        let (pieces, block) = PaddedWidthConvolution.columnPieces(patchSize, workPerColumn: outputChannels * images * columns,
                                                                  parallel: parallel)
        Parallel.forEach(pieces, minimumWork: 1 << 16,
                         context: (outputChannels: outputChannels, columns: columns, gradient: gradient,
                                   plane: plane, padded: padded, offsets: offsets, images: images,
                                   gradientImage: gradientImage, inputImage: inputImage, dW: dW,
                                   patchSize: patchSize, block: block)) { c, piece in
            let range = PaddedWidthConvolution.columns(piece, block: c.block, count: c.patchSize)
            narrow_sgemm_abt_gathered(c.outputChannels, range.count, c.columns, c.gradient, c.plane, c.padded,
                                      c.offsets.map { $0 + range.lowerBound }, c.images, c.gradientImage, c.inputImage, 1,
                                      c.dW + range.lowerBound, c.patchSize)
        }
    }

    /// dx (image `image` of the padded gradients, [Cin, H, W]) = conv(dỹ, W̃).
    func inputGradient(paddedGradient: UnsafePointer<Float>, image: Int, rotatedWeight: UnsafePointer<Float>,
                       into dx: UnsafeMutablePointer<Float>, offsets: UnsafePointer<Int>?,
                       staging: UnsafeMutablePointer<Float>, parallel: Bool) {
        let columns = self.columns, depth = transposedPatchSize
        let source = paddedGradient + image * outputChannels * paddedPlane
        let (pieces, block) = PaddedWidthConvolution.columnPieces(columns, workPerColumn: inputChannels * depth,
                                                                  parallel: parallel)
        Parallel.forEach(pieces, minimumWork: 1 << 16,
                         context: (inputChannels: inputChannels, depth: depth, rotatedWeight: rotatedWeight,
                                   source: source, offsets: offsets, staging: staging, columns: columns,
                                   block: block)) { c, piece in
            let range = PaddedWidthConvolution.columns(piece, block: c.block, count: c.columns)
            narrow_sgemm_gathered(c.inputChannels, range.count, c.depth, c.rotatedWeight, c.depth,
                                  c.source + range.lowerBound, c.offsets, 0, c.staging + range.lowerBound, c.columns)
        }
        crop_planes(staging, inputChannels, height, width, paddedWidth, columns, nil, dx)
    }
}
