@testable import ReparoCore

/// A Conv2D whose workspaces take a forced path and tile size
/// (`Conv2D.makeCache(batch:training:path:tileColumnLimit:)`), so that the generic layer
/// helpers of the tests run every path on small inputs. The forcing lives here, in the tests,
/// not on the production layer.
final class ForcedPathConvolution: Layer {
    let conv: Conv2D
    let smallPlane: Bool?, paddedWidth: Bool?, tileColumnLimit: Int?

    /// `smallPlane`, `paddedWidth`: force that path on or off where it applies (nil = the
    /// layer's own choice); `tileColumnLimit`: cap a tile's columns (multi-tile, multi-group runs).
    init(_ conv: Conv2D, smallPlane: Bool? = nil, paddedWidth: Bool? = nil, tileColumnLimit: Int? = nil) {
        self.conv = conv
        self.smallPlane = smallPlane
        self.paddedWidth = paddedWidth
        self.tileColumnLimit = tileColumnLimit
    }

    var name: String { conv.name }
    var inputShape: FeatureShape { conv.inputShape }
    var outputShape: FeatureShape { conv.outputShape }
    var parameters: [Parameter] { conv.parameters }
    var kind: LayerSpec.Kind? { conv.kind }

    func path(batch: Int) -> Conv2D.Path { conv.path(batch: batch, smallPlane: smallPlane, paddedWidth: paddedWidth) }

    func makeCache(batch: Int, training: Bool) throws -> LayerCache {
        try conv.makeCache(batch: batch, training: training, path: path(batch: batch), tileColumnLimit: tileColumnLimit)
    }

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, cache: LayerCache, training: Bool) {
        conv.forward(x, y, cache: cache, training: training)
    }

    func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, cache: LayerCache) {
        conv.backward(x, y, dy, dx, cache: cache)
    }
}
