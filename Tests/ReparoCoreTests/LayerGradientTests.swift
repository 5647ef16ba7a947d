import Testing
@testable import ReparoCore

// Every layer's backward against central finite differences of its forward (see
// GradientCheck.swift for the step, the tolerance and how kinks are kept away). Parameters
// are filled with random test values first: a fresh Conv2D has all-zero weights, which would
// hide any error in dx.

// MARK: - Helpers

/// 1 where the value is positive (a ReLU that passes its gradient), else 0.
private func positiveMask(_ values: UnsafePointer<Float>, count: Int) -> [Int] {
    (0..<count).map { values[$0] > 0 ? 1 : 0 }
}

/// The winning entry of every max-pool window (−1 when no entry is positive: behind a ReLU
/// such a window passes no gradient whichever entry wins), by a naive loop.
private func maxPoolWinners(_ x: UnsafePointer<Float>, planes: Int, height: Int, width: Int,
                            kernel: Int, stride: Int) -> [Int] {
    let outHeight = (height - kernel) / stride + 1, outWidth = (width - kernel) / stride + 1
    var winners: [Int] = []
    for plane in 0..<planes {
        for oh in 0..<outHeight {
            for ow in 0..<outWidth {
                var best: Float = 0, winner = -1
                for u in 0..<kernel {
                    for v in 0..<kernel {
                        let index = plane * height * width + (oh * stride + u) * width + ow * stride + v
                        if x[index] > best { best = x[index]; winner = index }
                    }
                }
                winners.append(winner)
            }
        }
    }
    return winners
}

private func checkLayer(_ layer: Layer, batch: Int, input: [Float], samples: Int = 16,
                        sourceLocation: SourceLocation = #_sourceLocation) throws {
    let subject = try GradientCheck.subject(layer, batch: batch)
    try GradientCheck.check(subject, input: input, samples: samples, sourceLocation: sourceLocation)
}

// MARK: - Conv2D

struct ConvolutionGradientCase: Sendable, CustomTestStringConvertible {
    var inputChannels: Int
    var outputChannels: Int
    var height: Int
    var width: Int
    var kernel: Int
    var stride: Int
    var padding: Int
    var batch: Int
    var bias: Bool
    /// Images per tile (nil: the engine's choice, one tile at these sizes); see ConvolutionTiling.
    var imagesPerTile: Int? = nil
    /// Forces the padded-width (implicit GEMM) path of a same conv; see PaddedWidthConvolution.
    var paddedWidth: Bool = false
    /// Forces the dense-map path of a conv on a tiny plane; see SmallPlaneConvolution.
    var smallPlane: Bool = false

    var testDescription: String {
        "\(inputChannels)→\(outputChannels) \(height)×\(width) k\(kernel) s\(stride) p\(padding) n\(batch)\(bias ? " bias" : "")"
            + (imagesPerTile.map { " tiles of \($0)" } ?? "") + (paddedWidth ? " padded width" : "")
            + (smallPlane ? " small plane" : "")
    }
}

