import Foundation
import Testing
@testable import ReparoCore

// A gradcheck in the manner of PyTorch's torch.autograd.gradcheck: analytical gradients from
// `backward` against central finite differences of the forward pass.
//
// The scalar checked is L = Σ r ⊙ y for a fixed random r (so backward receives dy = r), or
// any scalar a closure computes (e.g. a cross-entropy on top of a network). L is accumulated
// in Double so that summing many outputs adds no rounding of its own.
//
// Step h = 1e-2 (the default). The forward runs in Float32, so L carries rounding noise of
// about u·Σ|rᵢyᵢ| over the outputs a perturbation touches (u = 2⁻²⁴ ≈ 6e-8); dividing by 2h
// turns that into ~1e-5 of the gradient scale at h = 1e-2, but into ~1e-3 at h = 1e-4, too
// close to any useful tolerance. The truncation error of a central difference is h²·f'''/6:
// exactly zero for everything linear in the perturbed entry (conv and linear in x and in W,
// pooling, flatten, ReLU away from 0) and ~1e-5 relative for BatchNorm, whose f''' scales as
// 1/σ³ with σ ≈ 1 in these tests. 1e-2 balances the two.
//
// Kinks (ReLU at 0, max-pool ties) are kept away by construction of the inputs of single
// layers (|x| ≥ 0.1 ≫ h, values spaced ≥ 0.1 apart). Inside a network they cannot all be
// placed by hand, so a subject may report its discrete state (which ReLUs are on, which
// max-pool entry wins): an entry whose ±h perturbation changes that state sits within h of
// a kink, where a finite difference means nothing, and is skipped and counted.
//
// Comparison: |analytic − numeric| ≤ tolerance · scale, scale = the largest |gradient| of the
// tensor (analytic over all entries, numeric over the sampled ones). A wrong index or a
// missing term makes errors of the order of the scale; a correct Float32 gradient stays
// within ~1e-4 of it, so the default 1e-2 catches bugs with ample room for rounding.
// GRADCHECK_VERBOSE=1 in the environment prints every tensor's report.

/// What a gradient check differentiates: a scalar function of an input vector and of the
/// trainable entries of `parameters`, and its analytical gradient.
struct GradientSubject {
    /// Entries of the input vector.
    var inputCount: Int
    /// Every parameter the subject reads; trainable ones are checked.
    var parameters: [Parameter]
    /// Forward pass from `x`, returning the scalar loss.
    var loss: (UnsafePointer<Float>) -> Double
    /// Forward and backward from `x`: writes ∂L/∂x into the second argument and ADDS ∂L/∂θ
    /// into each parameter's gradient.
    var gradient: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void
    /// Discrete state (ReLU masks, max-pool winners) of the last `loss` call, or nil when the
    /// subject has no kinks near its inputs by construction.
    var pattern: (() -> [Int])? = nil
}

/// Outcome for one tensor (the input or one parameter).
struct GradientTensorReport: CustomStringConvertible {
    var name: String
    var checked = 0
    var skipped = 0
    var maximumError = 0.0
    var scale = 0.0
    var worst = ""

    var relativeError: Double { scale > 0 ? maximumError / scale : .infinity }
    var description: String {
        "\(name): checked \(checked), skipped \(skipped), max |a−n| = \(maximumError) of scale \(scale)\(worst)"
    }
}

enum GradientCheck {
    static let defaultStep = 1e-2
    static let defaultTolerance = 1e-2

