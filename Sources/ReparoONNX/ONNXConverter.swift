import ReparoCore

/// Maps an indexed ONNX graph onto Reparo's layer tree in one pass over the nodes in file
/// order: each node is visited once, nothing recurses over the graph, and each activation's
/// layer list is moved from value to value, never copied.
///
/// Every activation value is the end of a *path*: the layers from a start (the image input, or
/// a fork where one value feeds two branches) to that value. A layer op appends to its input's
/// path; a value read by two nodes becomes a fork, where each reader starts an empty path;
/// Add(a, b) followed by Relu closes a fork whose two branches end at a and b into a basic
/// block (main: the longer branch; shortcut: the other, empty for the identity). Values that
/// are not activations (initializers, Constants, shape arithmetic) are `ONNXStaticValue`s,
/// evaluated as they come.
struct ONNXConverter {
    /// Residual blocks inside residual blocks, at most this deep.
    static let maximumNesting = 4
    /// Largest stride, kernel side or pad read from an attribute (keeps the arithmetic small).
    static let maximumSide: Int64 = 1 << 16

    /// The layers from `start` (a fork value; nil for the image input) to one value.
    struct Path {
        var start: String?
        var depth: Int
        var layers: [LayerSpec] = []
        var shape: FeatureShape
        /// The value is [N, features] (after Flatten, Reshape or Gemm): no conv or pool may follow.
        var flat: Bool
    }

    /// A value feeding two branches: the path that ends at it, and how many readers still
    /// have to start their branch.
    struct Fork {
        var path: Path
        var remaining: Int
    }

    private let graph: ONNXGraph
    private var statics: [String: ONNXStaticValue] = [:]
    private var paths: [String: Path] = [:]
    private var forks: [String: Fork] = [:]
    /// Shape and flatness of every activation produced so far (Shape nodes read them).
    private var activations: [String: (shape: FeatureShape, flat: Bool)] = [:]
    private var producers: [String: Int] = [:]
    /// Nodes already converted with the node before them (the Relu of a block, a MatMul's Add).
    private var done: Set<Int> = []
    private var namer: ONNXLayerNamer
    private(set) var tensors: [NamedTensor] = []
    /// Floats the model's tensors may still take: twice what the file's tensors hold, so a
    /// small file that reads one big initializer from many nodes cannot make us allocate
    /// gigabytes.
    private var floatBudget: Int

    init(graph: ONNXGraph, input: FeatureShape) {
        self.graph = graph
        namer = ONNXLayerNamer(reservedNames: [graph.inputName, graph.outputName], verbatim: graph.fromReparo)
        var budget = 1 << 16
        for tensor in graph.initializers {
            statics[tensor.name] = .tensor(tensor, name: tensor.name)
            budget += 2 * (tensor.rawData.count / 4 + tensor.floatData.count)
        }
        floatBudget = budget
        paths[graph.inputName] = Path(start: nil, depth: 0, shape: input, flat: false)
        activations[graph.inputName] = (input, false)
    }

    /// The layers from the input to the output, and the output's shape.
    mutating func convert() throws -> (layers: [LayerSpec], output: FeatureShape) {
        for index in graph.nodes.indices where !done.contains(index) {
            try visit(index)
        }
        let output = graph.outputName
        guard let path = paths.removeValue(forKey: output) else {
            if statics[output] != nil { throw ONNXImportError.unsupported("the graph output \"\(ONNXImportError.clipped(output))\" does not depend on the input") }
            throw ONNXImportError.malformed("no node produces the graph output \"\(ONNXImportError.clipped(output))\"")
        }
        if let (value, _) = forks.first {
            throw ONNXImportError.unsupported("\(describeProducer(value)) gives \"\(ONNXImportError.clipped(value))\", which feeds two branches that do not meet in an Add")
        }
        if let (value, _) = paths.first {
            throw ONNXImportError.unsupported("\(describeProducer(value)) gives \"\(ONNXImportError.clipped(value))\", which is neither used nor the graph output")
        }
        guard !path.layers.isEmpty else { throw ONNXImportError.unsupported("the graph has no layers") }
        return (path.layers, path.shape)
    }

    private func describeProducer(_ value: String) -> String {
        guard let index = producers[value] else { return "the graph input" }
        return ONNXImportError.describe(graph.nodes[index], index)
    }

    // MARK: Nodes