private let convolutionCases: [ConvolutionGradientCase] = [
    .init(inputChannels: 3, outputChannels: 5, height: 6, width: 7, kernel: 3, stride: 1, padding: 1, batch: 2, bias: true),
    .init(inputChannels: 3, outputChannels: 5, height: 7, width: 6, kernel: 3, stride: 2, padding: 1, batch: 2, bias: false),
    .init(inputChannels: 4, outputChannels: 3, height: 7, width: 8, kernel: 3, stride: 2, padding: 0, batch: 2, bias: true),
    .init(inputChannels: 7, outputChannels: 19, height: 4, width: 5, kernel: 1, stride: 1, padding: 0, batch: 2, bias: true),
    .init(inputChannels: 5, outputChannels: 3, height: 5, width: 6, kernel: 1, stride: 2, padding: 0, batch: 1, bias: false),
    .init(inputChannels: 7, outputChannels: 19, height: 5, width: 4, kernel: 3, stride: 1, padding: 1, batch: 1, bias: true),
    .init(inputChannels: 1, outputChannels: 3, height: 3, width: 9, kernel: 3, stride: 1, padding: 0, batch: 3, bias: false),
    .init(inputChannels: 2, outputChannels: 3, height: 6, width: 5, kernel: 5, stride: 2, padding: 2, batch: 2, bias: true),
    // ResNet-18's stem: 7×7, stride 2, padding 3, on an odd plane.
    .init(inputChannels: 3, outputChannels: 4, height: 11, width: 10, kernel: 7, stride: 2, padding: 3, batch: 2, bias: false),
    // Multi-tile paths: per-group partial dW/db, staged [Cout, n, P] layouts, per-tile col2im.
    .init(inputChannels: 3, outputChannels: 5, height: 5, width: 6, kernel: 3, stride: 1, padding: 1, batch: 5, bias: true,
          imagesPerTile: 1),
    .init(inputChannels: 3, outputChannels: 5, height: 5, width: 6, kernel: 3, stride: 2, padding: 1, batch: 5, bias: true,
          imagesPerTile: 2),
    .init(inputChannels: 7, outputChannels: 19, height: 4, width: 5, kernel: 1, stride: 1, padding: 0, batch: 3, bias: true,
          imagesPerTile: 1),
    .init(inputChannels: 7, outputChannels: 19, height: 4, width: 5, kernel: 1, stride: 1, padding: 0, batch: 4, bias: false,
          imagesPerTile: 2),
    // The padded-width path (no im2col): one tile with the GEMMs split over threads, several
    // groups with partial dW, odd channel counts, a 5×5 kernel, no bias.
    .init(inputChannels: 3, outputChannels: 5, height: 6, width: 7, kernel: 3, stride: 1, padding: 1, batch: 2, bias: true,
          paddedWidth: true),
    .init(inputChannels: 7, outputChannels: 19, height: 5, width: 4, kernel: 3, stride: 1, padding: 1, batch: 1, bias: true,
          paddedWidth: true),
    .init(inputChannels: 3, outputChannels: 5, height: 5, width: 6, kernel: 3, stride: 1, padding: 1, batch: 5, bias: false,
          imagesPerTile: 1, paddedWidth: true),
    .init(inputChannels: 4, outputChannels: 6, height: 4, width: 7, kernel: 3, stride: 1, padding: 1, batch: 5, bias: true,
          imagesPerTile: 2, paddedWidth: true),
    // Large enough (≥ 2²² multiply-adds per product) for its GEMMs to be split over threads.
    .init(inputChannels: 32, outputChannels: 33, height: 32, width: 32, kernel: 3, stride: 1, padding: 1, batch: 1,
          bias: true, paddedWidth: true),
    .init(inputChannels: 2, outputChannels: 3, height: 6, width: 5, kernel: 5, stride: 1, padding: 2, batch: 2, bias: true,
          paddedWidth: true),
    // The small-plane path (one dense map per batch): 2×2 same conv, a 1×2 plane, stride 2
    // onto one output, a 5×5 kernel, a 1×1 plane; odd channel counts, with and without bias.
    .init(inputChannels: 5, outputChannels: 7, height: 2, width: 2, kernel: 3, stride: 1, padding: 1, batch: 3, bias: true,
          smallPlane: true),
    .init(inputChannels: 3, outputChannels: 4, height: 1, width: 2, kernel: 3, stride: 1, padding: 1, batch: 2, bias: false,
          smallPlane: true),
    .init(inputChannels: 4, outputChannels: 3, height: 2, width: 2, kernel: 3, stride: 2, padding: 1, batch: 2, bias: true,
          smallPlane: true),
    .init(inputChannels: 3, outputChannels: 5, height: 2, width: 2, kernel: 5, stride: 1, padding: 2, batch: 2, bias: true,
          smallPlane: true),
    .init(inputChannels: 6, outputChannels: 5, height: 1, width: 1, kernel: 3, stride: 1, padding: 1, batch: 4, bias: true,
          smallPlane: true),
]

