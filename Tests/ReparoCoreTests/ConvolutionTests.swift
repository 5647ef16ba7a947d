import Foundation
import Testing
@testable import ReparoCore

// Forward passes against naive loops written here in Double, straight from the definitions
// (PyTorch's Conv2d, Linear, MaxPool2d/AvgPool2d in floor mode, BatchNorm2d). The oracles
// share nothing with the engine: no im2col, no BLAS, no index arithmetic of its own.
//
// Tolerances. A Float32 dot product of length K carries a rounding error of about √K·u times
// the size of its terms (u = 2⁻²⁴ ≈ 6e-8), at worst K·u; K ≤ 7·5·5 = 175 here, so errors stay
// below ~1e-5 of the output scale (max |y|) whatever the summation order BLAS picks. 1e-4
// leaves that room, while a wrong index, a missing padding row or a dropped bias gives errors
// of the order of the scale itself.

// MARK: - Helpers

private func forward(_ layer: Layer, batch: Int, input: [Float], training: Bool = false) throws -> [Float] {
    let cache = try layer.makeCache(batch: batch, training: training)
    let x = try FloatBuffer(input)
    let y = try FloatBuffer(count: batch * layer.outputShape.count)
    y.buffer.update(repeating: .nan)   // every output must be written
    layer.forward(x.pointer, y.pointer, cache: cache, training: training)
    return y.array
}

private func fill(_ parameter: Parameter, _ values: [Float]) {
    precondition(values.count == parameter.count)
    for (i, v) in values.enumerated() { parameter.value.pointer[i] = v }
}

/// max |actual − expected| and max |expected|.
private func maximumError(_ actual: [Float], _ expected: [Double]) -> (error: Double, scale: Double) {
    precondition(actual.count == expected.count)
    var error = 0.0, scale = 0.0
    for (a, e) in zip(actual, expected) {
        error = a.isNaN ? .infinity : max(error, abs(Double(a) - e))
        scale = max(scale, abs(e))
    }
    return (error, scale)
}

/// PyTorch's Conv2d by definition: seven nested loops, zero padding, in Double.
private func referenceConvolution(_ x: [Float], batch: Int, channels: Int, height: Int, width: Int,
                                  weight: [Float], bias: [Float]?, outputChannels: Int,
                                  kernel: Int, stride: Int, padding: Int) -> [Double] {
    let outHeight = (height + 2 * padding - kernel) / stride + 1
    let outWidth = (width + 2 * padding - kernel) / stride + 1
    var y = [Double](repeating: 0, count: batch * outputChannels * outHeight * outWidth)
    for n in 0..<batch {
        for o in 0..<outputChannels {
            for oh in 0..<outHeight {
                for ow in 0..<outWidth {
                    var total = bias.map { Double($0[o]) } ?? 0
                    for c in 0..<channels {
                        for u in 0..<kernel {
                            for v in 0..<kernel {
                                let ih = oh * stride - padding + u, iw = ow * stride - padding + v
                                guard ih >= 0, ih < height, iw >= 0, iw < width else { continue }
                                total += Double(weight[((o * channels + c) * kernel + u) * kernel + v])
                                    * Double(x[((n * channels + c) * height + ih) * width + iw])
                            }
                        }
                    }
                    y[((n * outputChannels + o) * outHeight + oh) * outWidth + ow] = total
                }
            }
        }
    }
    return y
}

/// Pooling by definition (floor mode); `average` false means max. `padding` cells are −∞ for
/// the max (PyTorch's MaxPool2d): they are skipped (used with max only).
private func referencePool(_ x: [Float], planes: Int, height: Int, width: Int, kernelHeight: Int, kernelWidth: Int,
                           stride: Int, padding: Int = 0, average: Bool) -> [Double] {
    let outHeight = (height + 2 * padding - kernelHeight) / stride + 1
    let outWidth = (width + 2 * padding - kernelWidth) / stride + 1
    var y: [Double] = []
    for plane in 0..<planes {
        for oh in 0..<outHeight {
            for ow in 0..<outWidth {
                var total = 0.0, best = -Double.infinity
                for u in 0..<kernelHeight {
                    for v in 0..<kernelWidth {
                        let row = oh * stride - padding + u, column = ow * stride - padding + v
                        guard row >= 0, row < height, column >= 0, column < width else { continue }
                        let value = Double(x[(plane * height + row) * width + column])
                        total += value
                        best = max(best, value)
                    }
                }
                y.append(average ? total / Double(kernelHeight * kernelWidth) : best)
            }
        }
    }
    return y
}

