/// Vector helpers on raw pointers. Reductions accumulate in SIMD registers (16 lanes) so the
/// compiler can vectorize them (a scalar float sum is a serial dependency chain), and
/// selections are branch-free (a data-dependent branch per element mispredicts half the time
/// on activations).
enum Vector {
    typealias Lanes = SIMD16<Float>
    static let width = Lanes.scalarCount

    @inline(__always)
    static func load(_ x: UnsafePointer<Float>) -> Lanes {
        UnsafeRawPointer(x).loadUnaligned(as: Lanes.self)
    }

    @inline(__always)
    static func store(_ value: Lanes, _ y: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(y).storeBytes(of: value, as: Lanes.self)
    }

    /// y += x
    @inline(__always)
    static func add(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + width <= count {
            store(load(y + i) + load(x + i), y + i)
            i += width
        }
        while i < count { y[i] += x[i]; i += 1 }
    }

    /// y = x + value
    @inline(__always)
    static func copy(_ x: UnsafePointer<Float>, adding value: Float, to y: UnsafeMutablePointer<Float>, count: Int) {
        let lanes = Lanes(repeating: value)
        var i = 0
        while i + width <= count {
            store(load(x + i) + lanes, y + i)
            i += width
        }
        while i < count { y[i] = x[i] + value; i += 1 }
    }

    @inline(__always)
    static func copy(_ x: UnsafePointer<Float>, to y: UnsafeMutablePointer<Float>, count: Int) {
        y.update(from: x, count: count)
    }

    @inline(__always)
    static func fill(_ y: UnsafeMutablePointer<Float>, count: Int, value: Float = 0) {
        y.update(repeating: value, count: count)
    }

