/// Small vector helpers on raw pointers (bounds-check free, vectorizable by the compiler).
enum Vector {
    @inline(__always)
    static func add(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { y[i] += x[i] }
    }

    @inline(__always)
    static func copy(_ x: UnsafePointer<Float>, to y: UnsafeMutablePointer<Float>, count: Int) {
        y.update(from: x, count: count)
    }

    @inline(__always)
    static func fill(_ y: UnsafeMutablePointer<Float>, count: Int, value: Float = 0) {
        y.update(repeating: value, count: count)
    }

    @inline(__always)
    static func sum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var total: Float = 0
        for i in 0..<count { total += x[i] }
        return total
    }

    /// True when every value is finite.
    static func allFinite(_ x: UnsafePointer<Float>, count: Int) -> Bool {
        var accumulator: Float = 0
        for i in 0..<count { accumulator += x[i] * 0 }
        return accumulator == 0  // NaN or ±inf times 0 is NaN
    }

    /// Transposes a block-major [A, B, P] array to [B, A, P] (P contiguous).
    static func permuteBlocks(_ x: UnsafePointer<Float>, to y: UnsafeMutablePointer<Float>, a: Int, b: Int, inner: Int) {
        for i in 0..<a {
            for j in 0..<b {
                (y + (j * a + i) * inner).update(from: x + (i * b + j) * inner, count: inner)
            }
        }
    }
}
