extension Model {
    /// JSON summary for `reparo_model_describe`: state, input, classes, trainable parameters,
    /// forward multiply-adds per image ("flops") and every leaf layer with its shapes; an
    /// expanded layer lists the weight shapes of its chain and its compact weight shape.
    public func describe() -> String {
        var layers: [JSONValue] = []
        func visit(_ layer: Layer) {
            switch layer {
            case let sequential as Sequential:
                sequential.layers.forEach(visit)
            case let block as BasicBlock:
                block.main.layers.forEach(visit)
                block.shortcut.layers.forEach(visit)
                layers.append(["name": .string(block.name), "type": "residual_add", "input": .ints(block.inputShape.array),
                               "output": .ints(block.outputShape.array)])
            case let chain as ExpandedChain:
                let shapes = chain.factors.compactMap { $0.parameters.first?.shape }
                var entry: [String: JSONValue] = ["name": .string(chain.name), "input": .ints(chain.inputShape.array),
                                                  "output": .ints(chain.outputShape.array), "chain": .array(shapes.map(JSONValue.ints))]
                if let conv = chain.factors[1] as? Conv2D {
                    entry["type"] = "conv"
                    entry["weight"] = .ints([chain.outputShape.channels, chain.inputShape.channels, conv.kernelSize, conv.kernelSize])
                    entry["stride"] = .int(conv.stride)
                    entry["padding"] = .int(conv.padding)
                } else {
                    entry["type"] = "linear"
                    entry["weight"] = .ints([chain.outputShape.channels, chain.inputShape.count])
                }
                layers.append(JSONValue(entry))
            default:
                var entry: [String: JSONValue] = ["name": .string(layer.name), "type": .string(typeName(layer)),
                                                  "input": .ints(layer.inputShape.array), "output": .ints(layer.outputShape.array)]
                if let weight = layer.parameters.first, weight.kind == .weight { entry["weight"] = .ints(weight.shape) }
                if let conv = layer as? Conv2D {
                    entry["stride"] = .int(conv.stride)
                    entry["padding"] = .int(conv.padding)
                    entry["bias"] = .bool(conv.bias != nil)
                }
                layers.append(JSONValue(entry))
            }
        }
        visit(network)
        let object: JSONValue = [
            "state": .string(state.rawValue), "input": .ints(inputShape.array), "classes": .int(classes),
            "parameters": .int(parameterCount), "flops": .int(multiplyAdds), "layers": .array(layers),
        ]
        return JSONWriter.text(object)
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
