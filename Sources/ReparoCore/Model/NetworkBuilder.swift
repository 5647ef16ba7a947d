import Foundation

/// Builds the runtime network of a resolved spec, checking every shape, and fills its
/// tensors either from a seeded initializer or from named tensors (a loaded file, or the
/// output of prune/expand/collapse).
enum NetworkBuilder {
    /// Largest model accepted: trainable and saved scalars, and activation floats per sample.
    static let maximumParameters = 256 << 20
    static let maximumActivationsPerSample = 64 << 20

    static func build(_ spec: ModelSpec) throws -> Sequential {
        var names = Set<String>()
        var budget = Budget()
        let network = try buildList(spec.layers, name: "", input: spec.input, names: &names, budget: &budget)
        let output = network.outputShape
        guard output == FeatureShape(channels: spec.classes, height: 1, width: 1) else {
            throw ReparoError.invalidArgument("spec: the last layer gives \(output) but \"classes\" is \(spec.classes); end with a linear layer of \(spec.classes) outputs")
        }
        return network
    }

    struct Budget {
        var parameters = 0
        var activations = 0
        mutating func add(_ layer: Layer) throws {
            parameters += layer.parameters.reduce(0) { $0 + $1.count }
            activations += layer.outputShape.count
            guard parameters <= NetworkBuilder.maximumParameters else {
                throw ReparoError.invalidArgument("spec: more than \(NetworkBuilder.maximumParameters) parameters (at layer \(layer.name))")
            }
            guard activations <= NetworkBuilder.maximumActivationsPerSample else {
                throw ReparoError.invalidArgument("spec: activations exceed \(NetworkBuilder.maximumActivationsPerSample) floats per sample (at layer \(layer.name))")
            }
        }
    }

    static func buildList(_ specs: [LayerSpec], name: String, input: FeatureShape, names: inout Set<String>,
                          budget: inout Budget) throws -> Sequential {
        var shape = input
        var layers: [Layer] = []
        for spec in specs {
            guard names.insert(spec.name).inserted else {
                throw ReparoError.invalidArgument("spec: layer name \"\(spec.name)\" is used twice")
            }
            let layer = try buildLayer(spec, input: shape, names: &names, budget: &budget)
            try budget.add(layer)
            layers.append(layer)
            shape = layer.outputShape
        }
        return Sequential(name: name, input: input, layers: layers)
    }

    /// Refuses a weight of `factors` elements before it is allocated.
    static func checkWeight(_ factors: [Int], layer: String) throws {
        var total = 1
        for factor in factors {
            let (product, overflow) = total.multipliedReportingOverflow(by: factor)
            guard !overflow, product <= maximumParameters else {
                throw ReparoError.invalidArgument("layer \"\(layer)\": weight \(factors) exceeds the limit of \(maximumParameters) parameters")
            }
            total = product
        }
    }

