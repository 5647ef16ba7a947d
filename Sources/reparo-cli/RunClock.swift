import Foundation

/// Elapsed time and an estimate of the time left for a list of planned runs of different
/// cost. A run is estimated by the mean of the measured runs of its kind (same ratio and
/// variant), else of its variant, else of all runs. Runs go seed-major, so after the first
/// seed every kind has a measurement and the estimate is close.
struct RunClock {
    struct Kind: Hashable {
        var ratio: Double
        var variant: FineTuningVariant
    }

    private let start = Date()
    private var measured: [Kind: [Double]] = [:]

    var elapsed: Double { Date().timeIntervalSince(start) }

    mutating func record(_ kind: Kind, seconds: Double) { measured[kind, default: []].append(seconds) }

    /// Seconds left for `remaining`, or nil before anything was measured.
    func remaining(_ remaining: [Kind]) -> Double? {
        let all = measured.values.flatMap { $0 }
        guard !all.isEmpty else { return nil }
        func mean(_ values: [Double]) -> Double { values.reduce(0, +) / Double(values.count) }
        return remaining.reduce(0) { total, kind in
            if let same = measured[kind] { return total + mean(same) }
            let variant = measured.filter { $0.key.variant == kind.variant }.values.flatMap { $0 }
            return total + (variant.isEmpty ? mean(all) : mean(variant))
        }
    }

    static func format(_ seconds: Double) -> String {
        let total = Int(seconds.rounded())
        return total >= 3600 ? String(format: "%dh%02dm", total / 3600, total % 3600 / 60)
            : total >= 60 ? String(format: "%dm%02ds", total / 60, total % 60) : "\(total)s"
    }
}
