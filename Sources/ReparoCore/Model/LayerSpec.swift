/// One layer of a resolved spec: every size explicit, so the spec alone rebuilds the network
/// (the spec saved in a weights file is always resolved).
///
/// The structure is the one source of a network's geometry and names: `outputShape(input:)`
/// checks a layer and gives its output, `tensors(input:)` lists what it holds, and
/// `[LayerSpec].walk` visits a whole tree with the shapes. The builder, the plan behind
/// `reparo_spec_resolve`, pruning, expansion and collapse all read them.
public struct LayerSpec: Equatable, Sendable {
    public var name: String
    public var operation: Operation

    /// What a layer computes, with the sizes it needs.
    public enum Operation: Equatable, Sendable {
        case conv(WeightSpec, Window)
        case linear(WeightSpec)
        case batchnorm
        case relu
        /// Padding (−∞ cells, as PyTorch) at most half the window; stride 0 is never stored
        /// (the JSON form's default stride is the window).
        case maxpool(Window)
        /// No padding; nil: global average (the whole plane into [C, 1, 1]).
        case avgpool(Window?)
        case flatten
        /// A residual block: ReLU(main(x) + shortcut(x)); an empty shortcut is the identity.
        case basicBlock(main: [LayerSpec], shortcut: [LayerSpec])
    }

    /// The output width, bias and optional expansion chain of a conv or linear layer.
    public struct WeightSpec: Equatable, Sendable {
        /// Output channels (conv) or features (linear).
        public var out: Int
        public var bias: Bool
        /// Hidden widths [r·in, r·out] of an expanded chain; nil when compact.
        public var chain: [Int]?

        public init(out: Int, bias: Bool, chain: [Int]? = nil) {
            self.out = out
            self.bias = bias
            self.chain = chain
        }
    }

    /// The spec's type words (the JSON "type"), one per operation.
    public enum Kind: String, Sendable, CaseIterable {
        case conv, batchnorm, relu, maxpool, avgpool, flatten, linear
        case basicBlock = "basic_block"
    }

    public init(_ name: String, _ operation: Operation) {
        self.name = name
        self.operation = operation
    }

    public static func conv(_ name: String, out: Int, kernel: Int, stride: Int = 1, padding: Int = 0, bias: Bool = false) -> LayerSpec {
        LayerSpec(name, .conv(WeightSpec(out: out, bias: bias), Window(kernel: kernel, stride: stride, padding: padding)))
    }

    public static func linear(_ name: String, out: Int, bias: Bool = true) -> LayerSpec {
        LayerSpec(name, .linear(WeightSpec(out: out, bias: bias)))
    }

    /// A max- or average-pool; stride 0 means the window (as in the JSON form). An average
    /// pool without a window (kernel 0) is global. Padding is for max pools (`outputShape`
    /// refuses it on an average pool).
    public static func pool(_ kind: Kind, _ name: String, kernel: Int = 0, stride: Int = 0, padding: Int = 0) -> LayerSpec {
        let window = Window(kernel: kernel, stride: stride == 0 ? kernel : stride, padding: padding)
        return LayerSpec(name, kind == .maxpool ? .maxpool(window) : .avgpool(kernel > 0 ? window : nil))
    }

    public var kind: Kind {
        switch operation {
        case .conv: return .conv
        case .linear: return .linear
        case .batchnorm: return .batchnorm
        case .relu: return .relu
        case .maxpool: return .maxpool
        case .avgpool: return .avgpool
        case .flatten: return .flatten
        case .basicBlock: return .basicBlock
        }
    }

    /// The weight of a conv or linear layer; nil for the others. Setting it on another layer
    /// does nothing.
    public var weight: WeightSpec? {
        get {
            switch operation {
            case .conv(let weight, _), .linear(let weight): return weight
            default: return nil
            }
        }
        set {
            guard let newValue else { return }
            switch operation {
            case .conv(_, let window): operation = .conv(newValue, window)
            case .linear: operation = .linear(newValue)
            default: break
            }
        }
    }

    /// Output width of a conv or linear layer, 0 for the others.
    public var out: Int { weight?.out ?? 0 }
    /// A block's main path and shortcut; empty for other layers.
    public var main: [LayerSpec] {
        if case .basicBlock(let main, _) = operation { return main }
        return []
    }
    public var shortcut: [LayerSpec] {
        if case .basicBlock(_, let shortcut) = operation { return shortcut }
        return []
    }