    static func buildLayer(_ spec: LayerSpec, input: FeatureShape, names: inout Set<String>,
                           budget: inout Budget) throws -> Layer {
        let where_ = "layer \"\(spec.name)\""
        if spec.kind == .conv || spec.kind == .linear {
            let inputs = spec.kind == .conv ? input.channels : input.count
            let taps = spec.kind == .conv ? spec.kernel * spec.kernel : 1
            if let chain = spec.chain {
                try checkWeight([chain[0], inputs], layer: spec.name)
                try checkWeight([chain[1], chain[0], taps], layer: spec.name)
                try checkWeight([spec.out, chain[1]], layer: spec.name)
            } else {
                try checkWeight([spec.out, inputs, taps], layer: spec.name)
            }
        }
        switch spec.kind {
        case .conv:
            guard input.height + 2 * spec.padding >= spec.kernel, input.width + 2 * spec.padding >= spec.kernel else {
                throw ReparoError.invalidArgument("\(where_): kernel \(spec.kernel) is larger than the padded input \(input)")
            }
            guard spec.padding < spec.kernel else {
                throw ReparoError.invalidArgument("\(where_): padding \(spec.padding) must be smaller than the kernel \(spec.kernel)")
            }
            guard let chain = spec.chain else {
                return try Conv2D(name: spec.name, input: input, outputChannels: spec.out, kernelSize: spec.kernel,
                                  stride: spec.stride, padding: spec.padding, bias: spec.bias)
            }
            let first = try Conv2D(name: spec.name + ".factors.0", input: input, outputChannels: chain[0],
                                   kernelSize: 1, stride: 1, padding: 0, bias: false)
            let middle = try Conv2D(name: spec.name + ".factors.1", input: first.outputShape, outputChannels: chain[1],
                                    kernelSize: spec.kernel, stride: spec.stride, padding: spec.padding, bias: false)
            let last = try Conv2D(name: spec.name + ".factors.2", input: middle.outputShape, outputChannels: spec.out,
                                  kernelSize: 1, stride: 1, padding: 0, bias: spec.bias)
            return try ExpandedChain(name: spec.name, input: input, factors: [first, middle, last])
        case .linear:
            guard let chain = spec.chain else {
                return try Linear(name: spec.name, input: input, outputFeatures: spec.out, bias: spec.bias)
            }
            let first = try Linear(name: spec.name + ".factors.0", input: input, outputFeatures: chain[0], bias: false)
            let middle = try Linear(name: spec.name + ".factors.1", input: first.outputShape, outputFeatures: chain[1], bias: false)
            let last = try Linear(name: spec.name + ".factors.2", input: middle.outputShape, outputFeatures: spec.out, bias: spec.bias)
            return try ExpandedChain(name: spec.name, input: input, factors: [first, middle, last])
        case .batchnorm:
            return try BatchNorm2D(name: spec.name, input: input)
        case .relu:
            return ReLU(name: spec.name, input: input)
        case .maxpool:
            guard input.height >= spec.kernel, input.width >= spec.kernel else {
                throw ReparoError.invalidArgument("\(where_): max-pool window \(spec.kernel) is larger than the input \(input)")
            }
            return MaxPool2D(name: spec.name, input: input, kernelSize: spec.kernel, stride: spec.stride)
        case .avgpool:
            if spec.kernel > 0 {
                guard input.height >= spec.kernel, input.width >= spec.kernel else {
                    throw ReparoError.invalidArgument("\(where_): avg-pool window \(spec.kernel) is larger than the input \(input)")
                }
                return AvgPool2D(name: spec.name, input: input, kernelSize: spec.kernel, stride: spec.stride)
            }
            return AvgPool2D(name: spec.name, input: input, kernelSize: nil, stride: nil)
        case .flatten:
            return Flatten(name: spec.name, input: input)
        case .basicBlock:
            let main = try buildList(spec.main, name: spec.name, input: input, names: &names, budget: &budget)
            let shortcut = try buildList(spec.shortcut, name: spec.name + ".shortcut", input: input, names: &names, budget: &budget)
            guard main.outputShape == shortcut.outputShape else {
                throw ReparoError.invalidArgument("\(where_): main path gives \(main.outputShape) but the shortcut gives \(shortcut.outputShape)")
            }
            return try BasicBlock(name: spec.name, input: input, main: main, shortcut: shortcut)
        }
    }

    /// Fresh weights: Kaiming-normal convs (He et al. 2015, fan-in, ReLU gain), PyTorch's
    /// default uniform ±1/√in for linear layers, BatchNorm γ = 1, β = 0.
    static func initialize(_ network: Layer, seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        for parameter in network.parameters {
            let values = parameter.value.buffer
            switch parameter.kind {
            case .weight:
                let fanIn = parameter.shape.dropFirst().reduce(1, *)
                if parameter.shape.count == 4 {
                    let std = (2 / Float(max(fanIn, 1))).squareRoot()
                    for i in values.indices { values[i] = generator.nextNormal() * std }
                } else {
                    let bound = 1 / Float(max(fanIn, 1)).squareRoot()
                    for i in values.indices { values[i] = (generator.nextUniform() * 2 - 1) * bound }
                }
            case .bias:
                // Biases start at zero (the weights carry the symmetry breaking).
                values.update(repeating: 0)
            case .normScale, .runningVariance:
                values.update(repeating: 1)
            case .normShift, .runningMean:
                values.update(repeating: 0)
            }
        }
    }

    /// Copies named tensors into the network; every tensor must be present with its exact
    /// shape, and no extra tensors may remain.
    static func assign(_ tensors: [NamedTensor], to network: Layer, source: String) throws {
        var byName: [String: NamedTensor] = [:]
        for tensor in tensors {
            guard byName[tensor.name] == nil else {
                throw ReparoError.format("\(source): tensor \"\(tensor.name)\" appears twice")
            }
            byName[tensor.name] = tensor
        }
        for parameter in network.parameters {
            guard let tensor = byName.removeValue(forKey: parameter.name) else {
                throw ReparoError.format("\(source): tensor \"\(parameter.name)\" is missing")
            }
            guard tensor.shape == parameter.shape, tensor.values.count == parameter.count else {
                throw ReparoError.format("\(source): tensor \"\(parameter.name)\" has shape \(tensor.shape), the spec needs \(parameter.shape)")
            }
            parameter.value.pointer.update(from: tensor.values.pointer, count: parameter.count)
        }
        if let extra = byName.keys.sorted().first {
            throw ReparoError.format("\(source): tensor \"\(extra)\" is not part of the spec")
        }
    }
}
