import Foundation

/// Geometry of a 2-D convolution on one batch; shared by the im2col/col2im kernels.
struct ConvolutionGeometry {
    var batch: Int
    var inputChannels: Int
    var inputHeight: Int
    var inputWidth: Int
    var kernelHeight: Int
    var kernelWidth: Int
    var stride: Int
    var padding: Int
    var outputHeight: Int
    var outputWidth: Int

    /// Rows of the column matrix: Cin·kH·kW.
    var patchSize: Int { inputChannels * kernelHeight * kernelWidth }
    /// Output positions of one image: Hout·Wout.
    var outputSpatial: Int { outputHeight * outputWidth }
    /// Columns of the column matrix: N·Hout·Wout.
    var columns: Int { batch * outputSpatial }

    /// For stride 1: the output columns [lower, upper) whose input column ow − p + v lies
    /// inside the image (clamped to 0...Wout).
    @inline(__always)
    func validColumns(_ v: Int) -> (Int, Int) {
        let lower = min(max(padding - v, 0), outputWidth)
        let upper = max(min(inputWidth + padding - v, outputWidth), lower)
        return (lower, upper)
    }
}

/// Unfolds `x` [N, Cin, H, W] into `columns` [Cin·kH·kW, N·Hout·Wout]: row (c, u, v), column
/// (n, oh, ow) holds x[n, c, oh·s − p + u, ow·s − p + v], zero outside the image. One GEMM over
/// the whole batch then computes the convolution (Chellapilla et al. 2006).
func im2col(_ x: UnsafePointer<Float>, _ g: ConvolutionGeometry, _ columns: UnsafeMutablePointer<Float>) {
    let rows = g.patchSize
    let kernelArea = g.kernelHeight * g.kernelWidth
    let inputPlane = g.inputHeight * g.inputWidth
    let inputImage = g.inputChannels * inputPlane
    let ncols = g.columns
    Parallel.forEach(rows, minimumWork: ncols) { row in
        let c = row / kernelArea
        let u = (row % kernelArea) / g.kernelWidth
        let v = row % g.kernelWidth
        var out = columns + row * ncols
        for n in 0..<g.batch {
            let plane = x + n * inputImage + c * inputPlane
            for oh in 0..<g.outputHeight {
                let ih = oh * g.stride - g.padding + u
                if ih < 0 || ih >= g.inputHeight {
                    out.update(repeating: 0, count: g.outputWidth)
                    out += g.outputWidth
                    continue
                }
                let line = plane + ih * g.inputWidth
                if g.stride == 1 {
                    // Contiguous run: zeros left, a copy, zeros right.
                    let (lower, upper) = g.validColumns(v)
                    if lower > 0 { out.update(repeating: 0, count: lower) }
                    if upper > lower { out.advanced(by: lower).update(from: line + (lower + v - g.padding), count: upper - lower) }
                    if upper < g.outputWidth { out.advanced(by: max(upper, 0)).update(repeating: 0, count: g.outputWidth - max(upper, 0)) }
                } else {
                    for ow in 0..<g.outputWidth {
                        let iw = ow * g.stride - g.padding + v
                        out[ow] = (iw >= 0 && iw < g.inputWidth) ? line[iw] : 0
                    }
                }
                out += g.outputWidth
            }
        }
    }
}

/// Folds `columns` [Cin·kH·kW, N·Hout·Wout] back into `dx` [N, Cin, H, W] by summation: the
/// adjoint of `im2col`. `dx` is overwritten.
func col2im(_ columns: UnsafePointer<Float>, _ g: ConvolutionGeometry, _ dx: UnsafeMutablePointer<Float>) {
    let kernelArea = g.kernelHeight * g.kernelWidth
    let inputPlane = g.inputHeight * g.inputWidth
    let inputImage = g.inputChannels * inputPlane
    let ncols = g.columns
    // Each channel's rows write only that channel's planes: channels run in parallel.
    Parallel.forEach(g.inputChannels, minimumWork: ncols * kernelArea) { c in
        for n in 0..<g.batch {
            (dx + n * inputImage + c * inputPlane).update(repeating: 0, count: inputPlane)
        }
        for k in 0..<kernelArea {
            let u = k / g.kernelWidth
            let v = k % g.kernelWidth
            var source = columns + (c * kernelArea + k) * ncols
            for n in 0..<g.batch {
                let plane = dx + n * inputImage + c * inputPlane
                for oh in 0..<g.outputHeight {
                    let ih = oh * g.stride - g.padding + u
                    if ih < 0 || ih >= g.inputHeight {
                        source += g.outputWidth
                        continue
                    }
                    let line = plane + ih * g.inputWidth
                    if g.stride == 1 {
                        let (lower, upper) = g.validColumns(v)
                        if upper > lower {
                            let target = line + (lower + v - g.padding), from = source + lower
                            for i in 0..<(upper - lower) { target[i] += from[i] }
                        }
                    } else {
                        for ow in 0..<g.outputWidth {
                            let iw = ow * g.stride - g.padding + v
                            if iw >= 0 && iw < g.inputWidth { line[iw] += source[ow] }
                        }
                    }
                    source += g.outputWidth
                }
            }
        }
    }
}
