/// A tensor a network holds (a `Parameter`), by name and shape, known from the spec alone.
public struct TensorShape: Equatable, Sendable, CustomStringConvertible {
    public var name: String
    public var shape: [Int]
    public var count: Int { shape.reduce(1, *) }
    public var description: String { "\(name) \(shape)" }

    public init(name: String, shape: [Int]) {
        self.name = name
        self.shape = shape
    }
}
