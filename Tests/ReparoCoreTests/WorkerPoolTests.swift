import CVectorKernels
import Foundation
import Synchronization
import Testing
@testable import ReparoCore

/// The engine's polling worker pool (`WorkerPool`): every index runs exactly once, a helper
/// takes a range while the caller is busy (also after it went to sleep), and a nested or
/// concurrent call falls back instead of deadlocking. Tests that need the pool to themselves
/// make their own (other suites run in parallel and use the shared one).
@Suite("Worker pool")
struct WorkerPoolTests {
    /// How often each index ran through `pool.run` (nil if the pool refused the job).
    static func counts(_ pool: WorkerPool, _ count: Int, workers: Int) -> [Int]? {
        let slots = UnsafeMutablePointer<Int>.allocate(capacity: count)
        defer { slots.deallocate() }
        slots.initialize(repeating: 0, count: count)
        guard pool.run(count, workers: workers, { i in slots[i] += 1 }) else { return nil }
        return Array(UnsafeBufferPointer(start: slots, count: count))
    }

    /// A two-range job whose first range waits (up to 10 s) until the second has run: it
    /// finishes early only if two threads ran the ranges at the same time (either may take
    /// either range). Returns whether the pool ran it and whether two threads did.
    static func helperTakesSecondRange(_ pool: WorkerPool) -> (ran: Bool, helped: Bool) {
        let secondDone = Atomic<Bool>(false)
        let threads = UnsafeMutablePointer<pthread_t>.allocate(capacity: 2)
        defer { threads.deallocate() }
        let ran = pool.run(2, workers: 2) { i in
            threads[i] = pthread_self()
            if i == 1 {
                secondDone.store(true, ordering: .releasing)
                return
            }
            let deadline = Date().addingTimeInterval(10)
            while !secondDone.load(ordering: .acquiring), Date() < deadline { usleep(50) }
        }
        return (ran, ran && secondDone.load(ordering: .acquiring) && pthread_equal(threads[0], threads[1]) == 0)
    }

    @Test("each index runs exactly once, for any count and number of ranges")
    func exactlyOnce() throws {
        let helpers = 3
        let pool = WorkerPool(helpers: helpers)
        for workers in 2...(helpers + 1) {
            for count in [workers, workers + 1, 7, 64, 1001] where count >= workers {
                #expect(Self.counts(pool, count, workers: workers) == [Int](repeating: 1, count: count),
                        "count \(count), workers \(workers)")
            }
        }
        // More workers than the pool has: refused, nothing run.
        #expect(Self.counts(pool, helpers + 3, workers: helpers + 2) == nil)
    }

    @Test("a helper runs one range while the caller runs the other")
    func helperRuns() throws {
        let pool = WorkerPool(helpers: 1)
        for _ in 0..<20 {
            let result = Self.helperTakesSecondRange(pool)
            #expect(result.ran && result.helped)
        }
    }

    @Test("helpers that went to sleep wake for the next job")
    func wakesAfterSleeping() throws {
        let pool = WorkerPool(helpers: 1)
        for _ in 0..<10 {
            // Past the polling period the helper sleeps on the condition variable. How soon it
            // gets there depends on the scheduler (the other suites load both cores), so wait
            // for it, up to 10 s, rather than a fixed time.
            usleep(UInt32(WorkerPool.spinSeconds * 1e6) * 5)
            let deadline = Date().addingTimeInterval(10)
            while pool.sleepingHelpers == 0 && Date() < deadline { usleep(1000) }
            #expect(pool.sleepingHelpers == 1)
            let result = Self.helperTakesSecondRange(pool)
            #expect(result.ran && result.helped)
        }
    }

    @Test("a caller whose helper never comes runs every range itself")
    func callerRunsUnclaimedRanges() throws {
        // The extreme of an asleep or descheduled helper: one that never started.
        let pool = WorkerPool(helpers: 1, startingThreads: false)
        for count in [2, 3, 1001] {
            #expect(Self.counts(pool, count, workers: 2) == [Int](repeating: 1, count: count))
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
            Parallel.forEach(inner, minimumWork: 1 << 10, context: slots + o * inner) { row, i in row[i] += 1 }
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
                Parallel.forEach(count, minimumWork: 1 << 10, context: row) { row, i in row[i] += 1 }
            }
        }
        #expect(UnsafeBufferPointer(start: slots, count: callers * count).allSatisfy { $0 == rounds })
    }

    /// The usable-CPU count follows the affinity mask (Foundation's processor counts do not):
    /// confined to the CPU it runs on, a thread may use exactly one; given back its mask, as many
    /// as before. (The mask is per thread here, so other suites are not affected.)
    @Test("the usable-CPU count follows the affinity mask")
    func usableCPUsFollowAffinity() throws {
        var original = [UInt8](repeating: 0, count: 128)
        guard vector_kernels_thread_affinity(&original, 128, 0) == 0 else { return }  // not Linux
        let before = Int(vector_kernels_usable_cpus())
        #expect(before == original.reduce(0) { $0 + $1.nonzeroBitCount })
        #expect(Parallel.cores >= 1 && Parallel.cores <= ProcessInfo.processInfo.activeProcessorCount)
        let cpu = Int(vector_kernels_current_cpu())
        try #require(cpu >= 0 && cpu < 1024)
        var single = [UInt8](repeating: 0, count: 128)
        single[cpu / 8] = 1 << UInt8(cpu % 8)
        try #require(vector_kernels_thread_affinity(&single, 128, 1) == 0)
        let confined = Int(vector_kernels_usable_cpus())
        #expect(vector_kernels_thread_affinity(&original, 128, 1) == 0)
        #expect(confined == 1)
        #expect(Int(vector_kernels_usable_cpus()) == before)
    }
}
