import Foundation

/// Softmax cross-entropy with a stable log-sum-exp: loss = mean over n of
/// log Σₖ exp(zₙₖ − max) − (z_{n,y} − max); ∂loss/∂z = (softmax(z) − onehot(y)) / N.
enum CrossEntropy {
    /// Loss, count of correct arg-max predictions, and (if given) the gradient `[N, K]`.
    static func compute(_ logits: UnsafePointer<Float>, _ labels: UnsafePointer<Int32>, batch: Int, classes: Int,
                        gradient: UnsafeMutablePointer<Float>?) -> (loss: Double, correct: Int) {
        var total = 0.0
        var correct = 0
        let scale = 1 / Float(batch)
        for n in 0..<batch {
            let row = logits + n * classes
            let label = Int(labels[n])
            var maximum = row[0]
            var best = 0
            for k in 1..<max(classes, 1) where row[k] > maximum {
                maximum = row[k]
                best = k
            }
            if best == label { correct += 1 }
            var sum: Double = 0
            for k in 0..<classes { sum += Double(Foundation.exp(row[k] - maximum)) }
            total += Foundation.log(sum) - Double(row[label] - maximum)
            if let gradient {
                let g = gradient + n * classes
                let inverse = Float(1 / sum)
                for k in 0..<classes { g[k] = Foundation.exp(row[k] - maximum) * inverse * scale }
                g[label] -= scale
            }
        }
        return (total / Double(batch), correct)
    }

    static func evaluate(_ logits: UnsafePointer<Float>, _ labels: UnsafePointer<Int32>, batch: Int,
                         classes: Int) -> (loss: Double, correct: Int) {
        compute(logits, labels, batch: batch, classes: classes, gradient: nil)
    }
}
