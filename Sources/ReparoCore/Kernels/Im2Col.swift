import CVectorKernels
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
    /// The C kernels' description of a stride-1 conv.
    var unfoldGeometry: unfold_geometry {
        unfold_geometry(input_channels: inputChannels, input_height: inputHeight, input_width: inputWidth,
                        kernel_height: kernelHeight, kernel_width: kernelWidth, padding: padding,
                        output_height: outputHeight, output_width: outputWidth)
    }

    /// Whether the vector im2col/col2im rows apply (stride 1, AVX-512 or AVX2 kernels available).
    var usesVectorKernels: Bool { stride == 1 && VectorKernels.available }

    @inline(__always)
    func validColumns(_ v: Int) -> (Int, Int) {
        let lower = min(max(padding - v, 0), outputWidth)
        let upper = max(min(inputWidth + padding - v, outputWidth), lower)
        return (lower, upper)
    }
}

/// Unfolds images `images` of `x` [N, Cin, H, W] into `columns` [Cin·kH·kW, count·Hout·Wout]
/// (count = images.count): row (c, u, v), column (n, oh, ow) holds x[n, c, oh·s − p + u, ow·s − p + v],
/// zero outside the image. A GEMM then computes the convolution of those images (Chellapilla et
/// al. 2006). `parallel` splits the rows over the engine's threads (when the caller is not
/// already one of several workers).
func im2col(_ x: UnsafePointer<Float>, _ g: ConvolutionGeometry, images: Range<Int>,
            _ columns: UnsafeMutablePointer<Float>, parallel: Bool) {
    guard g.usesVectorKernels else {
        im2colScalar(x, g, images: images, columns, parallel: parallel)
        return
    }
    let ncols = images.count * g.outputSpatial
    var geometry = g.unfoldGeometry
    withUnsafePointer(to: &geometry) { geometry in
        Parallel.forEach(g.patchSize, minimumWork: ncols, parallel: parallel,
                         context: (x: x, geometry: geometry, first: images.lowerBound, count: images.count,
                                   columns: columns, ncols: ncols)) { c, row in
            unfold_row_stride1(c.x, c.geometry, row, c.first, c.count, c.columns + row * c.ncols)
        }
    }
}

/// `im2col` in Swift loops (any stride; the fallback at the portable kernel level, and the tests' oracle for
/// the vector rows).
func im2colScalar(_ x: UnsafePointer<Float>, _ g: ConvolutionGeometry, images: Range<Int>,
                  _ columns: UnsafeMutablePointer<Float>, parallel: Bool) {
    let ncols = images.count * g.outputSpatial
    Parallel.forEach(g.patchSize, minimumWork: ncols, parallel: parallel,
                     context: (x: x, g: g, images: images, columns: columns)) { c, row in
        unfoldRowScalar(c.x, c.g, images: c.images, c.columns, row: row)
    }
}

/// Row `row` (channel c, tap (u, v)) of `im2colScalar`.
private func unfoldRowScalar(_ x: UnsafePointer<Float>, _ g: ConvolutionGeometry, images: Range<Int>,
                             _ columns: UnsafeMutablePointer<Float>, row: Int) {
    let kernelArea = g.kernelHeight * g.kernelWidth
    let inputPlane = g.inputHeight * g.inputWidth
    let inputImage = g.inputChannels * inputPlane
    let ncols = images.count * g.outputSpatial
    let c = row / kernelArea
    let u = (row % kernelArea) / g.kernelWidth
    let v = row % g.kernelWidth
    var out = columns + row * ncols
    for n in images {
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
                if upper < g.outputWidth { out.advanced(by: upper).update(repeating: 0, count: g.outputWidth - upper) }
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

/// Folds `columns` [Cin·kH·kW, count·Hout·Wout] of images `images` back into those images of
/// `dx` [N, Cin, H, W] by summation: the adjoint of `im2col`. Those images of `dx` are
/// overwritten, the others untouched. `parallel` splits the channels over the engine's threads.
func col2im(_ columns: UnsafePointer<Float>, _ g: ConvolutionGeometry, images: Range<Int>,
            _ dx: UnsafeMutablePointer<Float>, parallel: Bool) {
    guard g.usesVectorKernels else {
        col2imScalar(columns, g, images: images, dx, parallel: parallel)
        return
    }
    let work = images.count * g.outputSpatial * g.kernelHeight * g.kernelWidth
    var geometry = g.unfoldGeometry
    withUnsafePointer(to: &geometry) { geometry in
        Parallel.forEach(g.inputChannels, minimumWork: work, parallel: parallel,
                         context: (columns: columns, geometry: geometry, first: images.lowerBound, count: images.count,
                                   dx: dx)) { c, channel in
            fold_channel_stride1(c.columns, c.geometry, channel, c.first, c.count, c.dx)
        }
    }
}

/// `col2im` in Swift loops (any stride; the fallback at the portable kernel level, and the tests' oracle).
func col2imScalar(_ columns: UnsafePointer<Float>, _ g: ConvolutionGeometry, images: Range<Int>,
                  _ dx: UnsafeMutablePointer<Float>, parallel: Bool) {
    let ncols = images.count * g.outputSpatial
    // Each channel's rows write only that channel's planes: channels can run in parallel.
    Parallel.forEach(g.inputChannels, minimumWork: ncols * g.kernelHeight * g.kernelWidth, parallel: parallel,
                     context: (columns: columns, g: g, images: images, dx: dx)) { c, channel in
        foldChannelScalar(c.columns, c.g, images: c.images, c.dx, channel: channel)
    }
}

/// Channel `c` of `col2imScalar`.
private func foldChannelScalar(_ columns: UnsafePointer<Float>, _ g: ConvolutionGeometry, images: Range<Int>,
                               _ dx: UnsafeMutablePointer<Float>, channel c: Int) {
    let kernelArea = g.kernelHeight * g.kernelWidth
    let inputPlane = g.inputHeight * g.inputWidth
    let inputImage = g.inputChannels * inputPlane
    let ncols = images.count * g.outputSpatial
    for n in images {
        (dx + n * inputImage + c * inputPlane).update(repeating: 0, count: inputPlane)
    }
    for k in 0..<kernelArea {
        let u = k / g.kernelWidth
        let v = k % g.kernelWidth
        var source = columns + (c * kernelArea + k) * ncols
        for n in images {
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
                        Vector.add(source + lower, into: line + (lower + v - g.padding), count: upper - lower)
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
