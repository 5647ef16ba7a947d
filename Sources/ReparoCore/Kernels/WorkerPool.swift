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
    /// The pool every `ExecutionContext` uses unless given another: one helper per usable core
    /// beyond the caller's (started on first use).
    static let shared = WorkerPool(helpers: min(Parallel.cores - 1, maximumHelpers))
    static let maximumHelpers = 255

    /// How long an idle helper polls before it sleeps: longer than the gaps between the
    /// parallel calls of one step or inference, short enough that an idle process stops
    /// spinning within a fraction of a millisecond.
    static let spinSeconds = 200e-6

    let helpers: Int
    /// The process whose threads the helpers are.
    private let owner = getpid()
    /// The current job in one word: generation << 16 | ranges << 8 | next unclaimed range.
    /// Workers claim ranges by compare-and-swap, so a range runs exactly once, on whichever
    /// thread gets to it first: a caller whose helper is asleep or descheduled runs the
    /// helper's range itself instead of waiting for it. Only the thread owning `busy` starts a job.
    private let job = Atomic<Int>(0)
    /// Ranges of the current job that are done.
    private let finished = Atomic<Int>(0)
    /// Helpers asleep (or about to be) on `condition`.
    private let sleepers = Atomic<Int>(0)
    /// Set while a caller owns the pool.
    private let busy = Atomic<Bool>(false)
    /// The CPU the last caller started its job on, and the one a helper last ran a range on:
    /// when the scheduler puts both threads on one CPU (a cpuset of one core, a busy machine),
    /// polling would take the CPU from the thread being waited for, so each yields instead.
    private let callerCPU = Atomic<Int>(-1)
    private let helperCPU = Atomic<Int>(-2)
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // The current job (a `Job` on the caller's stack) and its size: written by the caller
    // holding `busy` before it publishes `job` (release), read by a worker after it claims one
    // of the job's ranges (acquire); the caller waits for every range, so they stay valid
    // while any runs.
    private var current: UnsafeRawPointer?
    private var count = 0

    /// One job: `invoke(context, start, end)` runs indices start..<end. Plain data, so that
    /// handing a job to the pool allocates nothing: `context` points into the caller's stack
    /// and `invoke` captures nothing (see `Parallel.run`). A struct field holds the function
    /// at its own type; stored bare through a generic pointer it would take a heap-allocated
    /// reabstraction thunk per job.
    struct Job {
        let context: UnsafeRawPointer
        let invoke: (UnsafeRawPointer, Int, Int) -> Void
    }

    /// A pool of its own (tests); the engine's contexts use `shared`. The pool and its threads live as
    /// long as the process. `startingThreads: false` (tests) makes a pool whose helpers never come.
    init(helpers: Int, startingThreads: Bool = true) {
        self.helpers = max(0, helpers)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
        for index in 0..<(startingThreads ? self.helpers : 0) {
            let thread = Thread { self.helperLoop() }    // the threads keep the pool alive: it is never freed
            thread.name = "reparo-worker-\(index + 1)"
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// Helpers asleep at this moment (tests).
    var sleepingHelpers: Int { sleepers.load(ordering: .relaxed) }

    /// Calls `body(i)` for i in 0..<count through `run(_:workers:work:)` (tests). A closure
    /// costs one heap allocation per call here (`withoutActuallyEscaping`'s wrapper); the
    /// engine passes non-capturing bodies instead (`Parallel.forEach`).
    func run(_ count: Int, workers: Int, _ body: (Int) -> Void) -> Bool {
        withoutActuallyEscaping(body) { body in
            Parallel.run(on: self, count, workers: workers, context: body) { body, i in body(i) }
        }
    }

    /// Runs `work` for indices 0..<count, split into `workers` contiguous ranges (range w is
    /// count·w/workers ..< count·(w+1)/workers), each run by the calling thread or a helper;
    /// returns when all are done. Returns false without running anything when the pool is in
    /// use, has fewer than workers − 1 helpers, or was started by the parent of this process.
    func run(_ count: Int, workers: Int, work: Job) -> Bool {
        guard workers >= 2, workers - 1 <= helpers, workers <= WorkerPool.maximumHelpers, getpid() == owner,
              busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        withUnsafePointer(to: work) { pointer in
            self.current = UnsafeRawPointer(pointer)
            self.count = count
            finished.store(0, ordering: .relaxed)
            let cpu = Int(vector_kernels_current_cpu())
            callerCPU.store(cpu, ordering: .relaxed)
            let generation = (job.load(ordering: .relaxed) >> 16) + 1
            // Sequentially consistent with the sleepers count (see `awaitJob`): either a
            // helper sees this job before it sleeps, or this thread sees it asleep.
            job.store(generation << 16 | workers << 8, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(mutex)
                pthread_cond_broadcast(condition)
                pthread_mutex_unlock(mutex)
            }
            claimAndRun(generation: generation)
            // Every range is claimed: wait for the helpers' to finish. Poll, then yield
            // (on an oversubscribed machine a helper may be waiting for this very core).
            var polls = 0
            while finished.load(ordering: .acquiring) < workers {
                polls += 1
                if polls < 1024 && (cpu < 0 || helperCPU.load(ordering: .relaxed) != cpu) {
                    vector_kernels_cpu_relax()
                } else {
                    sched_yield()
                }
            }
            self.current = nil
        }
        busy.store(false, ordering: .releasing)
        return true
    }

    /// Claims the unclaimed ranges of job `generation` one at a time and runs them; returns
    /// when none is left or the job is another.
    private func claimAndRun(generation: Int) {
        var word = job.load(ordering: .acquiring)
        while word >> 16 == generation {
            let ranges = (word >> 8) & 255, next = word & 255
            guard next < ranges else { return }
            let (exchanged, original) = job.compareExchange(expected: word, desired: word + 1, ordering: .acquiringAndReleasing)
            guard exchanged else {
                word = original
                continue
            }
            // The claimed range keeps the job's caller waiting, so `current` and `count` are this job's.
            if let current { WorkerPool.runRange(current, range: next, ranges: ranges, count: count) }
            finished.add(1, ordering: .releasing)
            word = job.load(ordering: .acquiring)
        }
    }

    /// Range `range` of the job whose `Job` is at `pointer`. Not inlined: the copy of the
    /// job's function (a retain) is released before the caller reports the range done.
    @inline(never)
    private static func runRange(_ pointer: UnsafeRawPointer, range: Int, ranges: Int, count: Int) {
        let job = pointer.assumingMemoryBound(to: Job.self).pointee
        job.invoke(job.context, count * range / ranges, count * (range + 1) / ranges)
    }

    private func helperLoop() {
        var seen = 0    // generation 0 = none: every job is new, also one published before this thread started
        while true {
            var word = job.load(ordering: .acquiring)
            if word >> 16 == seen { word = awaitJob(after: seen) }
            seen = word >> 16
            helperCPU.store(Int(vector_kernels_current_cpu()), ordering: .relaxed)
            claimAndRun(generation: seen)
        }
    }

    /// Polls `job` for `spinSeconds`, then sleeps until its generation differs from `seen`;
    /// returns the new job word.
    private func awaitJob(after seen: Int) -> Int {
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(WorkerPool.spinSeconds * 1e9)
        var polls = 0
        while true {
            let word = job.load(ordering: .acquiring)
            if word >> 16 != seen { return word }
            vector_kernels_cpu_relax()
            polls += 1
            if polls % 256 == 0 {
                if DispatchTime.now().uptimeNanoseconds > deadline { break }
                // On the caller's CPU: let it run rather than poll against it.
                let cpu = Int(vector_kernels_current_cpu())
                helperCPU.store(cpu, ordering: .relaxed)
                if cpu >= 0, cpu == callerCPU.load(ordering: .relaxed) { sched_yield() }
            }
        }
        pthread_mutex_lock(mutex)
        sleepers.add(1, ordering: .sequentiallyConsistent)
        var word = job.load(ordering: .sequentiallyConsistent)
        while word >> 16 == seen {
            pthread_cond_wait(condition, mutex)
            word = job.load(ordering: .sequentiallyConsistent)
        }
        sleepers.subtract(1, ordering: .sequentiallyConsistent)
        pthread_mutex_unlock(mutex)
        return word
    }
}
