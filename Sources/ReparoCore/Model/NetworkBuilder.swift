import Foundation

/// Builds the runtime network of a resolved spec, checking every shape, and fills its
/// tensors either from a seeded initializer or from named tensors (a loaded file, or the
/// output of prune/expand/collapse).
///
/// Every check happens in `plan`, on the spec alone, before anything is allocated: a spec (or
/// a file's spec) cannot make the builder allocate for layers it then refuses.
enum NetworkBuilder {
    /// Largest model accepted: trainable and saved scalars, and activation floats per sample.
    static let maximumParameters = 256 << 20
    static let maximumActivationsPerSample = 64 << 20
    /// Largest inference workspace of one image (activations, im2col columns, every buffer the
    /// eval-mode caches hold), in floats: 512 MiB. Measured, not predicted, when a model is
    /// made (`Model.reserveWorkspace`), so it follows whatever the layers' caches really hold.
    /// vgg16 on 224×224 images needs about 100 M.
    static let maximumWorkspacePerSample = 128 << 20

    /// One layer of a spec with the shapes it maps between.
    struct LayerShape: Equatable {
        var name: String
        var kind: LayerSpec.Kind
        var input: FeatureShape
        var output: FeatureShape
    }

    /// What building a spec allocates, known from the spec alone.
    struct Plan {
        /// Every layer, depth-first pre-order (a block before its main path and its shortcut).
        var layers: [LayerShape] = []
        /// Every tensor of the model, in `Model.parameters` order.
        var tensors: [TensorShape] = []
        /// Scalars of `tensors`.
        var parameters = 0
        /// Layer outputs of one image, as `maximumActivationsPerSample` counts them.
        var activations = 0
        /// Scalars of the weights an expanded conv keeps besides its saved factors (the
        /// collapsed kernel its online training mode runs), each with a gradient.
        var hiddenWeights = 0
    }

    /// Names, shapes and sizes of everything `build` would allocate, with every check `build`
    /// relies on (`LayerSpec.outputShape(input:)`); allocates nothing. Errors are
    /// `.invalidArgument` naming the layer.
    static func plan(_ spec: ModelSpec) throws -> Plan {
        var plan = Plan()
        var names = Set<String>()
        let output = try spec.layers.walk(input: spec.input) { layer, input, output in
            guard names.insert(layer.name).inserted else {
                throw ReparoError.invalidArgument("spec: layer name \"\(layer.name)\" is used twice")
            }
            plan.layers.append(LayerShape(name: layer.name, kind: layer.kind, input: input, output: output))
            for tensor in layer.tensors(input: input) {
                plan.tensors.append(tensor)
                plan.parameters += tensor.count   // each ≤ maximumParameters (checkWeight)
            }
            plan.hiddenWeights += layer.collapsedKernelCount(input: input)
            // Within SpecParser's ranges each term is below 2^43 (channels ≤ 2^16, sides below
            // 2^13), and both totals are checked after every layer: no overflow.
            plan.activations += output.count
            guard plan.parameters <= maximumParameters else {
                throw ReparoError.invalidArgument("spec: more than \(maximumParameters) parameters (at layer \(layer.name))")
            }
            guard plan.activations <= maximumActivationsPerSample else {
                throw ReparoError.invalidArgument("spec: activations exceed \(maximumActivationsPerSample) floats per sample (at layer \(layer.name))")
            }
        }
        guard output == FeatureShape(channels: spec.classes, height: 1, width: 1) else {
            throw ReparoError.invalidArgument("spec: the last layer gives \(output) but \"classes\" is \(spec.classes); end with a linear layer of \(spec.classes) outputs")
        }
        // An expanded conv also keeps its collapsed kernel [out, in, k, k]. Expansion (rate ≥ 1)
        // never makes it larger than the middle factor, but hidden widths narrower than the
        // layer would let a small file make the loader allocate far more than its tensors.
        guard plan.hiddenWeights <= plan.parameters else {
            throw ReparoError.invalidArgument("spec: the collapsed kernels of its expanded convs (\(plan.hiddenWeights) floats) outweigh all its tensors (\(plan.parameters) floats); a chain's widths must not be narrower than the layer it expands")
        }
        return plan
    }

    /// Refuses a weight of `factors` elements; returns its size.
    @discardableResult
    static func checkWeight(_ factors: [Int], layer: String) throws -> Int {
        var total = 1
        for factor in factors {
            let (product, overflow) = total.multipliedReportingOverflow(by: factor)
            guard !overflow, product <= maximumParameters else {
                throw ReparoError.invalidArgument("layer \"\(layer)\": weight \(factors) exceeds the limit of \(maximumParameters) parameters")
            }
            total = product
        }
        return total
    }

    /// The network of a spec, after `plan` has checked it.
    static func build(_ spec: ModelSpec) throws -> Sequential {
        _ = try plan(spec)
        return try buildList(spec.layers, name: "", input: spec.input)
    }

    private static func buildList(_ specs: [LayerSpec], name: String, input: FeatureShape) throws -> Sequential {
        var shape = input
        var layers: [Layer] = []
        for spec in specs {
            let layer = try buildLayer(spec, input: shape)
            layers.append(layer)
            shape = layer.outputShape
        }
        return Sequential(name: name, input: input, layers: layers)
    }