    /// Σ x (16 partial sums, then combined).
    @inline(__always)
    static func sum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var lanes = Lanes()
        var i = 0
        while i + width <= count {
            lanes += load(x + i)
            i += width
        }
        var total = lanes.sum()
        while i < count { total += x[i]; i += 1 }
        return total
    }

    /// Σ x·y
    @inline(__always)
    static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count: Int) -> Float {
        var lanes = Lanes()
        var i = 0
        while i + width <= count {
            lanes += load(x + i) * load(y + i)
            i += width
        }
        var total = lanes.sum()
        while i < count { total += x[i] * y[i]; i += 1 }
        return total
    }

    /// Σ (x − mean)²
    @inline(__always)
    static func squaredDeviation(_ x: UnsafePointer<Float>, mean: Float, count: Int) -> Float {
        var lanes = Lanes()
        let center = Lanes(repeating: mean)
        var i = 0
        while i + width <= count {
            let d = load(x + i) - center
            lanes += d * d
            i += width
        }
        var total = lanes.sum()
        while i < count { let d = x[i] - mean; total += d * d; i += 1 }
        return total
    }

    /// Σ x·(y − center)
    @inline(__always)
    static func centeredDot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, center: Float, count: Int) -> Float {
        var lanes = Lanes()
        let middle = Lanes(repeating: center)
        var i = 0
        while i + width <= count {
            lanes += load(x + i) * (load(y + i) - middle)
            i += width
        }
        var total = lanes.sum()
        while i < count { total += x[i] * (y[i] - center); i += 1 }
        return total
    }

    /// y = x·scale + shift
    @inline(__always)
    static func affine(_ x: UnsafePointer<Float>, scale: Float, shift: Float, to y: UnsafeMutablePointer<Float>, count: Int) {
        let a = Lanes(repeating: scale), b = Lanes(repeating: shift)
        var i = 0
        while i + width <= count {
            store(load(x + i) * a + b, y + i)
            i += width
        }
        while i < count { y[i] = x[i] * scale + shift; i += 1 }
    }

    /// y = (x − center)·scale + shift
    @inline(__always)
    static func affine(_ x: UnsafePointer<Float>, center: Float, scale: Float, shift: Float,
                       to y: UnsafeMutablePointer<Float>, count: Int) {
        let m = Lanes(repeating: center), a = Lanes(repeating: scale), b = Lanes(repeating: shift)
        var i = 0
        while i + width <= count {
            store((load(x + i) - m) * a + b, y + i)
            i += width
        }
        while i < count { y[i] = (x[i] - center) * scale + shift; i += 1 }
    }

    /// dx = gain·dy − offset − slope·(x − center): BatchNorm's input gradient with x̂ recomputed.
    @inline(__always)
    static func normalizationGradient(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, center: Float, gain: Float,
                                      offset: Float, slope: Float, to dx: UnsafeMutablePointer<Float>, count: Int) {
        let m = Lanes(repeating: center), k = Lanes(repeating: gain)
        let o = Lanes(repeating: offset), s = Lanes(repeating: slope)
        var i = 0
        while i + width <= count {
            store(k * load(dy + i) - o - s * (load(x + i) - m), dx + i)
            i += width
        }
        while i < count { dx[i] = gain * dy[i] - offset - slope * (x[i] - center); i += 1 }
    }

    /// True when every value is finite (no NaN, no ±∞): exponent bits not all ones.
    static func allFinite(_ x: UnsafePointer<Float>, count: Int) -> Bool {
        let bits = UnsafeRawPointer(x).assumingMemoryBound(to: UInt32.self)
        var exponentAllOnes: UInt32 = 0
        for i in 0..<count {
            let exponent = bits[i] & 0x7F80_0000
            exponentAllOnes |= (exponent &+ 0x0080_0000) & 0x8000_0000  // carries into bit 31 only for 0x7F80_0000
        }
        return exponentAllOnes == 0
    }

    /// y = max(x, 0); NaN stays NaN (so the step's finiteness check sees it). A select, not
    /// `pointwiseMax`, which the compiler leaves as 16 scalar NaN-aware max calls (≈ 15× slower).
    @inline(__always)
    static func relu(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        let zero = Lanes()
        while i + width <= count {
            let value = load(x + i)
            store(value.replacing(with: zero, where: value .< zero), y + i)
            i += width
        }
        while i < count { y[i] = x[i] < 0 ? 0 : x[i]; i += 1 }
    }

    /// dx = dy where y > 0, else 0 (branch-free); dx may alias dy.
    @inline(__always)
    static func reluGradient(_ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        let zero = Lanes()
        while i + width <= count {
            let g = load(dy + i)
            store(g.replacing(with: zero, where: load(y + i) .<= zero), dx + i)
            i += width
        }
        while i < count { dx[i] = y[i] > 0 ? dy[i] : 0; i += 1 }
    }

    /// y [columns, rows] = x [rows, columns]ᵀ, on the calling thread, in tiles of 16 rows × 16
    /// columns (the general `permuteBlocks` loop with P = 1 is several times slower).
    static func transpose(_ x: UnsafePointer<Float>, rows: Int, columns: Int, to y: UnsafeMutablePointer<Float>) {
        var r0 = 0
        while r0 < rows {
            let r1 = min(rows, r0 &+ 16)
            var c0 = 0
            while c0 < columns {
                let c1 = min(columns, c0 &+ 16)
                var r = r0
                while r < r1 {
                    let source = x + r &* columns
                    var target = y + (c0 &* rows &+ r)
                    var c = c0
                    while c < c1 { target.pointee = source[c]; target += rows; c &+= 1 }
                    r &+= 1
                }
                c0 = c1
            }
            r0 = r1
        }
    }

    /// Transposes a block-major [A, B, P] array to [B, A, P] (P contiguous). Split over the engine's threads by output rows b; within a worker,
    /// 16 b's at a time so both the reads (16·P contiguous floats of one a) and the writes
    /// (16 output rows) stay on few cache lines. P is small here (a kernel's taps), so the
    /// inner copy is a plain loop rather than a memcpy call per block.
    static func permuteBlocks(_ x: UnsafePointer<Float>, to y: UnsafeMutablePointer<Float>, a: Int, b: Int, inner: Int) {
        let tile = 16
        let tiles = (b + tile - 1) / tile
        Parallel.forEach(tiles, minimumWork: tile * a * inner,
                         context: (x: x, y: y, a: a, b: b, inner: inner, tile: tile)) { c, blockIndex in
            let (x, y, a, b, inner) = (c.x, c.y, c.a, c.b, c.inner)
            let j0 = blockIndex * c.tile, j1 = min(b, j0 + c.tile)
            for i in 0..<a {
                let source = x + (i * b) * inner
                for j in j0..<j1 {
                    let from = source + j * inner
                    let to = y + (j * a + i) * inner
                    for p in 0..<inner { to[p] = from[p] }
                }
            }
        }
    }
}