    private mutating func visit(_ index: Int) throws {
        let node = graph.nodes[index]
        let where_ = ONNXImportError.describe(node, index)
        guard node.domain.isEmpty || node.domain == "ai.onnx" else {
            throw ONNXImportError.unsupported("\(where_): domain \"\(ONNXImportError.clipped(node.domain))\"; only the default ONNX domain is imported")
        }
        for name in node.input where !name.isEmpty {
            guard statics[name] != nil || activations[name] != nil else {
                throw ONNXImportError.malformed("\(where_) reads \"\(ONNXImportError.clipped(name))\" before any node gives it (nodes must be in topological order)")
            }
        }
        try claimOutputs(node, index)
        var attributes = try ONNXAttributes(node, index: index)
        if node.input.contains(where: { !$0.isEmpty && activations[$0] != nil }) {
            try convertLayer(node, &attributes)
        } else {
            try evaluate(node, &attributes)
        }
        try attributes.finish()
    }

    /// Checks that `node`'s outputs are new values (SSA) and records who gives them.
    private mutating func claimOutputs(_ node: Onnx_NodeProto, _ index: Int) throws {
        guard !node.output.isEmpty, !node.output[0].isEmpty else {
            throw ONNXImportError.malformed("\(ONNXImportError.describe(node, index)) has no output")
        }
        for name in node.output where !name.isEmpty {
            guard statics[name] == nil, activations[name] == nil, producers[name] == nil else {
                throw ONNXImportError.malformed("\(ONNXImportError.describe(node, index)) gives \"\(ONNXImportError.clipped(name))\", which another node or an initializer already gives")
            }
            producers[name] = index
        }
    }

    /// Refuses a read of an optional extra output (MaxPool's indices, BatchNormalization's
    /// training statistics, Dropout's mask): only the first output is imported.
    private func checkExtraOutputs(_ node: Onnx_NodeProto, _ attributes: ONNXAttributes) throws {
        for name in node.output.dropFirst() where !name.isEmpty {
            guard graph.consumers[name] == nil, name != graph.outputName else {
                throw attributes.unsupported("its output \"\(ONNXImportError.clipped(name))\" is used; only the first output is imported")
            }
        }
    }

    private func inputs(_ node: Onnx_NodeProto, _ range: ClosedRange<Int>, _ attributes: ONNXAttributes) throws {
        guard range.contains(node.input.count) else {
            throw attributes.malformed("\(node.input.count) inputs, expected \(range.lowerBound == range.upperBound ? "\(range.lowerBound)" : "\(range.lowerBound) to \(range.upperBound)")")
        }
    }

