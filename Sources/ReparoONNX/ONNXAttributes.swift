import ReparoCore

/// A node's attributes, read by name with their types checked. `finish` refuses every
/// attribute the op's reader did not ask for, so an attribute Reparo does not know is an
/// error naming it rather than silently ignored.
struct ONNXAttributes {
    let node: Onnx_NodeProto
    let index: Int
    private var byName: [String: Onnx_AttributeProto] = [:]
    private var used: Set<String> = []

    init(_ node: Onnx_NodeProto, index: Int) throws {
        self.node = node
        self.index = index
        for attribute in node.attribute {
            guard byName.updateValue(attribute, forKey: attribute.name) == nil else {
                throw ONNXImportError.malformed("\(ONNXImportError.describe(node, index)): attribute \"\(ONNXImportError.clipped(attribute.name))\" is given twice")
            }
            guard attribute.refAttrName.isEmpty else {
                throw unsupported("attribute \"\(ONNXImportError.clipped(attribute.name))\" refers to a function attribute")
            }
        }
    }

    var where_: String { ONNXImportError.describe(node, index) }

    func unsupported(_ message: String) -> ReparoError {
        ONNXImportError.unsupported("\(where_): \(message)")
    }

    func malformed(_ message: String) -> ReparoError {
        ONNXImportError.malformed("\(where_): \(message)")
    }

    /// The attribute `name` if present, after checking its type.
    private mutating func attribute(_ name: String, _ type: Onnx_AttributeProto.AttributeType) throws -> Onnx_AttributeProto? {
        used.insert(name)
        guard let attribute = byName[name] else { return nil }
        guard attribute.type == type else {
            throw malformed("attribute \"\(name)\" is \(attribute.type), expected \(type)")
        }
        return attribute
    }

    mutating func has(_ name: String) -> Bool {
        byName[name] != nil
    }

    mutating func int(_ name: String, default fallback: Int64) throws -> Int64 {
        try attribute(name, .int)?.i ?? fallback
    }

    mutating func ints(_ name: String) throws -> [Int64]? {
        guard let values = try attribute(name, .ints)?.ints else { return nil }
        guard values.count <= 16 else { throw unsupported("attribute \"\(name)\" has \(values.count) values") }
        return values
    }

    mutating func float(_ name: String, default fallback: Float) throws -> Float {
        try attribute(name, .float)?.f ?? fallback
    }

    mutating func floats(_ name: String) throws -> [Float]? {
        try attribute(name, .floats)?.floats
    }

    mutating func string(_ name: String, default fallback: String) throws -> String {
        guard let data = try attribute(name, .string)?.s else { return fallback }
        return String(decoding: data.prefix(64), as: UTF8.self)
    }

    mutating func tensor(_ name: String) throws -> Onnx_TensorProto? {
        try attribute(name, .tensor)?.t
    }

    /// Marks attributes that carry no meaning for inference (read and ignored).
    mutating func ignore(_ names: String...) {
        used.formUnion(names)
    }

    /// Refuses any attribute not read.
    func finish() throws {
        for attribute in node.attribute where !used.contains(attribute.name) {
            throw unsupported("attribute \"\(ONNXImportError.clipped(attribute.name))\" is not supported")
        }
    }
}
