import COpenBLAS

/// A model's tensors by name, as Double-free Float copies, for the method's structural
/// rewrites (prune, expand, collapse): each step reads the tensors of one spec and writes
/// those of the next.
struct TensorTable {
    private(set) var tensors: [String: NamedTensor] = [:]
    private(set) var order: [String] = []

    init(_ model: Model) throws {
        for tensor in try model.snapshot() { set(tensor.name, shape: tensor.shape, values: tensor.values) }
    }

    func get(_ name: String) throws -> NamedTensor {
        guard let tensor = tensors[name] else { throw ReparoError.internalError("tensor \(name) is missing") }
        return tensor
    }

    func has(_ name: String) -> Bool { tensors[name] != nil }

    mutating func set(_ name: String, shape: [Int], values: FloatBuffer) {
        if tensors[name] == nil { order.append(name) }
        tensors[name] = NamedTensor(name: name, shape: shape, values: values)
    }

    mutating func remove(_ name: String) {
        tensors[name] = nil
        order.removeAll { $0 == name }
    }

    var all: [NamedTensor] { order.compactMap { tensors[$0] } }

    /// Keeps `indices` along `axis` of a tensor; each index selects a block of `block`
    /// consecutive entries (a flattened channel of H·W features feeding a linear layer).
    mutating func slice(_ name: String, axis: Int, keep indices: [Int], block: Int = 1) throws {
        let tensor = try get(name)
        var shape = tensor.shape
        guard axis < shape.count, shape[axis] % block == 0 else {
            throw ReparoError.internalError("cannot slice \(name) \(shape) on axis \(axis) by blocks of \(block)")
        }
        let outer = shape[..<axis].reduce(1, *)
        let inner = shape[(axis + 1)...].reduce(1, *) * block
        let axisBlocks = shape[axis] / block
        guard indices.allSatisfy({ $0 >= 0 && $0 < axisBlocks }) else {
            throw ReparoError.internalError("slice of \(name): index out of range")
        }
        shape[axis] = indices.count * block
        let result = try FloatBuffer(count: shape.reduce(1, *))
        let source = tensor.values.pointer
        var target = result.pointer
        for o in 0..<outer {
            for index in indices {
                target.update(from: source + (o * axisBlocks + index) * inner, count: inner)
                target += inner
            }
        }
        set(name, shape: shape, values: result)
    }
}

/// Dense Double matrices for the exact algebra of expand and collapse.
enum DoubleMatrix {
    /// C[m×n] = A[m×k] · B[k×n] (row-major, optional transposes as in BLAS).
    static func multiply(_ a: [Double], _ b: [Double], m: Int, n: Int, k: Int,
                         transposeA: Bool = false, transposeB: Bool = false) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        if m == 0 || n == 0 { return c }
        _ = singleThreadedBLAS
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    guard let a = a.baseAddress, let b = b.baseAddress, let c = c.baseAddress else { return }
                    cblas_dgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                                blasint(m), blasint(n), blasint(k), 1, a, blasint(transposeA ? m : k),
                                b, blasint(transposeB ? k : n), 0, c, blasint(n))
                }
            }
        }
        return c
    }

    /// A random `rows × columns` matrix with orthonormal columns (QᵀQ = I), rows ≥ columns:
    /// Gaussian entries, then modified Gram–Schmidt in Double.
    static func semiOrthogonal(rows: Int, columns: Int, generator: inout SeededGenerator) -> [Double] {
        // Work on Qᵀ so that each column is contiguous.
        var transposed = [Double](repeating: 0, count: rows * columns)
        for i in transposed.indices { transposed[i] = Double(generator.nextNormal()) }
        transposed.withUnsafeMutableBufferPointer { buffer in
            guard let q = buffer.baseAddress else { return }
            for j in 0..<columns {
                let column = q + j * rows
                for _ in 0..<2 {  // twice is enough (Giraud et al. 2005)
                    for p in 0..<j {
                        let other = q + p * rows
                        var dot = 0.0
                        for i in 0..<rows { dot += column[i] * other[i] }
                        for i in 0..<rows { column[i] -= dot * other[i] }
                    }
                }
                var norm = 0.0
                for i in 0..<rows { norm += column[i] * column[i] }
                let inverse = 1 / norm.squareRoot()
                for i in 0..<rows { column[i] *= inverse }
            }
        }
        var q = [Double](repeating: 0, count: rows * columns)
        for j in 0..<columns {
            for i in 0..<rows { q[i * columns + j] = transposed[j * rows + i] }
        }
        return q
    }
}

extension FloatBuffer {
    var doubles: [Double] { (0..<count).map { Double(pointer[$0]) } }

    convenience init(doubles: [Double]) throws {
        try self.init(count: doubles.count)
        for i in 0..<doubles.count { pointer[i] = Float(doubles[i]) }
    }
}
