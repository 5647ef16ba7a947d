/// A compact conv or linear layer over-parameterized as three consecutive linear factors
/// (ExpandNets, Guo et al. 2020; Qian et al. 2022): for a conv, 1×1 (Cin → r·Cin) → k×k
/// (r·Cin → r·Cout, the original stride and padding) → 1×1 (r·Cout → Cout, the original
/// bias). No nonlinearity inside, so the chain equals one layer with the product weight
/// (`Collapse`). Trained here as the chain itself (the paper's "naive" form).
public final class ExpandedChain: Layer {
    public let name: String
    public let inputShape: FeatureShape
    public let factors: [Layer]
    let path: Sequential

    init(name: String, input: FeatureShape, factors: [Layer]) {
        self.name = name
        self.inputShape = input
        self.factors = factors
        self.path = Sequential(name: name, input: input, layers: factors)
    }

    public var outputShape: FeatureShape { path.outputShape }
    public var parameters: [Parameter] { path.parameters }
    public var multiplyAdds: Int { path.multiplyAdds }

    public func makeCache(batch: Int, training: Bool) throws -> LayerCache {
        try path.makeCache(batch: batch, training: training)
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, cache: LayerCache, training: Bool) {
        path.forward(x, y, cache: cache, training: training)
    }

    public func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, cache: LayerCache) {
        path.backward(x, y, dy, dx, cache: cache)
    }
}
