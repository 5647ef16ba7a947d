import Foundation

/// Learning rate as a function of the step index (0-based).
public enum LearningRateSchedule: Equatable, Sendable {
    case constant
    /// Multiply by `gamma` every `every` steps.
    case step(every: Int, gamma: Double)
    /// Half-cosine from the base rate to 0 over `totalSteps` (Loshchilov & Hutter 2017).
    case cosine(totalSteps: Int)

    public func rate(base: Double, step: Int) -> Double {
        switch self {
        case .constant: return base
        case .step(let every, let gamma): return base * pow(gamma, Double(step / every))
        case .cosine(let total):
            let progress = Double(min(step, total)) / Double(total)
            return base * 0.5 * (1 + cos(Double.pi * progress))
        }
    }
}
