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
