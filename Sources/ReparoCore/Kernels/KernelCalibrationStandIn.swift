import Foundation

// SCRATCH stand-in for h-isa's KernelCalibration (same signature); deleted at the merge of h-isa.
enum KernelCalibration {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var choices: [String: Int] = [:]

    static func choice(_ key: String, candidates: Int, defaultChoice: Int, measure: () -> Int) -> Int {
        lock.lock()
        if let known = choices[key] {
            lock.unlock()
            return known
        }
        lock.unlock()
        let measured = measure()
        let result = (0..<candidates).contains(measured) ? measured : defaultChoice
        lock.lock()
        choices[key] = result
        lock.unlock()
        return result
    }
}