    /// An op that reads an activation: a layer, a pass-through, a block's Add, or Shape.
    private mutating func convertLayer(_ node: Onnx_NodeProto, _ attributes: inout ONNXAttributes) throws {
        let index = attributes.index
        let output = node.output[0]
        if node.opType == "Add" {
            return try convertAdd(node, &attributes)
        }
        if node.opType == "Shape" {
            return try evaluateShape(node, &attributes)
        }
        let data = node.input[0]
        guard activations[data] != nil else {
            throw attributes.unsupported("its first input is a constant and a later one the activation")
        }
        for name in node.input.dropFirst() where !name.isEmpty && activations[name] != nil {
            throw attributes.unsupported("input \"\(ONNXImportError.clipped(name))\" is an activation where Reparo needs a weight (an initializer or a Constant)")
        }
        var path = try take(data, attributes)
        switch node.opType {
        case "Conv":
            try inputs(node, 2 ... 3, attributes)
            guard !path.flat else { throw attributes.malformed("a Conv on a 2-D value") }
            let (dims, weight) = try floats(node.input[1], attributes)
            guard dims.count == 4 else { throw attributes.unsupported("weight of rank \(dims.count); only 2-D convolutions are imported") }
            guard dims[2] == dims[3] else { throw attributes.unsupported("kernel \(dims[2])×\(dims[3]); only square kernels are imported") }
            let group = try attributes.int("group", default: 1)
            guard group == 1 else { throw attributes.unsupported("group \(group) (grouped or depthwise convolution) is not supported") }
            guard dims[1] == path.shape.channels else {
                throw attributes.malformed("weight \(dims) for an input of \(path.shape.channels) channels")
            }
            if let kernel = try attributes.ints("kernel_shape"), kernel != [Int64(dims[2]), Int64(dims[3])] {
                throw attributes.malformed("kernel_shape \(kernel) does not match the weight \(dims)")
            }
            let window = try self.window(&attributes, kernel: dims[2], input: path.shape)
            var bias: FloatBuffer?
            if node.input.count == 3, !node.input[2].isEmpty {
                let (biasDims, values) = try floats(node.input[2], attributes)
                guard biasDims == [dims[0]] else { throw attributes.malformed("bias \(biasDims) for \(dims[0]) output channels") }
                bias = values
            }
            let name = namer.name(node, index: index, weight: node.input[1])
            try append(LayerSpec(name, .conv(.init(out: dims[0], bias: bias != nil), window)), to: &path, attributes)
            tensors.append(NamedTensor(name: TensorName.weight(name), shape: dims, values: weight))
            if let bias { tensors.append(NamedTensor(name: TensorName.bias(name), shape: [dims[0]], values: bias)) }
        case "BatchNormalization":
            try inputs(node, 5 ... 5, attributes)
            try checkExtraOutputs(node, attributes)
            let epsilon = try attributes.float("epsilon", default: 1e-5)
            attributes.ignore("momentum")
            guard try attributes.int("training_mode", default: 0) == 0 else {
                throw attributes.unsupported("training_mode 1; export the model in eval mode")
            }
            guard try attributes.int("spatial", default: 1) == 1 else { throw attributes.unsupported("spatial 0") }
            guard epsilon.isFinite, epsilon >= 0 else { throw attributes.malformed("epsilon \(epsilon)") }
            let channels = path.shape.channels
            var values: [FloatBuffer] = []
            for (position, role) in ["scale", "B", "mean", "var"].enumerated() {
                let (dims, buffer) = try floats(node.input[position + 1], attributes)
                guard dims == [channels] else { throw attributes.malformed("\(role) \(dims) for \(channels) channels") }
                values.append(buffer)
            }
            // Reparo's ε is fixed (BatchNorm2D.epsilon): var + ε − ε_Reparo gives the same
            // 1/√(var + ε) (exact in real arithmetic, one rounding in Float).
            if epsilon != BatchNorm2D.epsilon {
                let shift = Double(epsilon) - Double(BatchNorm2D.epsilon)
                let variance = values[3].pointer
                for channel in 0 ..< channels {
                    let adjusted = Float(Double(variance[channel]) + shift)
                    guard adjusted.isFinite, adjusted > 0 else {
                        throw attributes.unsupported("epsilon \(epsilon) with variance \(variance[channel]) (channel \(channel)) leaves no positive variance for Reparo's fixed ε \(BatchNorm2D.epsilon)")
                    }
                    variance[channel] = adjusted
                }
            }
            let name = namer.name(node, index: index, weight: node.input[1])
            try append(LayerSpec(name, .batchnorm), to: &path, attributes)
            for (tensorName, buffer) in zip(TensorName.batchNorm(name), values) {
                tensors.append(NamedTensor(name: tensorName, shape: [channels], values: buffer))
            }
        case "Relu":
            try inputs(node, 1 ... 1, attributes)
            try append(LayerSpec(namer.name(node, index: index), .relu), to: &path, attributes)
        case "MaxPool", "AveragePool":
            try inputs(node, 1 ... 1, attributes)
            try checkExtraOutputs(node, attributes)
            guard !path.flat else { throw attributes.malformed("a pool on a 2-D value") }
            guard let kernel = try attributes.ints("kernel_shape"), kernel.count == 2 else {
                throw attributes.malformed("kernel_shape must be two values")
            }
            guard kernel[0] == kernel[1], (1 ... Self.maximumSide).contains(kernel[0]) else {
                throw attributes.unsupported("kernel_shape \(kernel); only square windows are imported")
            }
            guard try attributes.int("ceil_mode", default: 0) == 0 else { throw attributes.unsupported("ceil_mode 1 is not supported") }
            let isMax = node.opType == "MaxPool"
            if isMax {
                guard try attributes.int("storage_order", default: 0) == 0 else { throw attributes.unsupported("storage_order 1 is not supported") }
            } else {
                attributes.ignore("count_include_pad")   // no pads: nothing to include
            }
            let window = try self.window(&attributes, kernel: Int(kernel[0]), input: path.shape)
            guard isMax || window.padding == 0 else {
                throw attributes.unsupported("AveragePool with pads is not supported")
            }
            let name = namer.name(node, index: index)
            try append(LayerSpec(name, isMax ? .maxpool(window) : .avgpool(window)), to: &path, attributes)
        case "GlobalAveragePool":
            try inputs(node, 1 ... 1, attributes)
            guard !path.flat else { throw attributes.malformed("a pool on a 2-D value") }
            try append(LayerSpec(namer.name(node, index: index), .avgpool(nil)), to: &path, attributes)
        case "ReduceMean":
            try inputs(node, 1 ... 2, attributes)
            guard !path.flat else { throw attributes.unsupported("ReduceMean of a 2-D value") }
            var axes = try attributes.ints("axes")
            if node.input.count == 2, !node.input[1].isEmpty {
                guard axes == nil else { throw attributes.malformed("axes given twice") }
                axes = try integers(node.input[1], attributes).values
            }
            let keep = try attributes.int("keepdims", default: 1)
            guard try attributes.int("noop_with_empty_axes", default: 0) == 0 else {
                throw attributes.unsupported("noop_with_empty_axes 1")
            }
            guard let axes, Set(axes.map { $0 < 0 ? $0 + 4 : $0 }) == [2, 3], axes.count == 2 else {
                throw attributes.unsupported("ReduceMean over axes \(axes.map { "\($0)" } ?? "all"); only the mean over H and W (global average pool) is imported")
            }
            try append(LayerSpec(namer.name(node, index: index), .avgpool(nil)), to: &path, attributes)
            if keep == 0 { path.flat = true }
        case "Flatten":
            try inputs(node, 1 ... 1, attributes)
            let axis = try attributes.int("axis", default: 1)
            let rank: Int64 = path.flat ? 2 : 4
            guard (axis < 0 ? axis + rank : axis) == 1 else {
                throw attributes.unsupported("axis \(axis); only Flatten to [N, features] (axis 1) is imported")
            }
            if !path.flat && !isExportersImplicitFlatten(node) {
                try append(LayerSpec(namer.name(node, index: index), .flatten), to: &path, attributes)
            }
            path.flat = true
        case "Reshape":
            try inputs(node, 2 ... 2, attributes)
            let allowZero = try attributes.int("allowzero", default: 0)
            try checkReshape(integers(node.input[1], attributes), allowZero: allowZero != 0, path: path, attributes)
            if !path.flat {
                try append(LayerSpec(namer.name(node, index: index), .flatten), to: &path, attributes)
            }
            path.flat = true
        case "Gemm":
            try inputs(node, 2 ... 3, attributes)
            guard try attributes.float("alpha", default: 1) == 1, try attributes.int("transA", default: 0) == 0 else {
                throw attributes.unsupported("alpha ≠ 1 or transA 1 is not supported")
            }
            let beta = try attributes.float("beta", default: 1)
            let transposed = try attributes.int("transB", default: 0)
            guard transposed == 0 || transposed == 1 else { throw attributes.malformed("transB \(transposed)") }
            let bias = node.input.count == 3 && !node.input[2].isEmpty ? node.input[2] : nil
            guard bias == nil || beta == 1 else { throw attributes.unsupported("beta \(beta) is not supported") }
            try appendLinear(node, weight: node.input[1], transposed: transposed == 1, bias: bias, to: &path, attributes)
        case "MatMul":
            try inputs(node, 2 ... 2, attributes)
            let add = biasAdd(after: node)
            try appendLinear(node, weight: node.input[1], transposed: false, bias: add?.bias, to: &path, attributes)
            if let add {
                done.insert(add.index)
                try claimOutputs(graph.nodes[add.index], add.index)
                return put(path, at: graph.nodes[add.index].output[0])
            }
        case "Identity":
            try inputs(node, 1 ... 1, attributes)
        case "Dropout":
            try inputs(node, 1 ... 3, attributes)
            try checkExtraOutputs(node, attributes)
            attributes.ignore("ratio", "seed")
            if node.input.count == 3, !node.input[2].isEmpty {
                guard try integers(node.input[2], attributes).values == [0] else {
                    throw attributes.unsupported("training_mode true; export the model in eval mode")
                }
            }
        default:
            throw attributes.unsupported("op \"\(ONNXImportError.clipped(node.opType))\" is not supported (Reparo imports Conv, BatchNormalization, Relu, MaxPool, AveragePool, GlobalAveragePool, ReduceMean over H and W, Flatten, Reshape to [N, features], Gemm, MatMul (+ Add of a bias), Add + Relu of two branches, Identity, Dropout)")
        }
        put(path, at: output)
    }

