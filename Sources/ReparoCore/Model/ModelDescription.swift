extension Model {
    /// JSON summary for `reparo_model_describe`: state, input, classes, trainable parameters,
    /// forward multiply-adds per image ("flops") and every leaf layer with its shapes; an
    /// expanded layer lists the weight shapes of its chain and its compact weight shape.
    public func describe() -> String {
        var layers: [[String: Any]] = []
        func visit(_ layer: Layer) {
            guard let kind = layer.kind else {   // a sequence: its layers
                layer.children.forEach(visit)
                return
            }
            if kind == .basicBlock {
                layer.children.forEach(visit)
                layers.append(["name": layer.name, "type": "residual_add", "input": layer.inputShape.array,
                               "output": layer.outputShape.array])
                return
            }
            var entry: [String: Any] = ["name": layer.name, "type": kind.rawValue,
                                        "input": layer.inputShape.array, "output": layer.outputShape.array]
            if let chain = layer as? ExpandedChain {
                entry["chain"] = chain.factors.compactMap { $0.parameters.first?.shape }
                if let conv = chain.factors[1] as? Conv2D {
                    entry["weight"] = [chain.outputShape.channels, chain.inputShape.channels, conv.kernelSize, conv.kernelSize]
                    entry["stride"] = conv.stride
                    entry["padding"] = conv.padding
                } else {
                    entry["weight"] = [chain.outputShape.channels, chain.inputShape.count]
                }
            } else {
                if let weight = layer.parameters.first, weight.kind == .weight { entry["weight"] = weight.shape }
                if let conv = layer as? Conv2D {
                    entry["stride"] = conv.stride
                    entry["padding"] = conv.padding
                    entry["bias"] = conv.bias != nil
                }
            }
            layers.append(entry)
        }
        visit(network)
        let object: [String: Any] = [
            "state": state.rawValue, "input": inputShape.array, "classes": classes,
            "parameters": parameterCount, "flops": multiplyAdds, "layers": layers,
        ]
        return jsonText(object)
    }
}
