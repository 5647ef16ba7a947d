import ReparoCore

/// The two ways an ONNX file fails to import, spelled once so every message has the same form:
/// a malformed or inconsistent file is `.format`, a valid graph outside the supported set
/// (an op, attribute value or data type Reparo does not map) is `.invalidArgument`.
enum ONNXImportError {
    static func malformed(_ message: String) -> ReparoError {
        .format("ONNX import: \(message)")
    }

    static func unsupported(_ message: String) -> ReparoError {
        .invalidArgument("ONNX import: \(message)")
    }

    /// How a node is named in messages: its index, its name (if any) and its op_type.
    static func describe(_ node: Onnx_NodeProto, _ index: Int) -> String {
        let name = node.name.isEmpty ? "" : " \"\(clipped(node.name))\""
        return "node \(index)\(name) (\(clipped(node.opType)))"
    }

    /// A file's string, cut to a length a message can hold.
    static func clipped(_ text: String) -> String {
        text.count <= 120 ? text : String(text.prefix(120)) + "…"
    }
}
