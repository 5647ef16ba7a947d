/// Average pooling, square window and stride, no padding; `global` averages the whole plane
/// into [C, 1, 1] (the ResNet head).
public final class AvgPool2D: StatelessLayer {
    public let name: String
    public let inputShape: FeatureShape
    public let outputShape: FeatureShape
    public let kernelSize: Int
    public let stride: Int
    public var kind: LayerSpec.Kind? { .avgpool }

    /// `kernelSize` nil means global pooling.
    public init(name: String, input: FeatureShape, kernelSize: Int?, stride: Int?) {
        self.name = name
        self.inputShape = input
        if let kernelSize {
            let s = stride ?? kernelSize
            self.kernelSize = kernelSize
            self.stride = s
            outputShape = Window(kernel: kernelSize, stride: s).output(input, channels: input.channels)
        } else {
            self.kernelSize = 0
            self.stride = 0
            outputShape = FeatureShape(channels: input.channels, height: 1, width: 1)
        }
    }

    public var isGlobal: Bool { kernelSize == 0 }
    public var multiplyAdds: Int { inputShape.count }

    private var window: (height: Int, width: Int, stride: Int) {
        isGlobal ? (inputShape.height, inputShape.width, 1) : (kernelSize, kernelSize, stride)
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, cache: LayerCache, training: Bool) {
        let (kh, kw, s) = window
        let scale = 1 / Float(kh * kw)
        let planes = cache.batch * inputShape.channels
        let inPlane = inputShape.spatial, outPlane = outputShape.spatial, w = inputShape.width
        for plane in 0..<planes {
            let source = x + plane * inPlane, target = y + plane * outPlane
            for oh in 0..<outputShape.height {
                for ow in 0..<outputShape.width {
                    var total: Float = 0
                    for u in 0..<kh {
                        let row = source + (oh * s + u) * w + ow * s
                        for v in 0..<kw { total += row[v] }
                    }
                    target[oh * outputShape.width + ow] = total * scale
                }
            }
        }
    }

    public func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, cache: LayerCache) {
        guard let dx else { return }
        let (kh, kw, s) = window
        let scale = 1 / Float(kh * kw)
        let planes = cache.batch * inputShape.channels
        let inPlane = inputShape.spatial, outPlane = outputShape.spatial, w = inputShape.width
        dx.update(repeating: 0, count: planes * inPlane)
        for plane in 0..<planes {
            let target = dx + plane * inPlane, gradient = dy + plane * outPlane
            for oh in 0..<outputShape.height {
                for ow in 0..<outputShape.width {
                    let g = gradient[oh * outputShape.width + ow] * scale
                    for u in 0..<kh {
                        let row = target + (oh * s + u) * w + ow * s
                        for v in 0..<kw { row[v] += g }
                    }
                }
            }
        }
    }
}
