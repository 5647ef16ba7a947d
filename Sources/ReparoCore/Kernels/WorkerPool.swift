import CVectorKernels
import Foundation
import Synchronization

/// The engine's persistent compute threads: `Parallel.forEach` hands its index ranges to them.
///
/// Why not `DispatchQueue.concurrentPerform`: on this project's 2-core VM, waking an idle
/// libdispatch worker took ≈ 20–45 µs per call, measured (a 2 × 25 µs job took 71 µs instead
/// of 28), and an engine step makes hundreds of parallel calls, many of 10–100 µs (batch-1
/// inference, narrow layers). Here an idle helper polls for the next job for `spinSeconds`
/// (with the CPU's pause hint) before it sleeps on a condition variable, so back-to-back calls
/// start in well under a microsecond while an idle process still sleeps.
///
/// One job at a time: a call made while the pool runs another (a nested call from inside a
/// job, or a second thread's) is refused and the caller falls back to libdispatch, so the pool
/// never deadlocks and concurrent models stay correct. So is a call in a child process forked
/// after the pool started (its helpers were not copied), e.g. Python multiprocessing.
final class WorkerPool: @unchecked Sendable {
    /// Process-wide pool with one helper per core beyond the caller's (started on first use).
    static let shared = WorkerPool(helpers: min(ProcessInfo.processInfo.activeProcessorCount - 1, maximumHelpers))
    static let maximumHelpers = 255

    /// How long an idle helper polls before it sleeps: longer than the gaps between the
    /// parallel calls of one step or inference, short enough that an idle process stops
    /// spinning within a fraction of a millisecond.
    static let spinSeconds = 200e-6

    let helpers: Int
    /// The process whose threads the helpers are.
    private let owner = getpid()
    /// Job number × 256 + the job's worker count (caller included), published in one word so a
    /// helper reads both consistently. Only the thread that owns `busy` writes it.
    private let state = Atomic<Int>(0)
    /// Helpers that have not finished the current job.
    private let pending = Atomic<Int>(0)
    /// Helpers asleep (or about to be) on `condition`.
    private let sleepers = Atomic<Int>(0)
    /// Set while a caller owns the pool.
    private let busy = Atomic<Bool>(false)
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // The current job: written by the caller holding `busy` before it publishes `state`
    // (release), read by the job's helpers after they see it (acquire); not rewritten until
    // every helper is done.
    private var body: UnsafeRawPointer?
    private var count = 0

    /// A pool of its own (tests); the engine uses `shared`. Its threads live as long as the process.
    init(helpers: Int) {
        self.helpers = max(0, helpers)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
        for index in 0..<self.helpers {
            let thread = Thread { [unowned self] in self.helperLoop(worker: index + 1) }
            thread.name = "reparo-worker-\(index + 1)"
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// Helpers asleep at this moment (tests).
    var sleepingHelpers: Int { sleepers.load(ordering: .relaxed) }

    /// Calls `body(i)` for i in 0..<count, split into `workers` contiguous ranges (worker w
    /// takes count·w/workers ..< count·(w+1)/workers), range 0 on the calling thread; returns
    /// when all are done. Returns false without running anything when the pool is in use, has
    /// fewer than workers − 1 helpers, or was started by the parent of this process.
    func run(_ count: Int, workers: Int, _ body: (Int) -> Void) -> Bool {
        guard workers >= 2, workers - 1 <= helpers, workers <= WorkerPool.maximumHelpers, getpid() == owner,
              busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        withoutActuallyEscaping(body) { body in
            withUnsafePointer(to: body) { pointer in
                self.body = UnsafeRawPointer(pointer)
                self.count = count
                pending.store(workers - 1, ordering: .relaxed)
                let job = (state.load(ordering: .relaxed) / 256 + 1) * 256 + workers
                // Sequentially consistent with the sleepers count (see `helperLoop`): either a
                // helper sees this job before it sleeps, or this thread sees it asleep.
                state.store(job, ordering: .sequentiallyConsistent)
                if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                    pthread_mutex_lock(mutex)
                    pthread_cond_broadcast(condition)
                    pthread_mutex_unlock(mutex)
                }
                WorkerPool.runRange(UnsafeRawPointer(pointer), worker: 0, workers: workers, count: count)
                // Poll, then yield: on an oversubscribed machine a helper may be waiting for
                // this very core.
                var polls = 0
                while pending.load(ordering: .acquiring) > 0 {
                    polls += 1
                    if polls < 1024 { vector_kernels_cpu_relax() } else { sched_yield() }
                }
                self.body = nil
            }
        }
        busy.store(false, ordering: .releasing)
        return true
    }

    /// Worker `worker`'s range of the job whose body `(Int) -> Void` is at `pointer`. Not
    /// inlined: the copy of the closure (a retain) is released before the caller reports done.
    @inline(never)
    private static func runRange(_ pointer: UnsafeRawPointer, worker: Int, workers: Int, count: Int) {
        let body = pointer.assumingMemoryBound(to: ((Int) -> Void).self).pointee
        for i in (count * worker / workers)..<(count * (worker + 1) / workers) { body(i) }
    }

    private func helperLoop(worker: Int) {
        var seen = 0    // the initial state: every job differs, also one published before this thread started
        while true {
            var current = state.load(ordering: .acquiring)
            if current == seen {
                current = awaitJob(after: seen)
            }
            seen = current
            let workers = current % 256
            // A job this helper is part of cannot finish (and be replaced) without it, so the
            // body and count read here are that job's.
            guard worker < workers, let body else { continue }
            WorkerPool.runRange(body, worker: worker, workers: workers, count: count)
            pending.subtract(1, ordering: .releasing)
        }
    }

    /// Polls `state` for `spinSeconds`, then sleeps until it differs from `seen`.
    private func awaitJob(after seen: Int) -> Int {
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(WorkerPool.spinSeconds * 1e9)
        var polls = 0
        while true {
            let current = state.load(ordering: .acquiring)
            if current != seen { return current }
            vector_kernels_cpu_relax()
            polls += 1
            if polls % 256 == 0, DispatchTime.now().uptimeNanoseconds > deadline { break }
        }
        pthread_mutex_lock(mutex)
        sleepers.add(1, ordering: .sequentiallyConsistent)
        var current = state.load(ordering: .sequentiallyConsistent)
        while current == seen {
            pthread_cond_wait(condition, mutex)
            current = state.load(ordering: .sequentiallyConsistent)
        }
        sleepers.subtract(1, ordering: .sequentiallyConsistent)
        pthread_mutex_unlock(mutex)
        return current
    }
}