    private mutating func put(_ path: Path, at value: String) {
        paths[value] = path
        activations[value] = (path.shape, path.flat)
    }

    /// Appends `layer`, checking it on the path's shape. Sides stay below 2^16 and channels
    /// below 2^20, so no element count can overflow (the builder's limits are far smaller).
    private func append(_ layer: LayerSpec, to path: inout Path, _ attributes: ONNXAttributes) throws {
        let output: FeatureShape
        do {
            output = try layer.outputShape(input: path.shape)
        } catch let error as ReparoError {
            throw attributes.malformed(error.message)
        }
        guard output.channels <= 1 << 20, output.height <= 1 << 16, output.width <= 1 << 16 else {
            throw attributes.unsupported("its output \(output) is far beyond Reparo's activation limits")
        }
        path.shape = output
        path.layers.append(layer)
    }

    /// The path ending at `value`, for its reader `attributes.node`: moved out when the node
    /// is its only reader; at a fork (two readers), an empty branch starting there.
    private mutating func take(_ value: String, _ attributes: ONNXAttributes) throws -> Path {
        let readers = graph.dataReaders[value] ?? 0
        if readers <= 1 {
            guard let path = paths.removeValue(forKey: value) else {
                throw attributes.malformed("\"\(ONNXImportError.clipped(value))\" is read more often than counted")
            }
            return path
        }
        guard readers == 2, value != graph.outputName else {
            throw attributes.unsupported("\"\(ONNXImportError.clipped(value))\" feeds \(readers) readers (the graph output counts as one); a value may feed at most two, the branches of a residual block")
        }
        var fork: Fork
        if let existing = forks[value] {
            fork = existing
        } else {
            guard let path = paths.removeValue(forKey: value) else {
                throw attributes.malformed("\"\(ONNXImportError.clipped(value))\" is read more often than counted")
            }
            fork = Fork(path: path, remaining: 2)
        }
        guard fork.remaining > 0 else { throw attributes.malformed("\"\(ONNXImportError.clipped(value))\" is read more often than counted") }
        guard fork.path.depth < Self.maximumNesting else {
            throw attributes.unsupported("residual branches nested more than \(Self.maximumNesting) deep")
        }
        fork.remaining -= 1
        forks[value] = fork
        return Path(start: value, depth: fork.path.depth + 1, shape: fork.path.shape, flat: fork.path.flat)
    }