// MARK: - Conv2D

@Suite("Forward passes against naive loops")
struct ConvolutionTests {
    @Test("Conv2D forward equals the 7-loop definition", arguments: [(1, 0), (3, 0), (3, 1), (3, 2), (5, 0), (5, 1), (5, 2)])
    func convolution(kernel: Int, padding: Int) throws {
        var generator = SeededGenerator(seed: UInt64(10 * kernel + padding))
        let oddChannels = [1, 3, 5, 7]
        for stride in [1, 2] {
            for batch in [1, 3, 5] {
                let channels = oddChannels[generator.nextInt(below: oddChannels.count)]
                let outputChannels = [3, 5, 19][generator.nextInt(below: 3)]
                // Non-square, at least the kernel once padded.
                let height = max(kernel - 2 * padding, 1) + generator.nextInt(below: 6)
                let width = max(kernel - 2 * padding, 1) + generator.nextInt(below: 6) + 1
                let bias = generator.nextInt(below: 2) == 1
                let layer = try Conv2D(name: "conv", input: FeatureShape(channels: channels, height: height, width: width),
                                       outputChannels: outputChannels, kernelSize: kernel, stride: stride,
                                       padding: padding, bias: bias)
                let weight = GradientCheck.normal(layer.weight.count, generator: &generator)
                fill(layer.weight, weight)
                var biasValues: [Float]? = nil
                if let parameter = layer.bias {
                    biasValues = GradientCheck.normal(parameter.count, generator: &generator)
                    fill(parameter, biasValues!)
                }
                let x = GradientCheck.normal(batch * layer.inputShape.count, generator: &generator)
                let expected = referenceConvolution(x, batch: batch, channels: channels, height: height, width: width,
                                                    weight: weight, bias: biasValues, outputChannels: outputChannels,
                                                    kernel: kernel, stride: stride, padding: padding)
                #expect(expected.count == batch * layer.outputShape.count, "output shape \(layer.outputShape)")
                // Whole batch in one tile, then one image per tile (several groups when the
                // machine has several cores), then tiles of two images (the staged layout); each
                // also on the padded-width path where it applies (same convs, AVX-512 present).
                for limit in [nil, 1, 2].map({ $0.map { $0 * layer.outputShape.spatial } }) {
                    for paddedWidth in [false, true] {
                        let forced = ForcedPathConvolution(layer, paddedWidth: paddedWidth, tileColumnLimit: limit)
                        for training in [false, true] {
                            let y = try forward(forced, batch: batch, input: x, training: training)
                            let (error, scale) = maximumError(y, expected)
                            #expect(error <= 1e-4 * scale,
                                    "\(channels)→\(outputChannels) \(height)×\(width) k\(kernel) s\(stride) p\(padding) n\(batch) bias \(bias) training \(training) tile limit \(String(describing: limit)) padded width \(paddedWidth): error \(error), scale \(scale)")
                        }
                    }
                }
            }
        }
    }

    @Test("ResNet-18's stem conv (7×7, stride 2, padding 3) equals the definition, at the size of an image")
    func stemConvolution() throws {
        // K = 3·49 = 147 products per output: √K·u ≈ 1e-6 of the scale, so 1e-4 as above.
        var generator = SeededGenerator(seed: 77)
        for (height, width, batch) in [(64, 64, 2), (37, 38, 1), (7, 9, 3)] {
            let layer = try Conv2D(name: "conv1", input: FeatureShape(channels: 3, height: height, width: width),
                                   outputChannels: 16, kernelSize: 7, stride: 2, padding: 3, bias: false)
            let weight = GradientCheck.normal(layer.weight.count, generator: &generator)
            fill(layer.weight, weight)
            let x = GradientCheck.normal(batch * layer.inputShape.count, generator: &generator)
            let expected = referenceConvolution(x, batch: batch, channels: 3, height: height, width: width, weight: weight,
                                                bias: nil, outputChannels: 16, kernel: 7, stride: 2, padding: 3)
            #expect(layer.outputShape == FeatureShape(channels: 16, height: (height - 1) / 2 + 1, width: (width - 1) / 2 + 1))
            // The engine's own choice, then one image per tile (several groups).
            for limit in [nil, layer.outputShape.spatial] {
                let forced = ForcedPathConvolution(layer, tileColumnLimit: limit)
                for training in [false, true] {
                    let (error, scale) = maximumError(try forward(forced, batch: batch, input: x, training: training), expected)
                    #expect(error <= 1e-4 * scale, "\(height)×\(width) n\(batch) training \(training) limit \(String(describing: limit)): error \(error), scale \(scale)")
                }
            }
        }
    }

    @Test("The padded-width path split over threads: forward equals the definition, backward equals the im2col path")
    func paddedWidthSplit() throws {
        // 32→33 channels on 32×32: every product ≥ 2²² multiply-adds, so the GEMMs are cut
        // into column pieces (batch 1: one tile) or run per group (batch 3: tiles of 1).
        guard VectorKernels.available else { return }   // the path needs the kernels
        var generator = SeededGenerator(seed: 99)
        for batch in [1, 3] {
            let layer = try Conv2D(name: "conv", input: FeatureShape(channels: 32, height: 32, width: 32),
                                   outputChannels: 33, kernelSize: 3, stride: 1, padding: 1, bias: true)
            let weight = GradientCheck.normal(layer.weight.count, generator: &generator)
            let biasValues = GradientCheck.normal(33, generator: &generator)
            fill(layer.weight, weight)
            if let bias = layer.bias { fill(bias, biasValues) }
            let x = GradientCheck.normal(batch * layer.inputShape.count, generator: &generator)
            let expected = referenceConvolution(x, batch: batch, channels: 32, height: 32, width: 32, weight: weight,
                                                bias: biasValues, outputChannels: 33, kernel: 3, stride: 1, padding: 1)
            #expect(layer.path(batch: batch) == .paddedWidth, "taken by default on a 32-wide plane")
            let y = try forward(layer, batch: batch, input: x)
            let (error, scale) = maximumError(y, expected)
            #expect(error <= 1e-4 * scale, "batch \(batch): forward error \(error), scale \(scale)")

            // Backward: every dx and dW entry against the im2col path (itself checked against
            // finite differences), for the same x and dy. 1e-5 of the scale: the two paths sum up
            // to 3·1024 unit-scale products in different orders (√n·u ≈ 3e-6).
            let dy = GradientCheck.normal(batch * layer.outputShape.count, generator: &generator)
            func gradients(padded: Bool) throws -> (dx: [Float], dW: [Float], db: [Float]) {
                let cache = try ForcedPathConvolution(layer, paddedWidth: padded).makeCache(batch: batch, training: true)
                let input = try FloatBuffer(x), output = try FloatBuffer(count: dy.count)
                let gradient = try FloatBuffer(dy), dx = try FloatBuffer(count: x.count)
                dx.buffer.update(repeating: .nan)
                layer.weight.gradient?.zero()
                layer.bias?.gradient?.zero()
                layer.forward(input.pointer, output.pointer, cache: cache, training: true)
                layer.backward(input.pointer, output.pointer, gradient.pointer, dx.pointer, cache: cache)
                return (dx.array, layer.weight.gradient?.array ?? [], layer.bias?.gradient?.array ?? [])
            }
            let padded = try gradients(padded: true), reference = try gradients(padded: false)
            for (label, a, b) in [("dx", padded.dx, reference.dx), ("dW", padded.dW, reference.dW),
                                  ("db", padded.db, reference.db)] {
                #expect(TestSupport.relativeError(a, b) <= 1e-5, "batch \(batch) \(label): \(TestSupport.relativeError(a, b))")
            }
        }
    }

    @Test("One-image forward as colsᵀ·Wᵀ (wide layer, plane of < 32 positions) equals the definition")
    func transposedForward() throws {
        var generator = SeededGenerator(seed: 41)
        for (height, width, batch) in [(4, 4, 1), (2, 2, 1), (3, 5, 3), (1, 1, 2)] {
            let layer = try Conv2D(name: "conv", input: FeatureShape(channels: 24, height: height, width: width),
                                   outputChannels: 200, kernelSize: 3, stride: 1, padding: 1, bias: true)
            let oneImagePerTile = ForcedPathConvolution(layer, tileColumnLimit: layer.outputShape.spatial)
            let weight = GradientCheck.normal(layer.weight.count, generator: &generator)
            let biasValues = GradientCheck.normal(200, generator: &generator)
            fill(layer.weight, weight)
            if let bias = layer.bias { fill(bias, biasValues) }
            let cache = try oneImagePerTile.makeCache(batch: batch, training: false) as? Conv2D.Cache
            guard case .columns(let workspace)? = cache?.workspace else {
                Issue.record("\(height)×\(width): the im2col path")
                continue
            }
            // Taken where the A·Bᵀ kernel is (scripts/test.sh makes sure it is on AVX-512 CPUs).
            #expect(workspace.forwardsTransposed == VectorKernels.available)
            let x = GradientCheck.normal(batch * layer.inputShape.count, generator: &generator)
            let expected = referenceConvolution(x, batch: batch, channels: 24, height: height, width: width,
                                                weight: weight, bias: biasValues, outputChannels: 200, kernel: 3,
                                                stride: 1, padding: 1)
            for training in [false, true] {
                let (error, scale) = maximumError(try forward(oneImagePerTile, batch: batch, input: x, training: training),
                                                  expected)
                #expect(error <= 1e-4 * scale, "\(height)×\(width) n\(batch) training \(training): error \(error)")
            }
        }
    }

    @Test("The small-plane path: forward equals the definition, backward equals the im2col path",
          arguments: [(2, 2, 3, 1, 1), (1, 3, 3, 1, 1), (2, 2, 3, 2, 1), (3, 3, 5, 2, 1), (1, 1, 3, 1, 1), (2, 2, 5, 1, 2)])
    func smallPlane(height: Int, width: Int, kernel: Int, stride: Int, padding: Int) throws {
        var generator = SeededGenerator(seed: UInt64(100 * height + 10 * kernel + stride))
        // 9 images of 5→7 channels, then 17 of 160→161 (products of ≥ 2²² multiply-adds on the
        // 2×2 planes: the GEMMs are split over threads).
        for (batch, channels, outputChannels) in [(9, 5, 7), (17, 160, 161)] {
            let layer = try Conv2D(name: "conv", input: FeatureShape(channels: channels, height: height, width: width),
                                   outputChannels: outputChannels, kernelSize: kernel, stride: stride, padding: padding,
                                   bias: true)
            let minimum = SmallPlaneConvolution.minimumBatch
            #expect(SmallPlaneConvolution.applies(to: layer, batch: minimum, forced: nil), "taken by default at batch \(minimum)")
            #expect(!SmallPlaneConvolution.applies(to: layer, batch: minimum - 1, forced: nil))
            let weight = GradientCheck.normal(layer.weight.count, generator: &generator)
            let biasValues = GradientCheck.normal(outputChannels, generator: &generator)
            fill(layer.weight, weight)
            if let bias = layer.bias { fill(bias, biasValues) }
            let x = GradientCheck.normal(batch * layer.inputShape.count, generator: &generator)
            let expected = referenceConvolution(x, batch: batch, channels: channels, height: height, width: width,
                                                weight: weight, bias: biasValues, outputChannels: outputChannels,
                                                kernel: kernel, stride: stride, padding: padding)
            let dy = GradientCheck.normal(batch * layer.outputShape.count, generator: &generator)
            func run(smallPlane: Bool) throws -> (y: [Float], dx: [Float], dW: [Float], db: [Float]) {
                let cache = try ForcedPathConvolution(layer, smallPlane: smallPlane).makeCache(batch: batch, training: true)
                #expect(((cache as? Conv2D.Cache)?.path == .smallPlane) == smallPlane)
                let input = try FloatBuffer(x), output = try FloatBuffer(count: dy.count)
                let gradient = try FloatBuffer(dy), dx = try FloatBuffer(count: x.count)
                output.buffer.update(repeating: .nan)
                dx.buffer.update(repeating: .nan)
                layer.weight.gradient?.zero()
                layer.bias?.gradient?.zero()
                // Twice, as a trainer does: the second forward must rebuild the map, not add to it.
                layer.forward(input.pointer, output.pointer, cache: cache, training: true)
                layer.forward(input.pointer, output.pointer, cache: cache, training: true)
                layer.backward(input.pointer, output.pointer, gradient.pointer, dx.pointer, cache: cache)
                return (output.array, dx.array, layer.weight.gradient?.array ?? [], layer.bias?.gradient?.array ?? [])
            }
            let small = try run(smallPlane: true), reference = try run(smallPlane: false)
            let label = "\(channels)→\(outputChannels) \(height)×\(width) k\(kernel) s\(stride) p\(padding) n\(batch)"
            let (error, scale) = maximumError(small.y, expected)
            #expect(error <= 1e-4 * scale, "\(label): forward error \(error), scale \(scale)")
            // Both paths sum up to 9·160 unit-scale products (dx, dW: over 17 images) in
            // different orders; 1e-5 relative is ≈ 10 × √n·u.
            for (name, a, b) in [("dx", small.dx, reference.dx), ("dW", small.dW, reference.dW),
                                 ("db", small.db, reference.db)] {
                #expect(TestSupport.relativeError(a, b) <= 1e-5, "\(label) \(name): \(TestSupport.relativeError(a, b))")
            }
        }
    }

    // MARK: Linear

    @Test("Linear forward equals the definition y = W·x + b",
          arguments: [(batch: 1, inputs: 7, outputs: 19, bias: true), (batch: 3, inputs: 13, outputs: 5, bias: false),
                      (batch: 3, inputs: 45, outputs: 1, bias: true)])
    func linear(batch: Int, inputs: Int, outputs: Int, bias: Bool) throws {
        var generator = SeededGenerator(seed: 21)
        let layer = try Linear(name: "fc", input: FeatureShape(channels: inputs, height: 1, width: 1),
                               outputFeatures: outputs, bias: bias)
        let weight = GradientCheck.normal(outputs * inputs, generator: &generator)
        fill(layer.weight, weight)
        let biasValues = GradientCheck.normal(outputs, generator: &generator)
        if let parameter = layer.bias { fill(parameter, biasValues) }
        let x = GradientCheck.normal(batch * inputs, generator: &generator)
        var expected: [Double] = []
        for n in 0..<batch {
            for o in 0..<outputs {
                var total = bias ? Double(biasValues[o]) : 0
                for i in 0..<inputs { total += Double(weight[o * inputs + i]) * Double(x[n * inputs + i]) }
                expected.append(total)
            }
        }
        let (error, scale) = maximumError(try forward(layer, batch: batch, input: x), expected)
        #expect(error <= 1e-4 * scale, "error \(error), scale \(scale)")
    }

    @Test("Linear on a [C, H, W] input reads it flattened in C, H, W order")
    func linearOnFeatureMaps() throws {
        let layer = try Linear(name: "fc", input: FeatureShape(channels: 2, height: 2, width: 3), outputFeatures: 1, bias: false)
        // Weight picks out exactly one entry: (c = 1, h = 0, w = 2), flat index 1·6 + 0·3 + 2 = 8.
        fill(layer.weight, (0..<12).map { $0 == 8 ? 1 : 0 })
        let x: [Float] = (0..<12).map { Float($0) * 10 }
        #expect(try forward(layer, batch: 1, input: x) == [80])
    }

    // MARK: Pooling

    @Test("MaxPool2D forward equals the definition (floor mode, −∞ padding, negative inputs)",
          arguments: [(kernel: 2, stride: 2, padding: 0, height: 6, width: 7), (kernel: 3, stride: 2, padding: 0, height: 7, width: 8),
                      (kernel: 3, stride: 1, padding: 0, height: 5, width: 4), (kernel: 2, stride: 1, padding: 0, height: 3, width: 3),
                      // Padded (ResNet-18's stem pool is 3/2/1): odd and even sides, a 1-wide
                      // plane, windows that cover the whole plane, padding half the window.
                      (kernel: 3, stride: 2, padding: 1, height: 9, width: 8), (kernel: 3, stride: 2, padding: 1, height: 16, width: 15),
                      (kernel: 2, stride: 2, padding: 1, height: 5, width: 6), (kernel: 3, stride: 1, padding: 1, height: 5, width: 1),
                      (kernel: 5, stride: 3, padding: 2, height: 7, width: 11), (kernel: 4, stride: 1, padding: 2, height: 2, width: 3)])
    func maxPool(kernel: Int, stride: Int, padding: Int, height: Int, width: Int) throws {
        var generator = SeededGenerator(seed: 22)
        let channels = 3, batch = 2
        let layer = MaxPool2D(name: "pool", input: FeatureShape(channels: channels, height: height, width: width),
                              kernelSize: kernel, stride: stride, padding: padding)
        // Shifted down so that whole windows are negative: a max that starts from 0 (or pads
        // with zeros) would fail.
        let x = GradientCheck.normal(batch * layer.inputShape.count, generator: &generator).map { $0 - 3 }
        let expected = referencePool(x, planes: batch * channels, height: height, width: width,
                                     kernelHeight: kernel, kernelWidth: kernel, stride: stride, padding: padding,
                                     average: false)
        #expect(expected.count == batch * layer.outputShape.count)
        for training in [false, true] {
            // A max selects an input: exact equality.
            #expect(try forward(layer, batch: batch, input: x, training: training).map(Double.init) == expected)
        }
    }

    @Test("MaxPool2D on ties routes each window's gradient to one input, the first in row-major order")
    func maxPoolTies() throws {
        let layer = MaxPool2D(name: "pool", input: FeatureShape(channels: 1, height: 4, width: 4), kernelSize: 2, stride: 2)
        let cache = try layer.makeCache(batch: 1, training: true)
        let x = try FloatBuffer([Float](repeating: 0.5, count: 16))
        let y = try FloatBuffer(count: 4)
        let dy = try FloatBuffer([1, 2, 3, 4])
        let dx = try FloatBuffer(count: 16)
        layer.forward(x.pointer, y.pointer, cache: cache, training: true)
        layer.backward(x.pointer, y.pointer, dy.pointer, dx.pointer, cache: cache)
        #expect(y.array == [0.5, 0.5, 0.5, 0.5])
        #expect(dx.array == [1, 0, 2, 0,
                             0, 0, 0, 0,
                             3, 0, 4, 0,
                             0, 0, 0, 0])
    }

    @Test("MaxPool2D with ties and NaNs: the first maximum (or first NaN) of each window wins, in value and gradient",
          arguments: [(kernel: 2, stride: 2, padding: 0, height: 6, width: 9), (kernel: 3, stride: 2, padding: 0, height: 7, width: 8),
                      (kernel: 2, stride: 1, padding: 0, height: 4, width: 5), (kernel: 3, stride: 2, padding: 1, height: 7, width: 8),
                      (kernel: 2, stride: 2, padding: 1, height: 6, width: 9), (kernel: 3, stride: 1, padding: 1, height: 4, width: 5)])
    func maxPoolTiesAndNaNs(kernel: Int, stride: Int, padding: Int, height: Int, width: Int) throws {
        var generator = SeededGenerator(seed: 24)
        let channels = 5, batch = 2, planes = batch * channels
        let layer = MaxPool2D(name: "pool", input: FeatureShape(channels: channels, height: height, width: width),
                              kernelSize: kernel, stride: stride, padding: padding)
        let x: [Float] = (0..<(batch * layer.inputShape.count)).map { _ in
            generator.nextInt(below: 11) == 0 ? .nan : -1 - Float(generator.nextInt(below: 3))
        }
        let (values, indices) = TestSupport.maxPool(x, planes: planes, height: height, width: width, kernel: kernel,
                                                    stride: stride, padding: padding)
        for training in [false, true] {
            let y = try forward(layer, batch: batch, input: x, training: training)
            #expect(y.map(\.bitPattern) == values.map(\.bitPattern), "training \(training)")
        }
        // Backward sends output o's gradient (here o + 1) to its winner only.
        let cache = try layer.makeCache(batch: batch, training: true)
        let input = try FloatBuffer(x), y = try FloatBuffer(count: values.count)
        let dy = try FloatBuffer((0..<values.count).map { Float($0 + 1) }), dx = try FloatBuffer(count: x.count)
        layer.forward(input.pointer, y.pointer, cache: cache, training: true)
        layer.backward(input.pointer, y.pointer, dy.pointer, dx.pointer, cache: cache)
        var expected = [Float](repeating: 0, count: x.count)
        let perPlane = values.count / planes
        for (o, index) in indices.enumerated() { expected[(o / perPlane) * height * width + index] += Float(o + 1) }
        #expect(dx.array == expected)
    }

    @Test("AvgPool2D forward equals the definition (windowed, floor mode, and global)",
          arguments: [(kernel: 2, stride: 2, height: 5, width: 7), (kernel: 3, stride: 2, height: 7, width: 6),
                      (kernel: 3, stride: 1, height: 4, width: 5), (kernel: nil, stride: nil, height: 5, width: 3)])
    func avgPool(kernel: Int?, stride: Int?, height: Int, width: Int) throws {
        var generator = SeededGenerator(seed: 23)
        let channels = 5, batch = 3
        let layer = AvgPool2D(name: "pool", input: FeatureShape(channels: channels, height: height, width: width),
                              kernelSize: kernel, stride: stride)
        let x = GradientCheck.normal(batch * layer.inputShape.count, generator: &generator).map { $0 + 1 }
        let expected = referencePool(x, planes: batch * channels, height: height, width: width,
                                     kernelHeight: kernel ?? height, kernelWidth: kernel ?? width,
                                     stride: stride ?? 1, average: true)
        #expect(expected.count == batch * layer.outputShape.count)
        if kernel == nil { #expect(layer.outputShape == FeatureShape(channels: channels, height: 1, width: 1)) }
        // A Float mean of ≤ 15 values: error ≤ 15·u·max|x| ≈ 1e-6 of the input scale.
        let inputScale = x.map { abs(Double($0)) }.max() ?? 1
        let (error, _) = maximumError(try forward(layer, batch: batch, input: x), expected)
        #expect(error <= 1e-5 * inputScale, "error \(error)")
    }

    // MARK: BatchNorm2D

    @Test("BatchNorm2D eval mode is γ·(x − running mean)/√(running var + ε) + β")
    func batchNormEval() throws {
        var generator = SeededGenerator(seed: 24)
        let channels = 3, height = 4, width = 5, batch = 2
        let layer = try BatchNorm2D(name: "bn", input: FeatureShape(channels: channels, height: height, width: width))
        let gamma: [Float] = [0.5, -1.25, 2]
        let beta: [Float] = [0.1, 0, -3]
        let mean: [Float] = [1.5, -0.25, 10]
        let variance: [Float] = [4, 0.01, 0]   // 0: ε alone keeps it finite
        fill(layer.scale, gamma); fill(layer.shift, beta)
        fill(layer.runningMean, mean); fill(layer.runningVariance, variance)
        let plane = height * width
        let x = GradientCheck.normal(batch * channels * plane, generator: &generator).map { $0 * 3 }
        var expected: [Double] = []
        var termScale = 0.0
        for (i, value) in x.enumerated() {
            let c = (i / plane) % channels
            let inverse = 1 / (Double(variance[c]) + 1e-5).squareRoot()
            expected.append(Double(gamma[c]) * (Double(value) - Double(mean[c])) * inverse + Double(beta[c]))
            termScale = max(termScale, abs(Double(gamma[c])) * (abs(Double(value)) + abs(Double(mean[c]))) * inverse + abs(Double(beta[c])))
        }
        // A few Float operations per element: error ≲ 4u ≈ 2.4e-7 of the terms' size.
        let (error, _) = maximumError(try forward(layer, batch: batch, input: x), expected)
        #expect(error <= 1e-6 * termScale, "error \(error), term scale \(termScale)")
        // Eval mode leaves the running statistics alone.
        #expect(layer.runningMean.value.array == mean)
        #expect(layer.runningVariance.value.array == variance)
    }

    /// Per channel: mean and biased variance of x [N, C, H, W], in Double.
    private func channelStatistics(_ x: [Float], batch: Int, channels: Int, plane: Int) -> [(mean: Double, variance: Double)] {
        (0..<channels).map { c in
            var values: [Double] = []
            for n in 0..<batch { for p in 0..<plane { values.append(Double(x[(n * channels + c) * plane + p])) } }
            let mean = values.reduce(0, +) / Double(values.count)
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
            return (mean, variance)
        }
    }

    @Test("BatchNorm2D training mode normalizes with batch statistics (mean 0, variance σ²/(σ²+ε) before γ, β)",
          arguments: [(batch: 3, channels: 3, height: 4, width: 5), (batch: 1, channels: 2, height: 2, width: 3)])
    func batchNormTrainingNormalizes(batch: Int, channels: Int, height: Int, width: Int) throws {
        var generator = SeededGenerator(seed: 25)
        let layer = try BatchNorm2D(name: "bn", input: FeatureShape(channels: channels, height: height, width: width))
        let plane = height * width
        // Large offsets and spreads per channel: the mean must really be removed.
        let x = (0..<(batch * channels * plane)).map { i -> Float in
            let c = (i / plane) % channels
            return generator.nextNormal() * Float(c + 1) * 2 + 50 * Float(c) - 20
        }
        let statistics = channelStatistics(x, batch: batch, channels: channels, plane: plane)

        // γ = 1, β = 0 (the defaults): the output itself is x̂.
        let normalized = try forward(layer, batch: batch, input: x, training: true)
        let output = channelStatistics(normalized, batch: batch, channels: channels, plane: plane)
        for c in 0..<channels {
            let variance = statistics[c].variance
            #expect(abs(output[c].mean) <= 1e-5, "channel \(c): mean \(output[c].mean)")
            let expectedVariance = variance / (variance + 1e-5)
            #expect(abs(output[c].variance - expectedVariance) <= 1e-5, "channel \(c): variance \(output[c].variance)")
        }

        // With γ and β: y = γ·(x − μ_B)/√(σ²_B + ε) + β element by element.
        let gamma = (0..<channels).map { Float($0) * 0.75 - 0.6 }
        let beta = (0..<channels).map { Float($0) * 0.5 + 0.2 }
        fill(layer.scale, gamma); fill(layer.shift, beta)
        var expected: [Double] = []
        for (i, value) in x.enumerated() {
            let c = (i / plane) % channels
            let (mean, variance) = statistics[c]
            expected.append(Double(gamma[c]) * (Double(value) - mean) / (variance + 1e-5).squareRoot() + Double(beta[c]))
        }
        // x̂ is O(1); the subtraction of a Float mean of values up to ~100 costs ~u·100 ≈ 6e-6 of σ ≥ 2.
        let (error, scale) = maximumError(try forward(layer, batch: batch, input: x, training: true), expected)
        #expect(error <= 1e-5 * max(scale, 1), "error \(error), scale \(scale)")
    }

    @Test("BatchNorm2D training updates running stats as PyTorch: momentum 0.1, unbiased variance",
          arguments: [(batch: 3, channels: 3, height: 4, width: 5), (batch: 1, channels: 2, height: 2, width: 3),
                      (batch: 4, channels: 5, height: 1, width: 1)])
    func batchNormRunningStatistics(batch: Int, channels: Int, height: Int, width: Int) throws {
        var generator = SeededGenerator(seed: 26)
        let layer = try BatchNorm2D(name: "bn", input: FeatureShape(channels: channels, height: height, width: width))
        let plane = height * width, m = Double(batch * plane)
        var runningMean = (0..<channels).map { Double($0) - 0.5 }
        var runningVariance = (0..<channels).map { 0.5 + Double($0) }
        fill(layer.runningMean, runningMean.map { Float($0) })
        fill(layer.runningVariance, runningVariance.map { Float($0) })
        // Two steps on different batches: the update must compose, not restart.
        for step in 0..<2 {
            let x = (0..<(batch * channels * plane)).map { i -> Float in
                let c = (i / plane) % channels
                return generator.nextNormal() * Float(c + 1) + Float(3 * c + step)
            }
            _ = try forward(layer, batch: batch, input: x, training: true)
            for (c, (mean, variance)) in channelStatistics(x, batch: batch, channels: channels, plane: plane).enumerated() {
                runningMean[c] = 0.9 * runningMean[c] + 0.1 * mean
                runningVariance[c] = 0.9 * runningVariance[c] + 0.1 * variance * m / (m - 1)
            }
            let actualMean = layer.runningMean.value.array, actualVariance = layer.runningVariance.value.array
            for c in 0..<channels {
                // Float storage and a Float blend: ~1e-6 relative to the values (|x| ≲ 20 here).
                #expect(abs(Double(actualMean[c]) - runningMean[c]) <= 1e-5 * max(1, abs(runningMean[c])),
                        "step \(step) channel \(c): running mean \(actualMean[c]), expected \(runningMean[c])")
                #expect(abs(Double(actualVariance[c]) - runningVariance[c]) <= 1e-5 * max(1, runningVariance[c]),
                        "step \(step) channel \(c): running var \(actualVariance[c]), expected \(runningVariance[c])")
            }
        }
    }
}