    /// JSON form (what is saved in a weights file's metadata).
    public var json: JSONValue {
        var object: [String: JSONValue] = ["type": .string(kind.rawValue), "name": .string(name)]
        switch operation {
        case .conv(let weight, let window):
            object["out"] = .int(weight.out); object["kernel"] = .int(window.kernel); object["stride"] = .int(window.stride)
            object["padding"] = .int(window.padding); object["bias"] = .bool(weight.bias)
            if let chain = weight.chain { object["chain"] = .ints(chain) }
        case .linear(let weight):
            object["out"] = .int(weight.out); object["bias"] = .bool(weight.bias)
            if let chain = weight.chain { object["chain"] = .ints(chain) }
        case .maxpool(let window), .avgpool(.some(let window)):
            object["kernel"] = .int(window.kernel); object["stride"] = .int(window.stride)
            if window.padding != 0 { object["padding"] = .int(window.padding) }   // older files stay byte-identical
        case .basicBlock(let main, let shortcut):
            object["main"] = .array(main.map(\.json))
            object["shortcut"] = .array(shortcut.map(\.json))
        case .avgpool(nil), .batchnorm, .relu, .flatten:
            break
        }
        return JSONValue(object)
    }

    /// Every conv/linear spec in this layer (recursively), in order.
    public var weightedLayers: [LayerSpec] {
        switch operation {
        case .conv, .linear: return [self]
        case .basicBlock(let main, let shortcut): return main.flatMap(\.weightedLayers) + shortcut.flatMap(\.weightedLayers)
        default: return []
        }
    }

    // MARK: Geometry and tensors

    /// The output for `input`, with every check building the layer relies on. Errors are
    /// `.invalidArgument` naming the layer.
    public func outputShape(input: FeatureShape) throws -> FeatureShape {
        let where_ = "layer \"\(name)\""
        switch operation {
        case .conv(let weight, let window):
            guard window.kernel >= 1, window.stride >= 1, window.padding >= 0, weight.out >= 1 else {
                throw ReparoError.invalidArgument("\(where_): out, kernel and stride must be at least 1, padding at least 0")
            }
            guard window.fits(input) else {
                throw ReparoError.invalidArgument("\(where_): kernel \(window.kernel) is larger than the padded input \(input)")
            }
            guard window.padding < window.kernel else {
                throw ReparoError.invalidArgument("\(where_): padding \(window.padding) must be smaller than the kernel \(window.kernel)")
            }
            try checkWeights(weight, inputs: input.channels, taps: window.kernel * window.kernel)
            return window.output(input, channels: weight.out)
        case .linear(let weight):
            guard weight.out >= 1 else { throw ReparoError.invalidArgument("\(where_): out must be at least 1") }
            try checkWeights(weight, inputs: input.count, taps: nil)
            return FeatureShape(channels: weight.out, height: 1, width: 1)
        case .batchnorm, .relu:
            return input
        case .flatten:
            return FeatureShape(channels: input.count, height: 1, width: 1)
        case .avgpool(nil):
            return FeatureShape(channels: input.channels, height: 1, width: 1)
        case .maxpool(let window), .avgpool(.some(let window)):
            let kind = self.kind == .maxpool ? "max-pool" : "avg-pool"
            guard window.kernel >= 1, window.stride >= 1 else {
                throw ReparoError.invalidArgument("\(where_): \(kind) window and stride must be at least 1")
            }
            guard self.kind == .maxpool || window.padding == 0 else {
                throw ReparoError.invalidArgument("\(where_): avg-pool has no padding (got \(window.padding))")
            }
            // PyTorch's bound: then every window holds a real cell, so −∞ never comes out.
            guard window.padding >= 0, 2 * window.padding <= window.kernel else {
                throw ReparoError.invalidArgument(
                    "\(where_): max-pool padding \(window.padding) must be between 0 and half the window \(window.kernel)")
            }
            guard window.fits(input) else {
                throw ReparoError.invalidArgument("\(where_): \(kind) window \(window.kernel) is larger than the input \(input)")
            }
            return window.output(input, channels: input.channels)
        case .basicBlock(let main, let shortcut):
            let mainOutput = try main.outputShape(input: input)
            let shortcutOutput = try shortcut.outputShape(input: input)
            guard mainOutput == shortcutOutput else {
                throw ReparoError.invalidArgument("\(where_): main path gives \(mainOutput) but the shortcut gives \(shortcutOutput)")
            }
            return mainOutput
        }
    }

    /// Refuses a chain that is not two widths of at least 1 and any weight above the size
    /// limit. `taps`: k·k for a conv, nil for a linear layer.
    private func checkWeights(_ weight: WeightSpec, inputs: Int, taps: Int?) throws {
        let kernel = taps.map { [$0] } ?? []
        guard let chain = weight.chain else {
            try NetworkBuilder.checkWeight([weight.out, inputs] + kernel, layer: name)
            return
        }
        guard chain.count == 2, chain.allSatisfy({ $0 >= 1 }) else {
            throw ReparoError.invalidArgument("layer \"\(name)\": chain must be two widths of at least 1, got \(chain)")
        }
        try NetworkBuilder.checkWeight([chain[0], inputs], layer: name)
        try NetworkBuilder.checkWeight([chain[1], chain[0]] + kernel, layer: name)
        try NetworkBuilder.checkWeight([weight.out, chain[1]], layer: name)
        if taps != nil { try NetworkBuilder.checkWeight([weight.out, inputs] + kernel, layer: name) }
    }

