import Foundation
import Synchronization
import Testing
@testable import ReparoCore

/// The engine's polling worker pool (`WorkerPool`): every index runs exactly once, on the
/// helper for the helper's range, after the helpers went to sleep, and a nested or concurrent
/// call falls back instead of deadlocking. Tests that need the pool to themselves make their
/// own (other suites run in parallel and use the shared one).
@Suite("Worker pool")
struct WorkerPoolTests {
    /// Runs `Parallel`-style work through `run` and returns how often each index ran and
    /// whether any index ran on a thread other than the caller's.
    static func counts(_ pool: WorkerPool, _ count: Int, workers: Int) -> (ran: Bool, counts: [Int], helped: Bool) {
        let slots = UnsafeMutablePointer<Int>.allocate(capacity: count)
        let threads = UnsafeMutablePointer<pthread_t>.allocate(capacity: count)
        defer { slots.deallocate(); threads.deallocate() }
        slots.initialize(repeating: 0, count: count)
        let caller = pthread_self()
        let ran = pool.run(count, workers: workers) { i in
            slots[i] += 1
            threads[i] = pthread_self()
        }
        let helped = ran && (0..<count).contains { pthread_equal(threads[$0], caller) == 0 }
        return (ran, Array(UnsafeBufferPointer(start: slots, count: count)), helped)
    }

    @Test("each index runs exactly once, the helpers' ranges on helper threads")
    func exactlyOnce() throws {
        let helpers = 3
        let pool = WorkerPool(helpers: helpers)
        for workers in 2...(helpers + 1) {
            for count in [workers, workers + 1, 7, 64, 1001] where count >= workers {
                let result = Self.counts(pool, count, workers: workers)
                #expect(result.ran, "count \(count), workers \(workers)")
                #expect(result.counts == [Int](repeating: 1, count: count), "count \(count), workers \(workers)")
                #expect(result.helped, "count \(count), workers \(workers): every index ran on the caller")
            }
        }
        // More workers than the pool has: refused, nothing run.
        let refused = Self.counts(pool, helpers + 3, workers: helpers + 2)
        #expect(!refused.ran && refused.counts.allSatisfy { $0 == 0 })
    }

    @Test("helpers that went to sleep wake for the next job")
    func wakesAfterSleeping() throws {
        let pool = WorkerPool(helpers: 1)
        for _ in 0..<20 {
            // Well past the polling period: the helpers are asleep on the condition variable.
            usleep(UInt32(WorkerPool.spinSeconds * 1e6) * 5 + 1000)
            #expect(pool.sleepingHelpers == 1)
            let result = Self.counts(pool, 64, workers: 2)
            #expect(result.ran && result.helped && result.counts.allSatisfy { $0 == 1 })
        }
    }

    @Test("a nested call is refused and Parallel.forEach falls back to complete it")
    func nested() throws {
        let pool = WorkerPool(helpers: 1)
        let outer = 8, inner = 4096
        let slots = UnsafeMutablePointer<Int>.allocate(capacity: outer * inner)
        defer { slots.deallocate() }
        slots.initialize(repeating: 0, count: outer * inner)
        let refusals = Atomic<Int>(0)
        let ran = pool.run(outer, workers: 2) { o in
            if !pool.run(2, workers: 2, { _ in }) { refusals.add(1, ordering: .relaxed) }
            Parallel.forEach(inner, minimumWork: 1 << 10) { i in slots[o * inner + i] += 1 }
        }
        #expect(ran)
        #expect(refusals.load(ordering: .relaxed) == outer)
        #expect(UnsafeBufferPointer(start: slots, count: outer * inner).allSatisfy { $0 == 1 })
    }

    @Test("threads calling Parallel.forEach at once each get all their indices run once")
    func concurrentCallers() throws {
        let callers = 4, rounds = 300, count = 257
        let slots = UnsafeMutablePointer<Int>.allocate(capacity: callers * count)
        defer { slots.deallocate() }
        slots.initialize(repeating: 0, count: callers * count)
        let base = UnsafeMutableRawPointer(slots)
        DispatchQueue.concurrentPerform(iterations: callers) { caller in
            let row = base.assumingMemoryBound(to: Int.self) + caller * count
            for _ in 0..<rounds {
                Parallel.forEach(count, minimumWork: 1 << 10) { i in row[i] += 1 }
            }
        }
        #expect(UnsafeBufferPointer(start: slots, count: callers * count).allSatisfy { $0 == rounds })
    }
}
