/// The shape of one sample's activation, `[C, H, W]`; a batch is `[N, C, H, W]` in NCHW order.
/// Flattened features are `[C, 1, 1]`.
public struct FeatureShape: Equatable, Hashable, Codable, CustomStringConvertible, Sendable {
    public var channels: Int
    public var height: Int
    public var width: Int

    public init(channels: Int, height: Int, width: Int) {
        self.channels = channels
        self.height = height
        self.width = width
    }

    /// Elements of one sample: C·H·W.
    public var count: Int { channels * height * width }
    /// Spatial positions: H·W.
    public var spatial: Int { height * width }
    public var array: [Int] { [channels, height, width] }
    public var description: String { "[\(channels), \(height), \(width)]" }
}
