import ReparoCore

/// The parts of an ONNX model the importer walks, indexed once in linear time: the nodes in
/// file order (ONNX requires a topological order), the initializers by name, the nodes that
/// read each value, the one image input and the one output.
struct ONNXGraph {
    /// Default-domain operator sets accepted (ONNX 1.4's opset 9 to onnx 1.18's opset 23).
    static let supportedOpsets: ClosedRange<Int64> = 9 ... 23

    let nodes: [Onnx_NodeProto]
    let opset: Int64
    let initializers: [Onnx_TensorProto]
    /// Initializer index by name.
    let initializerIndex: [String: Int]
    /// The nodes that read each value, one entry per input slot.
    let consumers: [String: [Int]]
    /// How many readers each value's activation has: input slots of nodes other than Shape
    /// (which reads only the shape), plus one for the graph output.
    let dataReaders: [String: Int]
    let inputName: String
    /// C, H and W of the input as the graph fixes them; nil where symbolic or not given.
    let inputSides: [Int?]
    let outputName: String
    /// The output's last dimension when the graph fixes it.
    let outputClasses: Int?
    /// Written by `ONNXExport` (producer "reparo"): its node names are the layer names.
    let fromReparo: Bool

    init(_ model: Onnx_ModelProto) throws {
        var opset: Int64?
        for entry in model.opsetImport where entry.domain.isEmpty || entry.domain == "ai.onnx" {
            guard opset == nil else { throw ONNXImportError.malformed("the default-domain opset is imported twice") }
            opset = entry.version
        }
        guard let opset else { throw ONNXImportError.malformed("the model imports no default-domain (ai.onnx) opset") }
        guard Self.supportedOpsets.contains(opset) else {
            throw ONNXImportError.unsupported("opset \(opset) of the default domain; opsets \(Self.supportedOpsets.lowerBound) to \(Self.supportedOpsets.upperBound) are imported")
        }
        guard model.hasGraph else { throw ONNXImportError.malformed("the model has no graph (not an ONNX model?)") }
        let graph = model.graph
        guard graph.sparseInitializer.isEmpty else { throw ONNXImportError.unsupported("sparse initializers are not imported") }
        self.opset = opset
        self.fromReparo = model.producerName == "reparo"
        self.nodes = graph.node
        self.initializers = graph.initializer

        var index: [String: Int] = [:]
        for (position, tensor) in graph.initializer.enumerated() {
            guard !tensor.name.isEmpty else { throw ONNXImportError.malformed("initializer \(position) has no name") }
            guard index.updateValue(position, forKey: tensor.name) == nil else {
                throw ONNXImportError.malformed("initializer \"\(ONNXImportError.clipped(tensor.name))\" is given twice")
            }
        }
        self.initializerIndex = index

        // Graph inputs that are initializers (IR < 4 lists them) are weights, not inputs.
        let inputs = graph.input.filter { index[$0.name] == nil }
        guard inputs.count == 1, let input = inputs.first else {
            throw ONNXImportError.unsupported("the graph has \(inputs.count) inputs besides its initializers (\(inputs.prefix(4).map { "\"\(ONNXImportError.clipped($0.name))\"" }.joined(separator: ", "))); Reparo imports one image input [N, C, H, W]")
        }
        guard !input.name.isEmpty else { throw ONNXImportError.malformed("the graph input has no name") }
        self.inputName = input.name
        var sides: [Int?] = [nil, nil, nil]
        if input.hasType {
            guard case .tensorType(let tensor)? = input.type.value else {
                throw ONNXImportError.unsupported("input \"\(ONNXImportError.clipped(input.name))\" is not a tensor")
            }
            guard !tensor.hasElemType || tensor.elemType == Int32(Onnx_TensorProto.DataType.float.rawValue) else {
                throw ONNXImportError.unsupported("input \"\(ONNXImportError.clipped(input.name))\" has element type \(ONNXTensorReader.typeName(tensor.elemType)); only FLOAT is imported")
            }
            if tensor.hasShape {
                let dims = tensor.shape.dim
                guard dims.count == 4 else {
                    throw ONNXImportError.unsupported("input \"\(ONNXImportError.clipped(input.name))\" has rank \(dims.count); Reparo imports images [N, C, H, W]")
                }
                for axis in 1 ... 3 {
                    if case .dimValue(let value)? = dims[axis].value, value > 0 {
                        sides[axis - 1] = value <= Int64(Int32.max) ? Int(value) : Int(Int32.max)
                    }
                }
            }
        }
        self.inputSides = sides

        guard graph.output.count == 1, let output = graph.output.first else {
            throw ONNXImportError.unsupported("the graph has \(graph.output.count) outputs; Reparo imports one output [N, classes]")
        }
        guard !output.name.isEmpty else { throw ONNXImportError.malformed("the graph output has no name") }
        self.outputName = output.name
        var classes: Int?
        if case .tensorType(let tensor)? = output.type.value, tensor.hasShape, let last = tensor.shape.dim.last,
           case .dimValue(let value)? = last.value, value > 0 {
            classes = value <= Int64(Int32.max) ? Int(value) : Int(Int32.max)
        }
        self.outputClasses = classes

        var consumers: [String: [Int]] = [:]
        var readers: [String: Int] = [output.name: 1]
        for (position, node) in graph.node.enumerated() {
            for name in node.input where !name.isEmpty {
                consumers[name, default: []].append(position)
                if node.opType != "Shape" { readers[name, default: 0] += 1 }
            }
        }
        self.consumers = consumers
        self.dataReaders = readers
    }
}