    // MARK: Residual blocks

    /// Add(a, b) + Relu → basic block: a and b end the two branches of one fork.
    private mutating func convertAdd(_ node: Onnx_NodeProto, _ attributes: inout ONNXAttributes) throws {
        let index = attributes.index
        try inputs(node, 2 ... 2, attributes)
        let (first, second) = (node.input[0], node.input[1])
        guard activations[first] != nil, activations[second] != nil else {
            throw attributes.unsupported("Add of an activation and a constant is imported only as the bias after MatMul")
        }
        guard first != second else { throw attributes.unsupported("Add of a value to itself") }
        let output = node.output[0]
        guard graph.dataReaders[output] == 1, let readers = graph.consumers[output], readers.count == 1,
              let reluIndex = readers.first, graph.nodes[reluIndex].opType == "Relu",
              graph.nodes[reluIndex].domain.isEmpty || graph.nodes[reluIndex].domain == "ai.onnx" else {
            throw attributes.unsupported("an Add of two branches must be followed by a Relu, its only reader (a residual block ReLU(main + shortcut))")
        }
        let relu = graph.nodes[reluIndex]
        try inputs(relu, 1 ... 1, try ONNXAttributes(relu, index: reluIndex))
        try ONNXAttributes(relu, index: reluIndex).finish()
        let a = try take(first, attributes)
        let b = try take(second, attributes)
        guard let start = a.start, a.start == b.start, let fork = forks[start], fork.remaining == 0 else {
            throw attributes.unsupported("the Add does not join the two branches of one value (only residual blocks, whose branches start at one value and meet at the Add, are imported)")
        }
        forks[start] = nil
        guard a.flat == fork.path.flat, b.flat == fork.path.flat else {
            throw attributes.unsupported("a branch flattens its value")
        }
        let (main, shortcut) = b.layers.count > a.layers.count ? (b, a) : (a, b)
        done.insert(reluIndex)
        try claimOutputs(relu, reluIndex)
        var path = fork.path
        let name = namer.blockName(add: node, addIndex: index, relu: relu)
        try append(LayerSpec(name, .basicBlock(main: main.layers, shortcut: shortcut.layers)), to: &path, attributes)
        put(path, at: relu.output[0])
    }

    // MARK: Linear layers

