import Foundation
import Testing
@testable import ReparoCore

@Suite("Paired comparison and Student's t")
struct PairedComparisonTests {
    @Test("t quantiles: closed forms for ν = 1, 2 and scipy.stats.t.ppf values elsewhere")
    func quantiles() {
        for p in [0.6, 0.9, 0.975, 0.995] {
            // ν = 1 is the Cauchy distribution: tan(π(p − ½)).
            let cauchy = tan(Double.pi * (p - 0.5))
            #expect(abs(StudentT.quantile(p, degreesOfFreedom: 1) - cauchy) <= 1e-9 * max(1, cauchy))
            // ν = 2: (2p − 1) / √(2p(1 − p)).
            let two = (2 * p - 1) / (2 * p * (1 - p)).squareRoot()
            #expect(abs(StudentT.quantile(p, degreesOfFreedom: 2) - two) <= 1e-9 * max(1, two))
        }
        // scipy.stats.t.ppf(0.975, ν) (scipy 1.x), computed outside this code base.
        for (nu, expected) in [(4.0, 2.7764451051977934), (9.0, 2.262157162798205), (29.0, 2.045229642132703)] {
            #expect(abs(StudentT.quantile(0.975, degreesOfFreedom: nu) - expected) <= 1e-9)
        }
        #expect(StudentT.quantile(0.025, degreesOfFreedom: 4) == -StudentT.quantile(0.975, degreesOfFreedom: 4))
        #expect(StudentT.quantile(1, degreesOfFreedom: 4).isNaN && StudentT.quantile(0.5, degreesOfFreedom: 0).isNaN)
        // Far tail against the normal's 1.959963984540054 as ν grows.
        #expect(abs(StudentT.quantile(0.975, degreesOfFreedom: 1e7) - 1.959963984540054) <= 1e-5)
    }

    @Test("interval and verdict on hand-computed cases")
    func intervals() throws {
        // Differences 1, 2, 3: mean 2, sd 1, half-width t(0.975, 2)/√3 = 4.302652729911275/√3 = 2.484.
        let wide = try PairedComparison(treatment: [1, 2, 3], control: [0, 0, 0])
        #expect(wide.differences == [1, 2, 3] && wide.mean == 2 && abs(wide.standardDeviation - 1) < 1e-15)
        #expect(abs(wide.halfWidth - 4.302652729911275 / 3.0.squareRoot()) < 1e-9)
        #expect(wide.verdict == .notDistinguishable)
        // Differences 2.0, 2.1, 1.9, 2.0, 2.0 (sd 0.0707): clearly ahead; negated: behind.
        let treatment = [92.0, 92.1, 91.9, 92.0, 92.0], control = [90.0, 90.0, 90.0, 90.0, 90.0]
        let ahead = try PairedComparison(treatment: treatment, control: control)
        #expect(ahead.verdict == .ahead && ahead.lower > 1.9 && ahead.upper < 2.1)
        #expect(abs(ahead.halfWidth - 2.7764451051977934 * (0.02 / 4).squareRoot() / 5.0.squareRoot()) < 1e-9)
        #expect(try PairedComparison(treatment: control, control: treatment).verdict == .behind)
        // One pair: no interval.
        let single = try PairedComparison(treatment: [1], control: [0])
        #expect(single.halfWidth == .infinity && single.verdict == .notDistinguishable)
    }

    @Test("bad inputs are errors")
    func badInputs() {
        #expect(throws: ReparoError.self) { try PairedComparison(treatment: [], control: []) }
        #expect(throws: ReparoError.self) { try PairedComparison(treatment: [1, 2], control: [1]) }
        #expect(throws: ReparoError.self) { try PairedComparison(treatment: [1, .nan], control: [1, 2]) }
        #expect(throws: ReparoError.self) { try PairedComparison(treatment: [1, 2], control: [1, 2], confidence: 1) }
    }
}
