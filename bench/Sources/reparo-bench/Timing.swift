import Foundation
import MallocCounter
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Seconds on the monotonic clock (the process CPU clock with BENCH_CPU_TIME set).
func now() -> Double {
    var time = timespec()
    clock_gettime(getenv("BENCH_CPU_TIME") != nil ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}

/// Timings of one operation, in seconds.
struct Sample {
    var median: Double
    var minimum: Double
    var repetitions: Int
    /// Most heap allocations (whole process, all threads) one timed call made: 0 = the warmed-up
    /// call allocates nothing.
    var allocations: UInt64 = 0
    /// Most bytes those allocations asked for in one timed call.
    var allocatedBytes: UInt64 = 0

    var milliseconds: Double { median * 1e3 }
    var json: [String: Any] {
        ["median_ms": median * 1e3, "min_ms": minimum * 1e3, "repetitions": repetitions,
         "allocations_per_call": allocations, "allocated_bytes_per_call": allocatedBytes]
    }
}

/// Peak resident memory of the process so far, in MiB (getrusage's ru_maxrss).
func peakResidentMiB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

/// Runs `body` `warmup` times untimed, then at least `repetitions` timed times; cheap operations
/// are repeated until `budget` seconds were spent (at most 1000 times), so their median is stable.
func measure(warmup: Int = 2, repetitions: Int = 10, budget: Double = 0.3, _ body: () throws -> Void) rethrows -> Sample {
    for _ in 0..<warmup { try body() }
    var times: [Double] = []
    var spent = 0.0
    times.reserveCapacity(1000)
    var allocations: UInt64 = 0, allocatedBytes: UInt64 = 0
    while times.count < repetitions || (spent < budget && times.count < 1000) {
        let before = reparo_bench_allocation_count(), bytesBefore = reparo_bench_allocated_bytes()
        let start = now()
        try body()
        let elapsed = now() - start
        allocations = max(allocations, reparo_bench_allocation_count() - before)
        allocatedBytes = max(allocatedBytes, reparo_bench_allocated_bytes() - bytesBefore)
        times.append(elapsed)
        spent += elapsed
    }
    return Sample(median: median(times), minimum: times.min() ?? 0, repetitions: times.count, allocations: allocations,
                  allocatedBytes: allocatedBytes)
}

/// Times several operations in interleaved rounds (each round calls every body once, in
/// order) after `warmup` untimed rounds, so a machine whose speed drifts over seconds (a
/// shared VM) slows them alike. Returns each body's sample and its per-round times, for
/// paired ratios (`pairedRatio`).
func measureInterleaved(warmup: Int = 2, rounds: Int, _ bodies: [() throws -> Void]) throws
    -> [(sample: Sample, times: [Double])] {
    for _ in 0..<warmup { for body in bodies { try body() } }
    var times = [[Double]](repeating: [], count: bodies.count)
    var allocations = [UInt64](repeating: 0, count: bodies.count)
    var allocatedBytes = [UInt64](repeating: 0, count: bodies.count)
    for _ in 0..<max(1, rounds) {
        for (index, body) in bodies.enumerated() {
            let before = reparo_bench_allocation_count(), bytesBefore = reparo_bench_allocated_bytes()
            let start = now()
            try body()
            let elapsed = now() - start
            allocations[index] = max(allocations[index], reparo_bench_allocation_count() - before)
            allocatedBytes[index] = max(allocatedBytes[index], reparo_bench_allocated_bytes() - bytesBefore)
            times[index].append(elapsed)
        }
    }
    return times.indices.map { index in
        (Sample(median: median(times[index]), minimum: times[index].min() ?? 0, repetitions: times[index].count,
                allocations: allocations[index], allocatedBytes: allocatedBytes[index]), times[index])
    }
}

/// The median over rounds of `times[r] / reference[r]`: a ratio of two interleaved
/// measurements that drift between rounds cancels out of.
func pairedRatio(_ times: [Double], _ reference: [Double]) -> Double {
    median(zip(times, reference).map { $0 / $1 })
}

/// The median of `values` (the mean of the middle two for an even count; 0 if empty).
func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/// Deterministic uniform values in [-1, 1) (xorshift), for inputs and gradients.
func fillRandom(_ pointer: UnsafeMutablePointer<Float>, count: Int, seed: UInt64) {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    for i in 0..<count {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        pointer[i] = Float(state >> 40) / Float(1 << 23) - 1
    }
}

/// Fixed-width cells for the markdown tables.
func format(_ value: Double, _ digits: Int = 1) -> String {
    let scale = pow(10.0, Double(digits))
    let rounded = (value * scale).rounded() / scale
    var text = "\(rounded)"
    if let dot = text.firstIndex(of: ".") {
        let decimals = text.distance(from: dot, to: text.endIndex) - 1
        if decimals < digits { text += String(repeating: "0", count: digits - decimals) }
        if digits == 0 { text = String(text[..<dot]) }
    }
    return text
}

func table(_ header: [String], _ rows: [[String]]) -> String {
    var lines = ["| " + header.joined(separator: " | ") + " |",
                 "|" + header.map { _ in "---:" }.joined(separator: "|") + "|"]
    lines += rows.map { "| " + $0.joined(separator: " | ") + " |" }
    return lines.joined(separator: "\n")
}

/// CPU time the rest of the machine used while a section ran, from /proc (Linux): the share of
/// both cores busy with other processes. A benchmark taken while others compile is not one.
struct ForeignLoad {
    private var busy: Double, total: Double, own: Double

    init() { (busy, total, own) = ForeignLoad.read() }

    /// Fraction of all CPU time, since `init`, spent by other processes (0 when /proc is absent).
    var share: Double {
        let (busyNow, totalNow, ownNow) = ForeignLoad.read()
        let elapsed = totalNow - total
        guard elapsed > 0 else { return 0 }
        return max(0, (busyNow - busy) - (ownNow - own)) / elapsed
    }

    private static func read() -> (busy: Double, total: Double, own: Double) {
        guard let system = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = system.split(separator: "\n").first,
              let process = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let close = process.lastIndex(of: ")") else { return (0, 0, 0) }
        let ticks = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard ticks.count >= 8 else { return (0, 0, 0) }
        // user nice system idle iowait irq softirq steal
        let busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]
        let total = busy + ticks[3] + ticks[4]
        let fields = process[process.index(after: close)...].split(separator: " ")
        // After "(comm)": state is field 3, utime 14 and stime 15.
        guard fields.count > 12, let user = Double(fields[11]), let kernel = Double(fields[12]) else { return (busy, total, 0) }
        return (busy, total, user + kernel)
    }
}