    /// MatMul's only reader, when it is an Add (no attributes) of a FLOAT initializer or
    /// Constant: its index and the bias value's name.
    private func biasAdd(after node: Onnx_NodeProto) -> (index: Int, bias: String)? {
        let output = node.output[0]
        guard graph.dataReaders[output] == 1, let readers = graph.consumers[output], readers.count == 1,
              let add = readers.first else { return nil }
        let candidate = graph.nodes[add]
        guard candidate.opType == "Add", candidate.domain.isEmpty || candidate.domain == "ai.onnx",
              candidate.input.count == 2, candidate.attribute.isEmpty, candidate.output.count == 1,
              !candidate.output[0].isEmpty else { return nil }
        let bias = candidate.input[0] == output ? candidate.input[1] : candidate.input[0]
        guard case .tensor? = statics[bias] else { return nil }
        return (add, bias)
    }

    /// A linear layer from a weight [out, in] (`transposed`, Gemm's transB 1) or [in, out].
    private mutating func appendLinear(_ node: Onnx_NodeProto, weight: String, transposed: Bool, bias: String?,
                                       to path: inout Path, _ attributes: ONNXAttributes) throws {
        let (dims, values) = try floats(weight, attributes)
        guard dims.count == 2 else { throw attributes.malformed("weight \(dims) is not a matrix") }
        let (out, inputs) = transposed ? (dims[0], dims[1]) : (dims[1], dims[0])
        guard inputs == path.shape.count else {
            throw attributes.malformed("weight \(dims) for \(path.shape.count) input features")
        }
        var weightValues = values
        if !transposed {
            // Reparo keeps [out, in]; ONNX's B here is [in, out].
            weightValues = try FloatBuffer(count: values.count)
            try charge(values.count, attributes)
            for row in 0 ..< inputs {
                for column in 0 ..< out {
                    weightValues.pointer[column * inputs + row] = values.pointer[row * out + column]
                }
            }
        }
        var biasValues: FloatBuffer?
        if let bias {
            let (biasDims, values) = try floats(bias, attributes)
            guard biasDims == [out] || biasDims == [1, out] else { throw attributes.malformed("bias \(biasDims) for \(out) outputs") }
            biasValues = values
        }
        let name = namer.name(node, index: attributes.index, weight: weight)
        try append(LayerSpec(name, .linear(.init(out: out, bias: biasValues != nil))), to: &path, attributes)
        path.flat = true
        tensors.append(NamedTensor(name: TensorName.weight(name), shape: [out, inputs], values: weightValues))
        if let biasValues { tensors.append(NamedTensor(name: TensorName.bias(name), shape: [out], values: biasValues)) }
    }

    // MARK: Windows and shapes

    /// Stride and symmetric padding of a Conv or pool (strides, pads, auto_pad, dilations).
    private func window(_ attributes: inout ONNXAttributes, kernel: Int, input: FeatureShape) throws -> Window {
        let strides = try attributes.ints("strides") ?? [1, 1]
        guard strides.count == 2 else { throw attributes.malformed("strides \(strides) must be two values") }
        guard strides[0] == strides[1], (1 ... Self.maximumSide).contains(strides[0]) else {
            throw attributes.unsupported("strides \(strides); only equal strides are imported")
        }
        if let dilations = try attributes.ints("dilations"), dilations.contains(where: { $0 != 1 }) {
            throw attributes.unsupported("dilations \(dilations); only dilation 1 is imported")
        }
        let stride = Int(strides[0])
        let pads = try attributes.ints("pads")
        let autoPad = try attributes.string("auto_pad", default: "NOTSET")
        var padding = 0
        switch autoPad {
        case "NOTSET":
            let values = pads ?? [0, 0, 0, 0]
            guard values.count == 4 else { throw attributes.malformed("pads \(values) must be four values") }
            guard values.allSatisfy({ $0 == values[0] }) else {
                throw attributes.unsupported("asymmetric pads \(values); only equal pads on all sides are imported")
            }
            guard (0 ... Self.maximumSide).contains(values[0]) else { throw attributes.malformed("pads \(values)") }
            padding = Int(values[0])
        case "VALID":
            guard pads == nil || pads?.allSatisfy({ $0 == 0 }) == true else { throw attributes.malformed("pads with auto_pad VALID") }
        case "SAME_UPPER", "SAME_LOWER":
            guard pads == nil else { throw attributes.malformed("pads with auto_pad \(autoPad)") }
            // Output ⌈in/stride⌉; the total pad split evenly is a symmetric pad.
            let totals = [input.height, input.width].map { side in
                max(((side + stride - 1) / stride - 1) * stride + kernel - side, 0)
            }
            guard totals[0] == totals[1], totals[0] % 2 == 0 else {
                throw attributes.unsupported("auto_pad \(autoPad) pads \(totals) in total on \(input): not the same even pad on every side")
            }
            padding = totals[0] / 2
        default:
            throw attributes.malformed("auto_pad \"\(ONNXImportError.clipped(autoPad))\"")
        }
        return Window(kernel: kernel, stride: stride, padding: padding)
    }

