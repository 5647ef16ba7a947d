/// [C, H, W] → [C·H·W, 1, 1]. NCHW memory is already in that order: a copy.
public final class Flatten: StatelessLayer {
    public let name: String
    public let inputShape: FeatureShape
    public var outputShape: FeatureShape { FeatureShape(channels: inputShape.count, height: 1, width: 1) }
    public var kind: LayerSpec.Kind? { .flatten }

    public init(name: String, input: FeatureShape) {
        self.name = name
        self.inputShape = input
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, cache: LayerCache, training: Bool) {
        y.update(from: x, count: cache.batch * inputShape.count)
    }

    public func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, cache: LayerCache) {
        dx?.update(from: dy, count: cache.batch * inputShape.count)
    }
}
