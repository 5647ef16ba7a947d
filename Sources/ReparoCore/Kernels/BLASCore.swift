import COpenBLAS
import Foundation

/// Applies `BLASCoreChoice` once per process, before Reparo's first BLAS call (`singleThreadedBLAS`
/// evaluates `prepared` first), through OpenBLAS's own mechanism: with `OPENBLAS_CORETYPE` set
/// to the core, `gotoblas_dynamic_quit()` forgets the core and `gotoblas_dynamic_init()` chooses
/// again and calls the core's `init()` (its GEMM blocking), as at load time; then the variable
/// gets back its previous state, so the host and child processes see what they had. Both
/// functions are looked up with dlsym: an OpenBLAS built without DYNAMIC_ARCH lacks them and is
/// left alone. Afterwards the core's name and a small sgemm (against a Double loop) are
/// checked; if the sgemm is wrong the previous core is restored.
///
/// Limit: switching is safe only while no other thread calls OpenBLAS or reads the environment
/// (setenv is not thread-safe). It runs at Reparo's first BLAS use; a host that calls OpenBLAS
/// from another thread at that very moment should set `REPARO_BLAS_CORE=keep` (or choose the
/// core itself with `OPENBLAS_CORETYPE`). OpenBLAS prints "Core: …" only when
/// `OPENBLAS_VERBOSE` ≥ 2; Reparo prints nothing.
public enum BLASCore {
    /// What happened, for `ComputeEnvironment`.
    public struct State: Sendable {
        /// The core OpenBLAS ran when Reparo first looked.
        public let detected: String
        /// The core running after the choice was applied.
        public let running: String
        public let chooser: BLASCoreChoice.Chooser
        /// The decision's reason, plus what went wrong applying it, if anything.
        public let reason: String
    }

    /// Decided and applied at first use (a Swift lazy global: thread-safe, once).
    public static let prepared: State = prepare()

    /// The core OpenBLAS runs now.
    public static var runningCore: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    private typealias Hook = @convention(c) () -> Void

    /// dlsym's handle for "every loaded object" (RTLD_DEFAULT, not imported into Swift).
    private static var everyObject: UnsafeMutableRawPointer? {
        #if os(Linux)
        return nil
        #else
        return UnsafeMutableRawPointer(bitPattern: -2)
        #endif
    }

    private static func hook(_ name: String) -> Hook? {
        guard let symbol = dlsym(everyObject, name) else { return nil }
        return unsafeBitCast(symbol, to: Hook.self)
    }

    /// Whether the loaded OpenBLAS holds the core: a DYNAMIC_ARCH build exports each core's
    /// table as `gotoblas_<NAME>`; one built without that core aliases it to an older one.
    static func libraryHas(core name: String) -> Bool {
        dlsym(everyObject, "gotoblas_" + name.uppercased()) != nil
    }

    private static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    static func prepare() -> State {
        let detected = runningCore
        let choice = BLASCoreChoice.decide(running: detected, cpu: CPUFeatures.current,
                                           coreTypeVariable: environment(BLASCoreChoice.openBLASVariable),
                                           reparoVariable: environment(BLASCoreChoice.variable), hasCore: libraryHas)
        guard let target = choice.target else {
            return State(detected: detected, running: detected, chooser: choice.chooser, reason: choice.reason)
        }
        guard let quit = hook("gotoblas_dynamic_quit"), let initialize = hook("gotoblas_dynamic_init") else {
            return State(detected: detected, running: detected, chooser: .openBLAS,
                         reason: choice.reason + "; not switched: OpenBLAS lacks gotoblas_dynamic_init (no DYNAMIC_ARCH)")
        }
        let running = select(target, quit: quit, initialize: initialize)
        if !sgemmIsCorrect() {
            let restored = select(detected, quit: quit, initialize: initialize)
            return State(detected: detected, running: restored, chooser: .openBLAS,
                         reason: choice.reason + "; \(running) failed the sgemm check, back to \(restored)")
        }
        if running.lowercased() != target.lowercased() {
            let chooser: BLASCoreChoice.Chooser = running.lowercased() == detected.lowercased() ? .openBLAS : choice.chooser
            return State(detected: detected, running: running, chooser: chooser,
                         reason: choice.reason + "; asked for \(target), OpenBLAS runs \(running)")
        }
        return State(detected: detected, running: running, chooser: choice.chooser, reason: choice.reason)
    }

    /// Makes OpenBLAS choose its core again with `OPENBLAS_CORETYPE=core`, then restores the
    /// variable. Returns the core that runs.
    private static func select(_ core: String, quit: Hook, initialize: Hook) -> String {
        let variable = BLASCoreChoice.openBLASVariable
        let previous = environment(variable)
        setenv(variable, core, 1)
        quit()
        initialize()
        if let previous { setenv(variable, previous, 1) } else { unsetenv(variable) }
        return runningCore
    }

    /// A 61×47×53 sgemm (odd sizes: the kernels' edge cases) equals a Double loop (`matches`).
    static func sgemmIsCorrect() -> Bool {
        let m = 61, n = 47, k = 53
        let a = (0..<m * k).map { Float(($0 * 7919) % 201 - 100) / 64 }
        let b = (0..<k * n).map { Float(($0 * 104_729) % 199 - 99) / 32 }
        var c = [Float](repeating: .nan, count: m * n)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(m), blasint(n), blasint(k), 1, a, blasint(k),
                    b, blasint(n), 0, &c, blasint(n))
        return matches(c, a, b, m: m, n: n, k: k)
    }

    /// Whether row-major c[m×n] = a[m×k]·b[k×n] to within 1e-5 of Σ|a||b| per element (float
    /// rounding over k terms stays below k × 6e-8 of it; a wrong kernel is off by order 1).
    static func matches(_ c: [Float], _ a: [Float], _ b: [Float], m: Int, n: Int, k: Int) -> Bool {
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0, magnitude = 0.0
                for p in 0..<k {
                    let term = Double(a[i * k + p]) * Double(b[p * n + j])
                    sum += term
                    magnitude += abs(term)
                }
                let value = Double(c[i * n + j])
                guard value.isFinite, abs(value - sum) <= 1e-5 * magnitude else { return false }
            }
        }
        return true
    }
}
