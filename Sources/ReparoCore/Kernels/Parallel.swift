import CVectorKernels
import Foundation

/// Work splitting over the compute threads of the calling thread's `ExecutionContext`. Every
/// parallel loop of the engine goes through here, GEMMs included (OpenBLAS itself runs
/// single-threaded, see `BLAS`), so one pool of workers (`WorkerPool`) does all the work and no
/// idle BLAS thread spins against it. Each index is processed exactly once and the split never
/// changes results.
public enum Parallel {
    /// CPUs this process may run on: its affinity mask (`taskset`, a container's cpuset) where
    /// known, at most the machine's active processors. The default thread count, and one more
    /// than the worker pool's helpers. (Foundation's `activeProcessorCount` ignores the mask.)
    public static let cores: Int = {
        let active = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let usable = Int(vector_kernels_usable_cpus())
        return usable > 0 ? min(usable, active) : active
    }()

    /// How many pieces work whose rounding depends on the split is cut into (conv weight-gradient
    /// partial sums, GEMM blocks): fixed per machine, NOT per `ExecutionContext.threads`, so
    /// results do not depend on the thread setting.
    public static let reductionGroups = max(1, min(8, ProcessInfo.processInfo.activeProcessorCount))

    /// `forEach` when `parallel`, else the plain loop on the calling thread (for work that may
    /// run inside one of several workers already).
    @inline(__always)
    static func forEach<Context>(_ count: Int, minimumWork: Int, parallel: Bool, context: Context,
                                 _ body: @escaping (Context, Int) -> Void) {
        if parallel {
            forEach(count, minimumWork: minimumWork, context: context, body)
        } else {
            for i in 0..<count { body(context, i) }
        }
    }

    /// Calls `body(context, i)` for i in 0..<count, in parallel when count × minimumWork is
    /// large enough to pay for the dispatch (≈ 64k elements), over the current context's
    /// threads and pool (`ExecutionContext.current`). Workers take contiguous index ranges and
    /// run them under the caller's context.
    ///
    /// `body` must capture nothing: what it needs comes in `context` (usually a tuple of
    /// pointers and sizes). A non-capturing closure has no context to allocate, and the pool
    /// gets the job as a pointer to the caller's stack, so a parallel loop allocates nothing
    /// (`reparo-bench` counts heap allocations per step and inference call). A capturing
    /// closure still works, for one heap allocation per call.
    @inline(__always)
    static func forEach<Context>(_ count: Int, minimumWork: Int, context: Context, _ body: @escaping (Context, Int) -> Void) {
        let execution = ExecutionContext.currentPointer
        let current = execution?.assumingMemoryBound(to: ExecutionContext.self).pointee ?? .standard
        let workers = min(current.threads, count)
        if workers <= 1 || count.multipliedReportingOverflow(by: minimumWork).partialValue < 65_536 {
            for i in 0..<count { body(context, i) }
            return
        }
        if run(on: current.pool, count, workers: workers, execution: execution, context: context, body) { return }
        // The pool is busy (a nested call, or another thread's job) or smaller than the context's `threads`.
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let start = count * worker / workers
            let end = count * (worker + 1) / workers
            ExecutionContext.inherit(execution) {
                for i in start..<end { body(context, i) }
            }
        }
    }

    /// `body(context, i)` for i in 0..<count on `pool` (see `WorkerPool.run(_:workers:work:)`);
    /// false if the pool refused the job. Each range runs under the execution context at
    /// `execution` (the caller's, see `ExecutionContext.inherit`). The job lives on this stack
    /// frame; its `invoke` captures nothing once specialized for `Context`.
    @inline(__always)
    static func run<Context>(on pool: WorkerPool, _ count: Int, workers: Int, execution: UnsafeRawPointer? = nil,
                             context: Context, _ body: @escaping (Context, Int) -> Void) -> Bool {
        withUnsafePointer(to: ContextJob(execution: execution, context: context, body: body)) { pointer in
            pool.run(count, workers: workers, work: WorkerPool.Job(context: UnsafeRawPointer(pointer)) { raw, start, end in
                let job = raw.assumingMemoryBound(to: ContextJob<Context>.self)
                let body = job.pointee.body, context = job.pointee.context
                ExecutionContext.inherit(job.pointee.execution) {
                    for i in start..<end { body(context, i) }
                }
            })
        }
    }

    /// A parallel loop's execution context, context and body, on the calling thread's stack
    /// while the loop runs.
    private struct ContextJob<Context> {
        let execution: UnsafeRawPointer?
        let context: Context
        let body: (Context, Int) -> Void
    }
}