    /// Checks `subject` at `input`: the input's and every trainable parameter's gradient, on
    /// up to `samples` entries of each (always including the first and last), and also that a
    /// second backward adds to the parameter gradients rather than overwriting them.
    /// `maximumSkipped` is the fraction of sampled entries that may sit on a kink.
    @discardableResult
    static func check(_ subject: GradientSubject, input: [Float], step: Double = defaultStep,
                      tolerance: Double = defaultTolerance, samples: Int = 16, maximumSkipped: Double = 0,
                      seed: UInt64 = 7, sourceLocation: SourceLocation = #_sourceLocation) throws -> [GradientTensorReport] {
        precondition(input.count == subject.inputCount, "input has \(input.count) entries, expected \(subject.inputCount)")
        let trainable = subject.parameters.filter { $0.kind.isTrainable }
        let x = try FloatBuffer(input)
        let dx = try FloatBuffer(count: input.count)

        // Analytical gradients. dx starts as NaN: backward must write every entry.
        for parameter in trainable { parameter.gradient?.zero() }
        dx.buffer.update(repeating: .nan)
        subject.gradient(UnsafePointer(x.pointer), dx.pointer)
        let inputGradient = dx.array.map { Double($0) }
        let allWritten = inputGradient.allSatisfy { $0.isFinite }
        #expect(allWritten, "backward left some of dx unwritten or not finite",
                sourceLocation: sourceLocation)
        let parameterGradients: [[Double]] = trainable.map { parameter in
            (parameter.gradient?.array ?? []).map { Double($0) }
        }