    /// Accepts a Reshape target that is [N, features] for an input of `path.shape`: each of the
    /// two entries the batch, −1, 0 (copy, without allowzero) or a number.
    private func checkReshape(_ target: ONNXIntegers, allowZero: Bool, path: Path, _ attributes: ONNXAttributes) throws {
        let features = Int64(path.shape.count)
        let second = Int64(path.flat ? path.shape.count : path.shape.channels)
        guard target.entries.count == 2, !target.isScalar else {
            throw attributes.unsupported("Reshape to \(target.entries); only [N, features] is imported")
        }
        var entries = target.entries
        for axis in 0 ..< 2 where entries[axis] == .value(0) {
            guard !allowZero else { throw attributes.unsupported("Reshape to a zero dimension (allowzero 1)") }
            entries[axis] = axis == 0 ? .batch : .value(second)
        }
        let batchLike = entries[0] == .batch || { if case .value(let v) = entries[0] { return v >= 1 } else { return false } }()
        let valid: Bool
        switch entries[1] {
        case .value(features): valid = batchLike || entries[0] == .value(-1)
        case .value(-1): valid = batchLike
        default: valid = false
        }
        guard valid else {
            throw attributes.unsupported("Reshape of \(path.flat ? "[N, \(features)]" : "[N, \(path.shape.channels), \(path.shape.height), \(path.shape.width)]") to \(target.entries); only [N, \(features)] is imported")
        }
    }

    /// Reparo's own export marks the Flatten it writes before a linear layer that follows a
    /// feature map, and before the output (`ONNXExport.implicitFlatten`); the linear layer
    /// flattens by itself, so these are not layers of the spec.
    private func isExportersImplicitFlatten(_ node: Onnx_NodeProto) -> Bool {
        node.docString == ONNXExport.implicitFlatten
    }

    // MARK: Constants

    /// A FLOAT initializer or Constant, charged against the budget.
    private mutating func floats(_ name: String, _ attributes: ONNXAttributes) throws -> (dims: [Int], values: FloatBuffer) {
        guard case .tensor(let tensor, _)? = statics[name] else {
            throw attributes.unsupported("input \"\(ONNXImportError.clipped(name))\" must be a FLOAT initializer or Constant")
        }
        return try ONNXTensorReader.floats(tensor, "tensor \"\(ONNXImportError.clipped(name))\"") { count in
            try charge(count, attributes)
        }
    }

    private mutating func charge(_ count: Int, _ attributes: ONNXAttributes) throws {
        floatBudget -= count
        guard floatBudget >= 0 else {
            throw attributes.malformed("its weights, read again and again, would take more than twice the file's tensors")
        }
    }

    private func integers(_ name: String, _ attributes: ONNXAttributes) throws -> ONNXIntegers {
        switch statics[name] {
        case .integers(let integers)?:
            return integers
        case .tensor(let tensor, _)?:
            let (values, scalar) = try ONNXTensorReader.integers(tensor, "tensor \"\(ONNXImportError.clipped(name))\"")
            return ONNXIntegers(values.map { .value($0) }, isScalar: scalar)
        case nil:
            throw attributes.unsupported("input \"\(ONNXImportError.clipped(name))\" must be a constant")
        }
    }

    /// Shape of an activation: [N, C, H, W], or [N, features] once flat; `start`/`end` slice it.
    private mutating func evaluateShape(_ node: Onnx_NodeProto, _ attributes: inout ONNXAttributes) throws {
        try inputs(node, 1 ... 1, attributes)
        guard let (shape, flat) = activations[node.input[0]] else { throw attributes.malformed("Shape of an unknown value") }
        let dims: [ONNXIntegers.Entry] = flat
            ? [.batch, .value(Int64(shape.count))]
            : [.batch, .value(Int64(shape.channels)), .value(Int64(shape.height)), .value(Int64(shape.width))]
        let rank = Int64(dims.count)
        func clamp(_ value: Int64) -> Int { Int(min(max(value < 0 ? value + rank : value, 0), rank)) }
        let start = clamp(try attributes.int("start", default: 0))
        let end = clamp(try attributes.int("end", default: rank))
        statics[node.output[0]] = .integers(ONNXIntegers(start < end ? Array(dims[start ..< end]) : []))
    }

