extension Model {
    /// JSON summary for `reparo_model_describe`: state, input, classes, trainable parameters,
    /// forward multiply-adds per image ("flops") and every leaf layer with its shapes; an
    /// expanded layer lists the weight shapes of its chain and its compact weight shape.
    public func describe() -> String {
        var layers: [[String: Any]] = []
        func visit(_ layer: Layer) {
            switch layer {
            case let sequential as Sequential:
                sequential.layers.forEach(visit)
            case let block as BasicBlock:
                block.main.layers.forEach(visit)
                block.shortcut.layers.forEach(visit)
                layers.append(["name": block.name, "type": "residual_add", "input": block.inputShape.array,
                               "output": block.outputShape.array])
            case let chain as ExpandedChain:
                let shapes = chain.factors.compactMap { $0.parameters.first?.shape }
                var entry: [String: Any] = ["name": chain.name, "input": chain.inputShape.array,
                                            "output": chain.outputShape.array, "chain": shapes]
                if let conv = chain.factors[1] as? Conv2D {
                    entry["type"] = "conv"
                    entry["weight"] = [chain.outputShape.channels, chain.inputShape.channels, conv.kernelSize, conv.kernelSize]
                    entry["stride"] = conv.stride
                    entry["padding"] = conv.padding
                } else {
                    entry["type"] = "linear"
                    entry["weight"] = [chain.outputShape.channels, chain.inputShape.count]
                }
                layers.append(entry)
            default:
                var entry: [String: Any] = ["name": layer.name, "type": typeName(layer),
                                            "input": layer.inputShape.array, "output": layer.outputShape.array]
                if let weight = layer.parameters.first, weight.kind == .weight { entry["weight"] = weight.shape }
                if let conv = layer as? Conv2D {
                    entry["stride"] = conv.stride
                    entry["padding"] = conv.padding
                    entry["bias"] = conv.bias != nil
                }
                layers.append(entry)
            }
        }
        visit(network)
        let object: [String: Any] = [
            "state": state.rawValue, "input": inputShape.array, "classes": classes,
            "parameters": parameterCount, "flops": multiplyAdds, "layers": layers,
        ]
        return jsonText(object)
    }

    private func typeName(_ layer: Layer) -> String {
        switch layer {
        case is Conv2D: return "conv"
        case is BatchNorm2D: return "batchnorm"
        case is ReLU: return "relu"
        case is MaxPool2D: return "maxpool"
        case is AvgPool2D: return "avgpool"
        case is Flatten: return "flatten"
        case is Linear: return "linear"
        default: return "layer"
        }
    }
}