@Suite("Layer gradients")
struct LayerGradientTests {
    @Test("Conv2D backward matches finite differences", arguments: convolutionCases)
    func convolution(_ c: ConvolutionGradientCase) throws {
        let layer = try Conv2D(name: "conv", input: FeatureShape(channels: c.inputChannels, height: c.height, width: c.width),
                               outputChannels: c.outputChannels, kernelSize: c.kernel, stride: c.stride,
                               padding: c.padding, bias: c.bias)
        let limit = c.imagesPerTile.map { $0 * layer.outputShape.spatial }
        let forced = ForcedPathConvolution(layer, smallPlane: c.smallPlane, paddedWidth: c.paddedWidth,
                                           tileColumnLimit: limit)
        if c.imagesPerTile != nil { #expect(layer.tiling(batch: c.batch, columnLimit: limit).tiles > 1) }
        let path = (try forced.makeCache(batch: c.batch, training: true) as? Conv2D.Cache)?.path
        if c.smallPlane {
            #expect(path == .smallPlane, "the small-plane path applies to this geometry")
        }
        if c.paddedWidth {
            // Taken wherever the kernels are (scripts/test.sh makes sure they are on AVX-512 CPUs).
            #expect((path == .paddedWidth) == VectorKernels.available)
        }
        #expect(layer.parameters.count == (c.bias ? 2 : 1))
        var generator = SeededGenerator(seed: 1)
        GradientCheck.randomize(layer.parameters, generator: &generator)
        let input = GradientCheck.normal(c.batch * layer.inputShape.count, generator: &generator)
        try checkLayer(forced, batch: c.batch, input: input, samples: 24)
    }

    // MARK: BatchNorm2D

    @Test("BatchNorm2D training backward (dx, γ, β) matches finite differences",
          arguments: [(batch: 3, channels: 3, height: 4, width: 5), (batch: 1, channels: 5, height: 3, width: 3),
                      (batch: 4, channels: 6, height: 1, width: 1)])
    func batchNorm(batch: Int, channels: Int, height: Int, width: Int) throws {
        let layer = try BatchNorm2D(name: "bn", input: FeatureShape(channels: channels, height: height, width: width))
        var generator = SeededGenerator(seed: 2)
        GradientCheck.randomize(layer.parameters, generator: &generator)
        // A per-channel offset and spread, so that the mean and the variance both matter.
        let plane = height * width
        let input = (0..<(batch * channels * plane)).map { i -> Float in
            let c = (i / plane) % channels
            return generator.nextNormal() * (0.8 + 0.2 * Float(c)) + 0.3 * Float(c) - 0.5
        }
        try checkLayer(layer, batch: batch, input: input)
    }

    // MARK: Parameter-free layers

    @Test("ReLU backward matches finite differences (inputs kept ≥ 0.1 from the kink)")
    func relu() throws {
        let layer = ReLU(name: "relu", input: FeatureShape(channels: 3, height: 4, width: 5))
        var generator = SeededGenerator(seed: 3)
        let input = GradientCheck.awayFromZero(2 * layer.inputShape.count, generator: &generator)
        try checkLayer(layer, batch: 2, input: input, samples: 40)
    }

    @Test("MaxPool2D backward matches finite differences (distinct inputs, no ties)",
          arguments: [(kernel: 2, stride: 2, padding: 0, height: 6, width: 7), (kernel: 3, stride: 2, padding: 0, height: 7, width: 7),
                      (kernel: 3, stride: 1, padding: 0, height: 5, width: 4), (kernel: 3, stride: 2, padding: 1, height: 7, width: 8),
                      (kernel: 2, stride: 2, padding: 1, height: 5, width: 6), (kernel: 3, stride: 1, padding: 1, height: 4, width: 5)])
    func maxPool(kernel: Int, stride: Int, padding: Int, height: Int, width: Int) throws {
        let layer = MaxPool2D(name: "pool", input: FeatureShape(channels: 3, height: height, width: width),
                              kernelSize: kernel, stride: stride, padding: padding)
        var generator = SeededGenerator(seed: 4)
        let input = GradientCheck.distinct(2 * layer.inputShape.count, generator: &generator)
        try checkLayer(layer, batch: 2, input: input, samples: 40)
    }

    @Test("AvgPool2D backward matches finite differences",
          arguments: [(kernel: Int?.none, stride: Int?.none, height: 5, width: 4), (kernel: 2, stride: 2, height: 5, width: 7),
                      (kernel: 3, stride: 2, height: 7, width: 6)])
    func avgPool(kernel: Int?, stride: Int?, height: Int, width: Int) throws {
        let layer = AvgPool2D(name: "pool", input: FeatureShape(channels: 3, height: height, width: width),
                              kernelSize: kernel, stride: stride)
        var generator = SeededGenerator(seed: 5)
        let input = GradientCheck.normal(2 * layer.inputShape.count, generator: &generator)
        try checkLayer(layer, batch: 2, input: input, samples: 40)
    }

    @Test("Flatten backward matches finite differences")
    func flatten() throws {
        let layer = Flatten(name: "flatten", input: FeatureShape(channels: 3, height: 2, width: 3))
        #expect(layer.outputShape == FeatureShape(channels: 18, height: 1, width: 1))
        var generator = SeededGenerator(seed: 6)
        let input = GradientCheck.normal(3 * layer.inputShape.count, generator: &generator)
        try checkLayer(layer, batch: 3, input: input)
    }

    // MARK: Linear

    @Test("Linear backward matches finite differences",
          arguments: [(batch: 3, input: FeatureShape(channels: 3, height: 2, width: 2), outputs: 5, bias: true),
                      (batch: 1, input: FeatureShape(channels: 7, height: 1, width: 1), outputs: 19, bias: false),
                      (batch: 4, input: FeatureShape(channels: 9, height: 1, width: 1), outputs: 1, bias: true)])
    func linear(batch: Int, input shape: FeatureShape, outputs: Int, bias: Bool) throws {
        let layer = try Linear(name: "fc", input: shape, outputFeatures: outputs, bias: bias)
        var generator = SeededGenerator(seed: 8)
        GradientCheck.randomize(layer.parameters, generator: &generator)
        let input = GradientCheck.normal(batch * shape.count, generator: &generator)
        try checkLayer(layer, batch: batch, input: input, samples: 24)
    }

    // MARK: Residual blocks

    /// conv3×3(stride)-BN-ReLU-conv3×3-BN, plus the given shortcut.
    private func block(input: FeatureShape, out: Int, stride: Int, projection: Bool) throws -> BasicBlock {
        let conv1 = try Conv2D(name: "b.conv1", input: input, outputChannels: out, kernelSize: 3, stride: stride,
                               padding: 1, bias: false)
        let bn1 = try BatchNorm2D(name: "b.bn1", input: conv1.outputShape)
        let relu = ReLU(name: "b.relu", input: bn1.outputShape)
        let conv2 = try Conv2D(name: "b.conv2", input: relu.outputShape, outputChannels: out, kernelSize: 3, stride: 1,
                               padding: 1, bias: false)
        let bn2 = try BatchNorm2D(name: "b.bn2", input: conv2.outputShape)
        let main = Sequential(name: "b", input: input, layers: [conv1, bn1, relu, conv2, bn2])
        var shortcutLayers: [Layer] = []
        if projection {
            let conv = try Conv2D(name: "b.shortcut.0", input: input, outputChannels: out, kernelSize: 1, stride: stride,
                                  padding: 0, bias: false)
            shortcutLayers = [conv, try BatchNorm2D(name: "b.shortcut.1", input: conv.outputShape)]
        }
        let shortcut = Sequential(name: "b.shortcut", input: input, layers: shortcutLayers)
        return try BasicBlock(name: "b", input: input, main: main, shortcut: shortcut)
    }

    /// The block's kinks: the inner ReLU (output of main's layer 2) and the final ReLU.
    private func blockPattern(_ block: BasicBlock, batch: Int) -> (LayerCache, UnsafePointer<Float>) -> [Int] {
        { cache, y in
            let blockCache = cache as! BasicBlock.Cache
            let inner = block.main.output(2, cache: blockCache.main)
            return positiveMask(inner, count: batch * block.main.layers[2].outputShape.count)
                + positiveMask(y, count: batch * block.outputShape.count)
        }
    }

    @Test("BasicBlock with identity shortcut: backward matches finite differences")
    func identityBlock() throws {
        let batch = 2
        let layer = try block(input: FeatureShape(channels: 4, height: 5, width: 5), out: 4, stride: 1, projection: false)
        #expect(layer.shortcut.layers.isEmpty)
        var generator = SeededGenerator(seed: 9)
        GradientCheck.randomize(layer.parameters, generator: &generator)
        let input = GradientCheck.normal(batch * layer.inputShape.count, generator: &generator)
        let subject = try GradientCheck.subject(layer, batch: batch, pattern: blockPattern(layer, batch: batch))
        try GradientCheck.check(subject, input: input, samples: 16, maximumSkipped: 0.25)
    }

    @Test("BasicBlock with a 1×1 stride-2 projection + BN: backward matches finite differences")
    func projectionBlock() throws {
        let batch = 2
        let layer = try block(input: FeatureShape(channels: 3, height: 6, width: 5), out: 5, stride: 2, projection: true)
        #expect(layer.outputShape == FeatureShape(channels: 5, height: 3, width: 3))
        var generator = SeededGenerator(seed: 10)
        GradientCheck.randomize(layer.parameters, generator: &generator)
        let input = GradientCheck.normal(batch * layer.inputShape.count, generator: &generator)
        let subject = try GradientCheck.subject(layer, batch: batch, pattern: blockPattern(layer, batch: batch))
        try GradientCheck.check(subject, input: input, samples: 16, maximumSkipped: 0.25)
    }

    // MARK: Expanded chains (through a Model spec)

    @Test("A model with expanded conv and linear chains: end-to-end backward matches finite differences")
    func expandedChainModel() throws {
        let spec = """
        {"input": [3, 6, 5], "classes": 3, "layers": [
          {"type": "conv", "out": 4, "kernel": 3, "padding": 1, "chain": [8, 16]},
          {"type": "batchnorm"},
          {"type": "relu"},
          {"type": "conv", "out": 5, "kernel": 3, "stride": 2, "padding": 1, "bias": true, "chain": [6, 10]},
          {"type": "flatten"},
          {"type": "linear", "out": 3, "chain": [6, 9]}
        ]}
        """
        let model = try Model(specJSON: spec, seed: 3)
        let network = model.network
        #expect(network.layers[0] is ExpandedChain && network.layers[3] is ExpandedChain && network.layers[5] is ExpandedChain)
        // Three factors per chain: 1×1, k×k, 1×1 (or three linears), each with its own weight.
        #expect(network.parameters.filter { $0.kind == .weight }.count == 9)
        var generator = SeededGenerator(seed: 12)
        GradientCheck.randomize(network.parameters.filter { $0.kind == .bias || $0.kind == .normShift }, generator: &generator)
        let batch = 2
        let input = GradientCheck.normal(batch * model.inputShape.count, generator: &generator)
        let reluCount = batch * network.layers[1].outputShape.count
        let subject = try GradientCheck.subject(network, batch: batch) { cache, _ in
            positiveMask(network.output(1, cache: cache), count: reluCount)
        }
        try GradientCheck.check(subject, input: input, samples: 16, maximumSkipped: 0.25)
    }

    // MARK: A whole network under cross-entropy

    @Test("conv-BN-ReLU-maxpool-flatten-linear under cross-entropy: backward matches finite differences")
    func networkWithCrossEntropy() throws {
        let batch = 4, classes = 4
        let input = FeatureShape(channels: 3, height: 6, width: 6)
        // No conv bias before BN (as in ResNet): BN cancels it, its gradient is exactly zero.
        let conv = try Conv2D(name: "conv", input: input, outputChannels: 5, kernelSize: 3, stride: 1, padding: 1, bias: false)
        let bn = try BatchNorm2D(name: "bn", input: conv.outputShape)
        let relu = ReLU(name: "relu", input: bn.outputShape)
        let pool = MaxPool2D(name: "pool", input: relu.outputShape, kernelSize: 2, stride: 2)
        let flatten = Flatten(name: "flatten", input: pool.outputShape)
        let fc = try Linear(name: "fc", input: flatten.outputShape, outputFeatures: classes, bias: true)
        let network = Sequential(name: "", input: input, layers: [conv, bn, relu, pool, flatten, fc])

        var generator = SeededGenerator(seed: 13)
        GradientCheck.randomize(network.parameters, generator: &generator)
        let images = GradientCheck.normal(batch * input.count, generator: &generator)
        let labels: [Int32] = (0..<batch).map { _ in Int32(generator.nextInt(below: classes)) }

        let cache = try network.makeCache(batch: batch, training: true)
        let logits = try FloatBuffer(count: batch * classes)
        let logitGradient = try FloatBuffer(count: batch * classes)
        let labelBuffer = labels
        let subject = GradientSubject(
            inputCount: batch * input.count,
            parameters: network.parameters,
            loss: { x in
                network.forward(x, logits.pointer, cache: cache, training: true)
                return labelBuffer.withUnsafeBufferPointer {
                    CrossEntropy.compute(logits.pointer, $0.baseAddress!, batch: batch, classes: classes, gradient: nil).loss
                }
            },
            gradient: { x, dx in
                network.forward(x, logits.pointer, cache: cache, training: true)
                _ = labelBuffer.withUnsafeBufferPointer {
                    CrossEntropy.compute(logits.pointer, $0.baseAddress!, batch: batch, classes: classes,
                                         gradient: logitGradient.pointer)
                }
                network.backward(x, UnsafePointer(logits.pointer), logitGradient.pointer, dx, cache: cache)
            },
            pattern: {
                let activations = network.output(2, cache: cache)   // ReLU output = max-pool input
                let shape = relu.outputShape
                return positiveMask(network.output(1, cache: cache), count: batch * shape.count)
                    + maxPoolWinners(activations, planes: batch * shape.channels, height: shape.height,
                                     width: shape.width, kernel: 2, stride: 2)
            })
        try GradientCheck.check(subject, input: images, samples: 16, maximumSkipped: 0.25)
    }

    // MARK: The checker itself

    /// L = Σ wᵢ·xᵢ² over 8 entries, with a hand-written gradient that `mistake` may spoil.
    private func quadratic(_ mistake: String?) throws -> GradientSubject {
        let w = try Parameter(name: "w", shape: [8], kind: .weight, value: FloatBuffer((0..<8).map { 0.5 + Float($0) / 8 }))
        return GradientSubject(
            inputCount: 8, parameters: [w],
            loss: { x in (0..<8).reduce(0.0) { $0 + Double(w.value.pointer[$1]) * Double(x[$1]) * Double(x[$1]) } },
            gradient: { x, dx in
                let g = w.gradient!.pointer
                for i in 0..<8 {
                    if !(mistake == "unwritten dx" && i == 5) { dx[i] = 2 * w.value.pointer[i] * x[i] }
                    if mistake == "5% off" && i == 3 { dx[i] *= 1.05 }
                    if mistake == "overwrites" { g[i] = x[i] * x[i] } else { g[i] += x[i] * x[i] }
                }
            })
    }

    @Test("The checker passes a right gradient and flags a 5 % slip, an unwritten dx and an overwritten dW",
          arguments: [String?.none, "5% off", "unwritten dx", "overwrites"])
    func checkerCatchesMistakes(_ mistake: String?) throws {
        let input: [Float] = [1, -2, 0.5, 3, -1.5, 2.5, -0.25, 1.75]
        let subject = try quadratic(mistake)
        if mistake == nil {
            try GradientCheck.check(subject, input: input)
        } else {
            withKnownIssue { try GradientCheck.check(subject, input: input) }
        }
    }
}