    /// A node on constants only: Constant, or shape arithmetic (Identity, Cast, Gather,
    /// Unsqueeze, Concat) on short integer lists.
    private mutating func evaluate(_ node: Onnx_NodeProto, _ attributes: inout ONNXAttributes) throws {
        let output = node.output[0]
        switch node.opType {
        case "Constant":
            try inputs(node, 0 ... 0, attributes)
            if let tensor = try attributes.tensor("value") {
                floatBudget += 2 * (tensor.rawData.count / 4 + tensor.floatData.count)
                statics[output] = .tensor(tensor, name: output)
            } else if attributes.has("value_int") {
                statics[output] = .integers(ONNXIntegers([.value(try attributes.int("value_int", default: 0))], isScalar: true))
            } else if let values = try attributes.ints("value_ints") {
                statics[output] = .integers(ONNXIntegers(values.map { .value($0) }))
            } else if attributes.has("value_float") || attributes.has("value_floats") {
                var tensor = Onnx_TensorProto()
                tensor.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
                if let values = try attributes.floats("value_floats") {
                    tensor.dims = [Int64(values.count)]
                    tensor.floatData = values
                } else {
                    tensor.floatData = [try attributes.float("value_float", default: 0)]
                }
                floatBudget += 2 * tensor.floatData.count
                statics[output] = .tensor(tensor, name: output)
            } else {
                throw attributes.unsupported("a Constant without a tensor, int or float value")
            }
            // Exactly one value attribute: the others are refused by `finish`.
        case "Identity":
            try inputs(node, 1 ... 1, attributes)
            statics[output] = statics[node.input[0]]
        case "Cast":
            try inputs(node, 1 ... 1, attributes)
            let target = try attributes.int("to", default: 0)
            attributes.ignore("saturate")
            guard target == Int64(Onnx_TensorProto.DataType.int64.rawValue) || target == Int64(Onnx_TensorProto.DataType.int32.rawValue) else {
                throw attributes.unsupported("Cast to type \(target) of a constant")
            }
            statics[output] = .integers(try integers(node.input[0], attributes))
        case "Gather":
            try inputs(node, 2 ... 2, attributes)
            let data = try integers(node.input[0], attributes)
            let indices = try integers(node.input[1], attributes)
            let axis = try attributes.int("axis", default: 0)
            guard !data.isScalar, axis == 0 || axis == -1, let positions = indices.values else {
                throw attributes.unsupported("Gather other than of entries of a 1-D integer list")
            }
            let count = Int64(data.entries.count)
            var entries: [ONNXIntegers.Entry] = []
            for position in positions {
                let resolved = position < 0 ? position + count : position
                guard resolved >= 0, resolved < count else { throw attributes.malformed("index \(position) outside \(count) entries") }
                entries.append(data.entries[Int(resolved)])
            }
            statics[output] = .integers(ONNXIntegers(entries, isScalar: indices.isScalar))
        case "Unsqueeze":
            try inputs(node, 1 ... 2, attributes)
            var axes = try attributes.ints("axes")
            if node.input.count == 2 { axes = try integers(node.input[1], attributes).values }
            let data = try integers(node.input[0], attributes)
            guard data.isScalar, axes == [0] || axes == [-1] else {
                throw attributes.unsupported("Unsqueeze other than of a scalar integer into a 1-element list")
            }
            statics[output] = .integers(ONNXIntegers(data.entries))
        case "Concat":
            try inputs(node, 1 ... ONNXTensorReader.maximumIntegers, attributes)
            let axis = try attributes.int("axis", default: 0)
            var entries: [ONNXIntegers.Entry] = []
            for name in node.input {
                let part = try integers(name, attributes)
                guard !part.isScalar, axis == 0 || axis == -1 else { throw attributes.unsupported("Concat other than of 1-D integer lists") }
                entries += part.entries
            }
            guard entries.count <= ONNXTensorReader.maximumIntegers else { throw attributes.unsupported("Concat of \(entries.count) integers") }
            statics[output] = .integers(ONNXIntegers(entries))
        default:
            throw attributes.unsupported("op \"\(ONNXImportError.clipped(node.opType))\" on constants only is not evaluated (Reparo evaluates Constant, Identity, Cast, Gather, Unsqueeze, Concat and Shape for a Reshape's target)")
        }
        guard statics[output] != nil else { throw attributes.malformed("no value") }
    }
}
