/// y = max(x, 0); dx = dy where y > 0, else 0.
public final class ReLU: StatelessLayer {
    public let name: String
    public let inputShape: FeatureShape
    public var outputShape: FeatureShape { inputShape }
    public var kind: LayerSpec.Kind? { .relu }

    public init(name: String, input: FeatureShape) {
        self.name = name
        self.inputShape = input
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, cache: LayerCache, training: Bool) {
        ReLU.apply(x, y, count: cache.batch * inputShape.count)
    }

    @inline(__always)
    static func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        Vector.relu(x, y, count: count)
    }

    public func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, cache: LayerCache) {
        guard let dx else { return }
        ReLU.gradient(y, dy, dx, count: cache.batch * inputShape.count)
    }

    @inline(__always)
    static func gradient(_ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, count: Int) {
        Vector.reluGradient(y, dy, dx, count: count)
    }
}
