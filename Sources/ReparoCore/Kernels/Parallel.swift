import Foundation

/// Work splitting over the engine's compute threads for memory-bound loops (im2col, col2im,
/// BatchNorm). Each index is processed exactly once and the split never changes results, so
/// runs stay deterministic whatever the thread count.
public enum Parallel {
    /// Threads used by `forEach` (set by the trainer's `threads` option; default all cores).
    nonisolated(unsafe) public static var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    /// Calls `body(i)` for i in 0..<count, in parallel when count × minimumWork is large
    /// enough to pay for the dispatch (≈ 64k elements).
    @inline(__always)
    static func forEach(_ count: Int, minimumWork: Int, _ body: (Int) -> Void) {
        let workers = min(threads, count)
        if workers <= 1 || count &* minimumWork < 65_536 {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                let start = count * worker / workers
                let end = count * (worker + 1) / workers
                for i in start..<end { body(i) }
            }
        }
    }
}
