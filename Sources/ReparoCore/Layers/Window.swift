/// A square sliding window (a conv's kernel or a pool's), with stride and zero padding. Its
/// output size is the one formula every conv and pool uses, as ggml computes every conv's
/// with `ggml_calc_conv_output_size`: floor((input + 2·padding − kernel) / stride) + 1, as
/// PyTorch's floor mode.
public struct Window: Equatable, Hashable, Sendable {
    public var kernel: Int
    public var stride: Int
    public var padding: Int

    public init(kernel: Int, stride: Int, padding: Int = 0) {
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
    }

    /// Output side for an input side the window fits (`fits`); stride at least 1.
    public func outputSize(_ input: Int) -> Int { (input + 2 * padding - kernel) / stride + 1 }

    /// Whether the window fits the padded plane of `input`.
    public func fits(_ input: FeatureShape) -> Bool {
        input.height + 2 * padding >= kernel && input.width + 2 * padding >= kernel
    }

    /// The output of sliding the window over `input`, with `channels` output channels.
    public func output(_ input: FeatureShape, channels: Int) -> FeatureShape {
        FeatureShape(channels: channels, height: outputSize(input.height), width: outputSize(input.width))
    }
}
