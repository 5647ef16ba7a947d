extension Model {
    /// JSON summary for `reparo_model_describe`: state, input, classes, trainable parameters,
    /// forward multiply-adds per image ("flops") and every leaf layer with its shapes; an
    /// expanded layer lists the weight shapes of its chain and its compact weight shape.
    public func describe() -> String {
        var layers: [JSONValue] = []
        func visit(_ layer: Layer) {
            guard let kind = layer.kind else {   // a sequence: its layers
                layer.children.forEach(visit)
                return
            }
            if kind == .basicBlock {
                layer.children.forEach(visit)
                layers.append(["name": .string(layer.name), "type": "residual_add", "input": .ints(layer.inputShape.array),
                               "output": .ints(layer.outputShape.array)])
                return
            }
            var entry: [String: JSONValue] = ["name": .string(layer.name), "type": .string(kind.rawValue),
                                              "input": .ints(layer.inputShape.array), "output": .ints(layer.outputShape.array)]
            if let chain = layer as? ExpandedChain {
                entry["chain"] = .array(chain.factors.compactMap { $0.parameters.first?.shape }.map(JSONValue.ints))
                if let conv = chain.factors[1] as? Conv2D {
                    entry["weight"] = .ints([chain.outputShape.channels, chain.inputShape.channels, conv.kernelSize, conv.kernelSize])
                    entry["stride"] = .int(conv.stride)
                    entry["padding"] = .int(conv.padding)
                } else {
                    entry["weight"] = .ints([chain.outputShape.channels, chain.inputShape.count])
                }
            } else {
                if let weight = layer.parameters.first, weight.kind == .weight { entry["weight"] = .ints(weight.shape) }
                if let conv = layer as? Conv2D {
                    entry["stride"] = .int(conv.stride)
                    entry["padding"] = .int(conv.padding)
                    entry["bias"] = .bool(conv.bias != nil)
                }
            }
            layers.append(JSONValue(entry))
        }
        visit(network)
        let object: JSONValue = [
            "state": .string(state.rawValue), "input": .ints(inputShape.array), "classes": .int(classes),
            "parameters": .int(parameterCount), "flops": .int(multiplyAdds), "layers": .array(layers),
        ]
        return JSONWriter.text(object)
    }
}