        // Parameter gradients accumulate: a second backward without zeroing doubles them, up to
        // the rounding of a Float accumulation (BLAS β = 1 adds in blocks), far below 1e-5.
        subject.gradient(UnsafePointer(x.pointer), dx.pointer)
        for (parameter, first) in zip(trainable, parameterGradients) {
            let twice: [Double] = (parameter.gradient?.array ?? []).map { Double($0) }
            let scale = first.map(abs).max() ?? 0
            let error = zip(twice, first).map { abs($0 - 2 * $1) }.max() ?? 0
            #expect(error <= 1e-5 * scale + 1e-30, "\(parameter.name): a second backward does not add its gradient (error \(error), scale \(scale))",
                    sourceLocation: sourceLocation)
        }

        var generator = SeededGenerator(seed: seed)
        let base = subject.loss(UnsafePointer(x.pointer))
        #expect(base.isFinite, "loss is not finite", sourceLocation: sourceLocation)
        let basePattern = subject.pattern?()

        /// Central difference of L in entry i of `values` at step h, or nil when a kink lies
        /// within ±h.
        func numeric(_ values: UnsafeMutablePointer<Float>, _ i: Int, step h: Double) -> Double? {
            let original = values[i]
            let plus = Float(Double(original) + h), minus = Float(Double(original) - h)
            values[i] = plus
            let lossPlus = subject.loss(UnsafePointer(x.pointer))
            let patternPlus = subject.pattern?()
            values[i] = minus
            let lossMinus = subject.loss(UnsafePointer(x.pointer))
            let patternMinus = subject.pattern?()
            values[i] = original
            if let basePattern, patternPlus != basePattern || patternMinus != basePattern { return nil }
            // The actual Float step, not the nominal one.
            return (lossPlus - lossMinus) / (Double(plus) - Double(minus))
        }

        /// Near a kink, retries with h/10 and h/100 (more rounding noise, see above, but still
        /// ~1e-3 of the scale); an entry still within h/100 of a kink is skipped.
        func numeric(_ values: UnsafeMutablePointer<Float>, _ i: Int) -> Double? {
            for h in [step, step / 10, step / 100] {
                if let value = numeric(values, i, step: h) { return value }
            }
            return nil
        }

        func compare(_ name: String, count: Int, analytic: [Double],
                     values: UnsafeMutablePointer<Float>) -> GradientTensorReport {
            var report = GradientTensorReport(name: name)
            var results: [(index: Int, numeric: Double)] = []
            for i in sampleIndices(count: count, samples: samples, generator: &generator) {
                if let value = numeric(values, i) { results.append((i, value)) } else { report.skipped += 1 }
            }
            report.checked = results.count
            report.scale = max(analytic.map(abs).max() ?? 0, results.map { abs($0.numeric) }.max() ?? 0)
            for (i, value) in results {
                let error = abs(analytic[i] - value)
                if error >= report.maximumError {
                    report.maximumError = error
                    report.worst = " (worst at [\(i)]: analytic \(analytic[i]), numeric \(value))"
                }
            }
            #expect(report.scale > 0, "\(name): gradient is identically zero; the check proves nothing",
                    sourceLocation: sourceLocation)
            #expect(report.maximumError <= tolerance * report.scale, "\(report)", sourceLocation: sourceLocation)
            if ProcessInfo.processInfo.environment["GRADCHECK_VERBOSE"] != nil { print("gradcheck \(report)") }
            let sampled = report.checked + report.skipped
            #expect(Double(report.skipped) <= maximumSkipped * Double(sampled),
                    "\(name): \(report.skipped) of \(sampled) sampled entries sit on a kink", sourceLocation: sourceLocation)
            return report
        }

        var reports = [compare("input", count: input.count, analytic: inputGradient, values: x.pointer)]
        for (parameter, analytic) in zip(trainable, parameterGradients) {
            reports.append(compare(parameter.name, count: parameter.count, analytic: analytic,
                                   values: parameter.value.pointer))
        }
        return reports
    }

    /// Up to `samples` distinct indices in 0..<count, always with the first and the last.
    static func sampleIndices(count: Int, samples: Int, generator: inout SeededGenerator) -> [Int] {
        guard count > samples else { return Array(0..<count) }
        var chosen: Set<Int> = [0, count - 1]
        while chosen.count < samples { chosen.insert(generator.nextInt(below: count)) }
        return chosen.sorted()
    }

    /// L = Σ r ⊙ layer(x) for a fixed random r, on a training-mode cache of `batch` samples.
    /// `pattern` receives the cache and the output after each forward.
    static func subject(_ layer: Layer, batch: Int, seed: UInt64 = 11,
                        pattern: ((LayerCache, UnsafePointer<Float>) -> [Int])? = nil) throws -> GradientSubject {
        let cache = try layer.makeCache(batch: batch, training: true)
        let outputs = batch * layer.outputShape.count
        let y = try FloatBuffer(count: outputs)
        let dy = try FloatBuffer(count: outputs)
        var generator = SeededGenerator(seed: seed)
        let r = (0..<outputs).map { _ in Double(generator.nextNormal()) }
        let rFloat = r.map(Float.init)
        return GradientSubject(
            inputCount: batch * layer.inputShape.count,
            parameters: layer.parameters,
            loss: { x in
                layer.forward(x, y.pointer, cache: cache, training: true)
                var total = 0.0
                for i in 0..<outputs { total += r[i] * Double(y.pointer[i]) }
                return total
            },
            gradient: { x, dx in
                layer.forward(x, y.pointer, cache: cache, training: true)
                for i in 0..<outputs { dy.pointer[i] = rFloat[i] }   // backward may overwrite dy
                layer.backward(x, UnsafePointer(y.pointer), dy.pointer, dx, cache: cache)
            },
            pattern: pattern.map { pattern in { pattern(cache, UnsafePointer(y.pointer)) } })
    }

    /// Fills every trainable parameter with test values: weights and biases uniform in ±1,
    /// BatchNorm γ in [0.5, 1.5] and β in ±0.5 (so that neither sits at its identity default).
    static func randomize(_ parameters: [Parameter], generator: inout SeededGenerator) {
        for parameter in parameters {
            let values = parameter.value.buffer
            for i in values.indices {
                let u = generator.nextUniform()
                switch parameter.kind {
                case .weight, .bias: values[i] = 2 * u - 1
                case .normScale: values[i] = 0.5 + u
                case .normShift: values[i] = u - 0.5
                case .runningMean, .runningVariance: break
                }
            }
        }
    }

    /// Standard-normal values.
    static func normal(_ count: Int, generator: inout SeededGenerator) -> [Float] {
        (0..<count).map { _ in generator.nextNormal() }
    }

    /// Normal values pushed at least `margin` away from zero (inputs of a ReLU).
    static func awayFromZero(_ count: Int, margin: Float = 0.1, generator: inout SeededGenerator) -> [Float] {
        (0..<count).map { _ in
            let v = generator.nextNormal()
            return v < 0 ? v - margin : v + margin
        }
    }

    /// A random permutation of {0, 1, …, count−1}·spacing − offset: every value distinct and at
    /// least `spacing` from the others (inputs of a max-pool: no ties within ±h).
    static func distinct(_ count: Int, spacing: Float = 0.1, generator: inout SeededGenerator) -> [Float] {
        var values = (0..<count).map { Float($0) * spacing - Float(count) * spacing / 2 }
        for i in stride(from: count - 1, to: 0, by: -1) {
            values.swapAt(i, generator.nextInt(below: i + 1))
        }
        return values
    }
}
