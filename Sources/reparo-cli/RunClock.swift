import Foundation

/// Elapsed time and an estimate of the time left for a list of planned runs of different
/// cost. A run is estimated by the mean of the measured runs of its kind (same ratio and
/// variant); before its kind was measured, by its variant's measured seconds per unit of
/// `cost` (the pruned network's multiply-adds) times its own cost, else by the mean of all
/// runs. Runs go seed-major, so after the first seed every kind has a measurement.
struct RunClock {
    struct Kind: Hashable {
        var ratio: Double
        var variant: FineTuningVariant
    }

    private let start = Date()
    /// Relative cost of a run at each ratio (any unit; multiply-adds per image).
    private let cost: [Double: Double]
    private var measured: [Kind: [Double]] = [:]

    init(cost: [Double: Double] = [:]) { self.cost = cost }

    var elapsed: Double { Date().timeIntervalSince(start) }

    mutating func record(_ kind: Kind, seconds: Double) { measured[kind, default: []].append(seconds) }

    /// Seconds left for `remaining`, or nil before anything was measured.
    func remaining(_ remaining: [Kind]) -> Double? {
        let all = measured.values.flatMap { $0 }
        guard !all.isEmpty else { return nil }
        func mean(_ values: [Double]) -> Double { values.reduce(0, +) / Double(values.count) }
        return remaining.reduce(0) { total, kind in
            if let same = measured[kind] { return total + mean(same) }
            let variant = measured.filter { $0.key.variant == kind.variant }
            let seconds = variant.values.reduce(0) { $0 + $1.reduce(0, +) }
            let units = variant.reduce(0.0) { $0 + Double($1.value.count) * (cost[$1.key.ratio] ?? 0) }
            if let own = cost[kind.ratio], units > 0 { return total + seconds / units * own }
            return total + (variant.isEmpty ? mean(all) : seconds / Double(variant.values.reduce(0) { $0 + $1.count }))
        }
    }

    static func format(_ seconds: Double) -> String {
        let total = Int(seconds.rounded())
        return total >= 3600 ? String(format: "%dh%02dm", total / 3600, total % 3600 / 60)
            : total >= 60 ? String(format: "%dm%02ds", total / 60, total % 60) : "\(total)s"
    }
}