    /// One layer of a spec that `plan` accepted.
    private static func buildLayer(_ spec: LayerSpec, input: FeatureShape) throws -> Layer {
        switch spec.operation {
        case .conv(let weight, let window):
            guard let chain = weight.chain else {
                return try Conv2D(name: spec.name, input: input, outputChannels: weight.out, kernelSize: window.kernel,
                                  stride: window.stride, padding: window.padding, bias: weight.bias)
            }
            let first = try Conv2D(name: TensorName.factor(spec.name, 0), input: input, outputChannels: chain[0],
                                   kernelSize: 1, stride: 1, padding: 0, bias: false)
            let middle = try Conv2D(name: TensorName.factor(spec.name, 1), input: first.outputShape, outputChannels: chain[1],
                                    kernelSize: window.kernel, stride: window.stride, padding: window.padding, bias: false)
            let last = try Conv2D(name: TensorName.factor(spec.name, 2), input: middle.outputShape, outputChannels: weight.out,
                                  kernelSize: 1, stride: 1, padding: 0, bias: weight.bias)
            return try ExpandedChain(name: spec.name, input: input, factors: [first, middle, last])
        case .linear(let weight):
            guard let chain = weight.chain else {
                return try Linear(name: spec.name, input: input, outputFeatures: weight.out, bias: weight.bias)
            }
            let first = try Linear(name: TensorName.factor(spec.name, 0), input: input, outputFeatures: chain[0], bias: false)
            let middle = try Linear(name: TensorName.factor(spec.name, 1), input: first.outputShape, outputFeatures: chain[1], bias: false)
            let last = try Linear(name: TensorName.factor(spec.name, 2), input: middle.outputShape, outputFeatures: weight.out,
                                  bias: weight.bias)
            return try ExpandedChain(name: spec.name, input: input, factors: [first, middle, last])
        case .batchnorm:
            return try BatchNorm2D(name: spec.name, input: input)
        case .relu:
            return ReLU(name: spec.name, input: input)
        case .maxpool(let window):
            return MaxPool2D(name: spec.name, input: input, kernelSize: window.kernel, stride: window.stride,
                             padding: window.padding)
        case .avgpool(let window):
            return AvgPool2D(name: spec.name, input: input, kernelSize: window?.kernel, stride: window?.stride)
        case .flatten:
            return Flatten(name: spec.name, input: input)
        case .basicBlock(let main, let shortcut):
            let mainPath = try buildList(main, name: spec.name, input: input)
            let shortcutPath = try buildList(shortcut, name: spec.name + ".shortcut", input: input)
            return try BasicBlock(name: spec.name, input: input, main: mainPath, shortcut: shortcutPath)
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
            parameter.valueChanged()
        }
    }

    /// The given tensors in `plan` order, checked by name and shape against it before anything
    /// is allocated for them: every tensor present with its exact shape, none twice, none left
    /// over. Errors are `.format` naming `source`.
    static func match(_ tensors: [NamedTensor], to plan: Plan, source: String) throws -> [NamedTensor] {
        var byName: [String: NamedTensor] = [:]
        for tensor in tensors {
            guard byName[tensor.name] == nil else {
                throw ReparoError.format("\(source): tensor \(quoted(tensor.name)) appears twice")
            }
            byName[tensor.name] = tensor
        }
        var ordered: [NamedTensor] = []
        for needed in plan.tensors {
            guard let tensor = byName.removeValue(forKey: needed.name) else {
                throw ReparoError.format("\(source): tensor \"\(needed.name)\" is missing")
            }
            guard tensor.shape == needed.shape, tensor.values.count == needed.count else {
                throw ReparoError.format("\(source): tensor \"\(needed.name)\" has shape \(tensor.shape), the spec needs \(needed.shape)")
            }
            ordered.append(tensor)
        }
        if let extra = byName.keys.sorted().first {
            throw ReparoError.format("\(source): tensor \(quoted(extra)) is not part of the spec")
        }
        return ordered
    }

    /// A file's tensor name for a message, cut to 128 characters (a name may be megabytes long).
    private static func quoted(_ name: String) -> String {
        name.count > 128 ? "\"\(name.prefix(128))…\"" : "\"\(name)\""
    }

    /// Copies tensors that `match` ordered into the network built from the same plan.
    static func assign(_ tensors: [NamedTensor], to network: Layer) throws {
        let parameters = network.parameters
        guard parameters.count == tensors.count else {
            throw ReparoError.internalError("the network has \(parameters.count) tensors, the plan \(tensors.count)")
        }
        for (parameter, tensor) in zip(parameters, tensors) {
            guard parameter.name == tensor.name, parameter.shape == tensor.shape, parameter.count == tensor.values.count else {
                throw ReparoError.internalError("network tensor \(parameter.name) \(parameter.shape) differs from its plan \(tensor.name) \(tensor.shape)")
            }
            parameter.value.pointer.update(from: tensor.values.pointer, count: parameter.count)
            parameter.valueChanged()
        }
    }
}
