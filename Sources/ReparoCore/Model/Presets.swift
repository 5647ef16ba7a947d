/// The paper's CIFAR models. Tensor names follow the common PyTorch CIFAR definitions
/// (VGG: `features.<i>` / `classifier`; ResNet: `conv1`, `bn1`, `layer<s>.<b>.conv1`, `linear`)
/// so weights map onto a PyTorch model.
public enum Presets {
    public static let names = ["vgg16", "resnet20", "resnet56"]

    public static func spec(_ name: String, input: FeatureShape, classes: Int, width: Double) throws -> ModelSpec {
        func scaled(_ channels: Int) -> Int { max(1, Int((Double(channels) * width).rounded())) }
        switch name {
        case "vgg16":
            // 13 conv3×3 + BN + ReLU, max-pool after each stage, then Linear (Simonyan & Zisserman;
            // the CIFAR variant of Li et al. 2017). On 32×32 the five pools end at 1×1. On a
            // smaller input a pool is left out once the plane is down to 1×1 (28×28, as
            // Fashion-MNIST: 14, 7, 3, 1, and the fifth stage runs at 1×1), so the network keeps
            // its 13 convolutions on the data's own resolution instead of padding it to 32×32
            // (which would cost 31 % more multiply-adds for a border of zeros). Names count the
            // skipped pool as if it were there, so every tensor is named as at 32×32.
            let plan: [Int?] = [64, 64, nil, 128, 128, nil, 256, 256, 256, nil, 512, 512, 512, nil, 512, 512, 512, nil]
            var layers: [LayerSpec] = []
            var index = 0
            var (height, width) = (input.height, input.width)
            for entry in plan {
                if let channels = entry {
                    layers.append(.conv("features.\(index)", out: scaled(channels), kernel: 3, stride: 1, padding: 1))
                    layers.append(LayerSpec("features.\(index + 1)", .batchnorm))
                    layers.append(LayerSpec("features.\(index + 2)", .relu))
                    index += 3
                } else {
                    if height >= 2 && width >= 2 {
                        layers.append(.pool(.maxpool, "features.\(index)", kernel: 2, stride: 2))
                        (height, width) = (height / 2, width / 2)
                    }
                    index += 1
                }
            }
            layers.append(LayerSpec("flatten", .flatten))
            layers.append(.linear("classifier", out: classes))
            return ModelSpec(input: input, classes: classes, layers: layers)
        case "resnet20", "resnet56":
            let blocks = name == "resnet20" ? 3 : 9
            var layers: [LayerSpec] = [
                .conv("conv1", out: scaled(16), kernel: 3, stride: 1, padding: 1),
                LayerSpec("bn1", .batchnorm),
                LayerSpec("relu", .relu),
            ]
            var channels = scaled(16)
            for (stage, base) in [16, 32, 64].enumerated() {
                let out = scaled(base)
                for block in 0..<blocks {
                    let stride = (stage > 0 && block == 0) ? 2 : 1
                    layers.append(SpecParser.basicBlock("layer\(stage + 1).\(block)", inputChannels: channels,
                                                        out: out, stride: stride))
                    channels = out
                }
            }
            layers.append(.pool(.avgpool, "avgpool"))
            layers.append(LayerSpec("flatten", .flatten))
            layers.append(.linear("linear", out: classes))
            return ModelSpec(input: input, classes: classes, layers: layers)
        default:
            throw ReparoError.invalidArgument("spec.preset: unknown preset \"\(name)\"")
        }
    }
}