    /// The tensors this layer itself holds (a block's are its children's), in the order its
    /// `Layer` lists its parameters, for an `input` that `outputShape(input:)` accepted.
    public func tensors(input: FeatureShape) -> [TensorShape] {
        switch operation {
        case .conv(let weight, let window):
            return Self.weightTensors(name, weight, inputs: input.channels, kernel: [window.kernel, window.kernel])
        case .linear(let weight):
            return Self.weightTensors(name, weight, inputs: input.count, kernel: [])
        case .batchnorm:
            return TensorName.batchNorm(name).map { TensorShape(name: $0, shape: [input.channels]) }
        case .relu, .flatten, .maxpool, .avgpool, .basicBlock:
            return []
        }
    }

    /// A weight [out, inputs, kernel…] and its bias, or the chain that replaces them:
    /// F₀ [h₁, inputs, 1…], F₁ [h₂, h₁, kernel…], F₂ [out, h₂, 1…] with the bias on F₂.
    private static func weightTensors(_ name: String, _ weight: WeightSpec, inputs: Int, kernel: [Int]) -> [TensorShape] {
        var tensors: [TensorShape] = []
        var last = name
        if let chain = weight.chain, chain.count == 2 {
            let unit = kernel.map { _ in 1 }
            tensors.append(TensorShape(name: TensorName.weight(TensorName.factor(name, 0)), shape: [chain[0], inputs] + unit))
            tensors.append(TensorShape(name: TensorName.weight(TensorName.factor(name, 1)), shape: [chain[1], chain[0]] + kernel))
            last = TensorName.factor(name, 2)
            tensors.append(TensorShape(name: TensorName.weight(last), shape: [weight.out, chain[1]] + unit))
        } else {
            tensors.append(TensorShape(name: TensorName.weight(name), shape: [weight.out, inputs] + kernel))
        }
        if weight.bias { tensors.append(TensorShape(name: TensorName.bias(last), shape: [weight.out])) }
        return tensors
    }

    /// Scalars of the compact kernel [out, in, k, k] an expanded conv keeps besides its factors
    /// (its online training mode runs it); 0 for every other layer.
    public func collapsedKernelCount(input: FeatureShape) -> Int {
        guard case .conv(let weight, let window) = operation, weight.chain != nil else { return 0 }
        return weight.out * input.channels * window.kernel * window.kernel
    }
}

extension Array where Element == LayerSpec {
    /// The output of the layers in order; throws what the first failing layer throws.
    public func outputShape(input: FeatureShape) throws -> FeatureShape {
        try reduce(input) { try $1.outputShape(input: $0) }
    }

    /// Visits every layer depth-first, pre-order (a block, then its main path, then its
    /// shortcut), with the shapes it maps between; returns the list's output.
    @discardableResult
    public func walk(input: FeatureShape, _ visit: (LayerSpec, _ input: FeatureShape, _ output: FeatureShape) throws -> Void) throws -> FeatureShape {
        var shape = input
        for layer in self {
            let output = try layer.outputShape(input: shape)
            try visit(layer, shape, output)
            if case .basicBlock(let main, let shortcut) = layer.operation {
                try main.walk(input: shape, visit)
                try shortcut.walk(input: shape, visit)
            }
            shape = output
        }
        return shape
    }

    /// Visits every layer list (this one, then each block's main path and shortcut, depth-first),
    /// allowing edits of the list itself (removing a layer, say).
    mutating func rewriteLists(_ body: (inout [LayerSpec]) throws -> Void) rethrows {
        try body(&self)
        for index in indices {
            guard case .basicBlock(var main, var shortcut) = self[index].operation else { continue }
            try main.rewriteLists(body)
            try shortcut.rewriteLists(body)
            self[index].operation = .basicBlock(main: main, shortcut: shortcut)
        }
    }

    /// Visits every layer, depth-first pre-order (a block before its main path and its
    /// shortcut, the order `walk` visits), allowing edits.
    mutating func rewriteAll(_ body: (inout LayerSpec) throws -> Void) rethrows {
        for index in indices {
            try body(&self[index])
            guard case .basicBlock(var main, var shortcut) = self[index].operation else { continue }
            try main.rewriteAll(body)
            try shortcut.rewriteAll(body)
            self[index].operation = .basicBlock(main: main, shortcut: shortcut)
        }
    }
}
