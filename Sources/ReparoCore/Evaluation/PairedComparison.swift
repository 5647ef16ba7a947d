#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Two arms run on the same seeds (same pruned network, batches and expansion draws), compared
/// by the per-seed difference `treatment − control`: a paired Student-t 95 % confidence
/// interval on the mean difference, and a verdict that says only what the interval supports.
///
/// Pairing removes what the two arms share (the seed's batch order, the teacher, the test
/// set), so the interval is narrower than one built from the two arms' spreads.
public struct PairedComparison: Sendable, Equatable {
    /// What the interval says about `treatment − control`.
    public enum Verdict: String, Sendable {
        /// The whole interval is above zero.
        case ahead = "ahead"
        /// The whole interval is below zero.
        case behind = "behind"
        /// The interval contains zero (or there is a single pair: no interval).
        case notDistinguishable = "not distinguishable"
    }

    /// `treatment[i] − control[i]`, in the units of the inputs.
    public let differences: [Double]
    public let mean: Double
    /// Sample standard deviation of the differences (n − 1 in the denominator); 0 for n = 1.
    public let standardDeviation: Double
    /// Half-width of the two-sided interval at `confidence`: t(n−1) quantile × sd / √n;
    /// infinite for a single pair.
    public let halfWidth: Double
    public let confidence: Double

    public var count: Int { differences.count }
    public var lower: Double { mean - halfWidth }
    public var upper: Double { mean + halfWidth }
    public var verdict: Verdict {
        guard halfWidth.isFinite else { return .notDistinguishable }
        if lower > 0 { return .ahead }
        if upper < 0 { return .behind }
        return .notDistinguishable
    }

    /// - Parameters:
    ///   - treatment, control: one value per seed, in the same seed order (equal, non-zero
    ///     counts; finite values).
    ///   - confidence: two-sided level in (0, 1), 0.95 by default.
    public init(treatment: [Double], control: [Double], confidence: Double = 0.95) throws {
        guard !treatment.isEmpty, treatment.count == control.count else {
            throw ReparoError.invalidArgument(
                "paired comparison: \(treatment.count) treatment and \(control.count) control values (need the same non-zero count)")
        }
        guard confidence > 0, confidence < 1 else {
            throw ReparoError.invalidArgument("paired comparison: confidence must be in (0, 1), got \(confidence)")
        }
        guard treatment.allSatisfy(\.isFinite), control.allSatisfy(\.isFinite) else {
            throw ReparoError.invalidArgument("paired comparison: values must be finite")
        }
        let differences = zip(treatment, control).map { $0 - $1 }
        let n = Double(differences.count)
        let mean = differences.reduce(0, +) / n
        self.differences = differences
        self.mean = mean
        self.confidence = confidence
        if differences.count < 2 {
            standardDeviation = 0
            halfWidth = .infinity
        } else {
            let squares = differences.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
            standardDeviation = (squares / (n - 1)).squareRoot()
            let quantile = StudentT.quantile(0.5 + confidence / 2, degreesOfFreedom: Double(differences.count - 1))
            halfWidth = quantile * standardDeviation / n.squareRoot()
        }
    }
}

/// Student's t distribution: its CDF through the regularized incomplete beta function, and
/// its quantile by bisection on the CDF (exact to ~1e-12; speed does not matter here).
public enum StudentT {
    /// P(T ≤ t) for `degreesOfFreedom` ν > 0:
    /// 1 − ½·I_{ν/(ν+t²)}(ν/2, ½) for t ≥ 0, and symmetric.
    public static func cdf(_ t: Double, degreesOfFreedom nu: Double) -> Double {
        guard t.isFinite else { return t > 0 ? 1 : 0 }
        let tail = 0.5 * regularizedIncompleteBeta(nu / (nu + t * t), a: nu / 2, b: 0.5)
        return t >= 0 ? 1 - tail : tail
    }

    /// The t with P(T ≤ t) = p, for p in (0, 1) and ν > 0; NaN outside.
    public static func quantile(_ p: Double, degreesOfFreedom nu: Double) -> Double {
        guard p > 0, p < 1, nu > 0, nu.isFinite else { return .nan }
        if p == 0.5 { return 0 }
        var (low, high) = (-1.0, 1.0)
        while cdf(low, degreesOfFreedom: nu) > p { low *= 2 }
        while cdf(high, degreesOfFreedom: nu) < p { high *= 2 }
        for _ in 0..<200 {
            let middle = (low + high) / 2
            if cdf(middle, degreesOfFreedom: nu) < p { low = middle } else { high = middle }
            if high - low <= 1e-13 * max(1, abs(middle)) { break }
        }
        return (low + high) / 2
    }

    /// I_x(a, b) by the continued fraction of Numerical Recipes §6.4 (modified Lentz), using
    /// the symmetry I_x(a, b) = 1 − I_{1−x}(b, a) where the fraction converges slowly.
    static func regularizedIncompleteBeta(_ x: Double, a: Double, b: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let logFront = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log(1 - x)
        if x < (a + 1) / (a + b + 2) {
            return exp(logFront) * continuedFraction(x, a: a, b: b) / a
        }
        return 1 - exp(logFront) * continuedFraction(1 - x, a: b, b: a) / b
    }

    private static func continuedFraction(_ x: Double, a: Double, b: Double) -> Double {
        let tiny = 1e-300
        var c = 1.0
        var d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var result = d
        for m in 1...300 {
            let m = Double(m)
            let even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
            d = 1 + even * d
            if abs(d) < tiny { d = tiny }
            c = 1 + even / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            result *= d * c
            let odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
            d = 1 + odd * d
            if abs(d) < tiny { d = tiny }
            c = 1 + odd / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            result *= delta
            if abs(delta - 1) < 1e-15 { break }
        }
        return result
    }
}
