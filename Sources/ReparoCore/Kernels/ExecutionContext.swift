import Foundation

/// The compute threads one call of the engine may use, and the worker pool that runs them:
/// owned by whoever makes the call — a `Trainer` (its `threads` option) or a `Model`'s inference
/// settings (`Model.threads`) — never by the process (cf. llama.cpp's
/// `llama_context_params.n_threads` and `llama_attach_threadpool`).
///
/// The owner makes its context current on the calling thread for the duration of its call
/// (`run`); every parallel loop underneath (`Parallel.forEach`) reads the calling thread's
/// current context, so a kernel never reads a setting some other object wrote. A thread with
/// no current context (a test calling a layer directly, a method step) uses `standard`. Results
/// never depend on the thread count (see `Parallel.reductionGroups`).
public struct ExecutionContext: Sendable {
    /// Threads a parallel loop is split over, the caller's included (1 = no parallelism).
    public let threads: Int
    /// The persistent threads that take the loop's ranges (see `WorkerPool`).
    let pool: WorkerPool

    /// Most threads one context may use.
    public static let maximumThreads = 256

    /// `threads` compute threads (0 = every core the process may use, `Parallel.cores`;
    /// clamped to 1...`maximumThreads`) on the shared worker pool.
    public init(threads: Int) {
        self.init(threads: threads, pool: .shared)
    }

    init(threads: Int, pool: WorkerPool) {
        self.threads = threads <= 0 ? Parallel.cores : min(threads, ExecutionContext.maximumThreads)
        self.pool = pool
    }

    /// Every core the process may use, on the shared pool: the context of a thread that has none.
    public static let standard = ExecutionContext(threads: 0)

    /// Runs `body` with this context current on the calling thread, then restores the one that
    /// was (so calls nest: a trainer's step runs its teacher's forward under its own context).
    /// Allocates nothing: the context stays on this stack frame while `body` runs.
    @inline(__always)
    public func run<Result>(_ body: () throws -> Result) rethrows -> Result {
        try withUnsafePointer(to: self) { pointer in
            let key = ExecutionContext.key
            let previous = pthread_getspecific(key)
            pthread_setspecific(key, UnsafeRawPointer(pointer))
            defer { pthread_setspecific(key, previous) }
            return try body()
        }
    }

    /// The calling thread's current context (`standard` if none).
    @inline(__always)
    static var current: ExecutionContext {
        guard let raw = pthread_getspecific(key) else { return standard }
        return raw.assumingMemoryBound(to: ExecutionContext.self).pointee
    }

    /// The calling thread's current context, as the raw pointer `run` stored (nil: none).
    @inline(__always)
    static var currentPointer: UnsafeRawPointer? { UnsafeRawPointer(pthread_getspecific(key)) }

    /// Makes the context at `pointer` (from `currentPointer`, nil = none) current on this
    /// thread for `body`: a worker running one range of a caller's loop inherits its context,
    /// so a loop nested inside uses the caller's thread count, not `standard`.
    @inline(__always)
    static func inherit(_ pointer: UnsafeRawPointer?, _ body: () -> Void) {
        let previous = pthread_getspecific(key)
        pthread_setspecific(key, pointer)
        body()
        pthread_setspecific(key, previous)
    }

    /// The thread-local slot holding a pointer to the current context (made once per process).
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()
}
