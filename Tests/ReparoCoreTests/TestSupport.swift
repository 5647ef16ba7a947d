import Foundation
@testable import ReparoCore

/// Shared helpers for the model-level tests.
enum TestSupport {
    static func randomImages(_ count: Int, seed: UInt64) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { _ in generator.nextNormal() }
    }

    /// max |a − b| / max |b|: the error measure every equivalence test states its tolerance in.
    /// Max pooling by definition (floor mode, PyTorch's −∞ padding: cells outside the plane are
    /// skipped), per output: the winning value and its index in the input plane — the first
    /// maximum of the window's real cells in row-major order, or its first NaN.
    static func maxPool(_ x: [Float], planes: Int, height: Int, width: Int, kernel: Int,
                        stride: Int, padding: Int = 0) -> (values: [Float], indices: [Int]) {
        let outHeight = (height + 2 * padding - kernel) / stride + 1
        let outWidth = (width + 2 * padding - kernel) / stride + 1
        var values: [Float] = [], indices: [Int] = []
        for plane in 0..<planes {
            for oh in 0..<outHeight {
                for ow in 0..<outWidth {
                    var winner: Int? = nil
                    for u in 0..<kernel {
                        for v in 0..<kernel {
                            let row = oh * stride - padding + u, column = ow * stride - padding + v
                            guard row >= 0, row < height, column >= 0, column < width else { continue }
                            let index = row * width + column
                            let value = x[plane * height * width + index]
                            guard let current = winner else { winner = index; continue }
                            let best = x[plane * height * width + current]
                            if best.isNaN { continue }
                            if value.isNaN || value > best { winner = index }
                        }
                    }
                    indices.append(winner!)
                    values.append(x[plane * height * width + winner!])
                }
            }
        }
        return (values, indices)
    }

    static func relativeError(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count)
        var difference = 0.0, scale = 0.0
        for i in a.indices {
            difference = max(difference, Double(abs(a[i] - b[i])))
            scale = max(scale, Double(abs(b[i])))
        }
        return difference / max(scale, 1e-30)
    }

    /// Gives BatchNorm layers non-trivial running statistics and affine parameters so that
    /// eval-mode tests exercise them (fresh models have mean 0, var 1, γ 1, β 0).
    static func randomizeBatchNorm(_ model: Model, seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        for parameter in model.parameters {
            let values = parameter.value.buffer
            switch parameter.kind {
            case .normScale: for i in values.indices { values[i] = 0.5 + generator.nextUniform() }
            case .normShift, .runningMean: for i in values.indices { values[i] = 0.2 * generator.nextNormal() }
            case .runningVariance: for i in values.indices { values[i] = 0.5 + generator.nextUniform() }
            default: break
            }
        }
    }

    static func parameter(_ model: Model, _ name: String) -> Parameter? {
        model.parameters.first { $0.name == name }
    }

    /// Runs `steps` training steps on random data (to move weights away from their start).
    static func train(_ model: Model, teacher: Model? = nil, options: String = #"{"lr":0.01}"#, steps: Int,
                      batch: Int = 8, seed: UInt64 = 1) throws {
        let trainer = try Trainer(student: model, teacher: teacher, options: TrainerOptions(json: options))
        var generator = SeededGenerator(seed: seed)
        for _ in 0..<steps {
            let images = randomImages(batch * model.inputShape.count, seed: generator.next())
            let labels = (0..<batch).map { _ in Int32(generator.nextInt(below: model.classes)) }
            try images.withUnsafeBufferPointer { i in
                try labels.withUnsafeBufferPointer { l in
                    _ = try trainer.step(images: i.baseAddress!, labels: l.baseAddress!, batch: batch)
                }
            }
        }
    }

    static let smallVGGLike = """
    {"input":[3,12,12],"classes":7,"layers":[
     {"type":"conv","out":9,"kernel":3,"padding":1,"bias":true},{"type":"batchnorm"},{"type":"relu"},
     {"type":"conv","out":11,"kernel":3,"stride":2,"padding":1},{"type":"batchnorm"},{"type":"relu"},
     {"type":"maxpool","kernel":2},
     {"type":"conv","out":13,"kernel":1},{"type":"batchnorm"},{"type":"relu"},
     {"type":"flatten"},{"type":"linear","out":7}]}
    """

    static let smallResNet = """
    {"input":[3,8,8],"classes":5,"layers":[
     {"type":"conv","out":6,"kernel":3,"padding":1},{"type":"batchnorm"},{"type":"relu"},
     {"type":"basic_block","out":6},{"type":"basic_block","out":10,"stride":2},{"type":"basic_block","out":10},
     {"type":"avgpool"},{"type":"flatten"},{"type":"linear","out":5}]}
    """

    /// Specs every equivalence test runs on: the presets at reduced width and generic ones.
    static var equivalenceSpecs: [(String, String)] {
        [("vgg16", #"{"preset":"vgg16","width":0.125}"#),
         ("resnet20", #"{"preset":"resnet20","width":0.5}"#),
         ("resnet56", #"{"preset":"resnet56","width":0.25}"#),
         ("digits", digitsSpec),
         ("vgg-like", smallVGGLike),
         ("resnet-like", smallResNet)]
    }

    static let digitsSpec = """
    {"input":[1,8,8],"classes":10,"layers":[
     {"type":"conv","out":16,"kernel":3,"padding":1},{"type":"batchnorm"},{"type":"relu"},
     {"type":"maxpool","kernel":2},
     {"type":"conv","out":24,"kernel":3,"padding":1},{"type":"batchnorm"},{"type":"relu"},
     {"type":"flatten"},{"type":"linear","out":10}]}
    """

    static func bundledDigits(_ split: String) throws -> Dataset {
        try DatasetCatalog.load(kind: "digits", path: nil, split: split)
    }
}
