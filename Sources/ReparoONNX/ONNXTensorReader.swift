import Foundation
import ReparoCore

/// Reads the values of an ONNX TensorProto (an initializer or a Constant's value). Every field
/// is checked against the others before anything is allocated: the dims' product must match
/// the bytes the file holds, so a tensor costs no more memory than its own data.
/// https://github.com/onnx/onnx/blob/main/docs/IR.md#tensor-definition
enum ONNXTensorReader {
    /// Integer tensors are read only for shapes and axes: a few entries.
    static let maximumIntegers = 64

    /// The dims as Ints (each ≥ 0) and their product, refusing what a buffer cannot hold.
    static func shape(_ tensor: Onnx_TensorProto, _ what: String) throws -> (dims: [Int], count: Int) {
        guard tensor.dims.count <= 8 else {
            throw ONNXImportError.unsupported("\(what) has \(tensor.dims.count) dimensions")
        }
        var count = 1
        for dim in tensor.dims {
            guard dim >= 0 else { throw ONNXImportError.malformed("\(what) has a negative dimension \(dim)") }
            let (product, overflow) = count.multipliedReportingOverflow(by: Int(dim))
            guard !overflow, product <= FloatBuffer.maximumCount else {
                throw ONNXImportError.malformed("\(what): dims \(tensor.dims) exceed \(FloatBuffer.maximumCount) elements")
            }
            count = product
        }
        return (tensor.dims.map { Int($0) }, count)
    }

    /// Refuses data stored outside the file or in segments.
    private static func checkStorage(_ tensor: Onnx_TensorProto, _ what: String) throws {
        guard tensor.dataLocation != .external, tensor.externalData.isEmpty else {
            throw ONNXImportError.unsupported("\(what) keeps its data in an external file, which only an import from a path reads")
        }
        guard !tensor.hasSegment else { throw ONNXImportError.unsupported("\(what) is a segment of a tensor") }
    }

    /// A FLOAT tensor's shape and values (raw_data little-endian, or float_data). `charge`
    /// is told the element count once the data is known to hold it, before the allocation.
    static func floats(_ tensor: Onnx_TensorProto, _ what: String,
                       charge: (Int) throws -> Void = { _ in }) throws -> (dims: [Int], values: FloatBuffer) {
        try checkStorage(tensor, what)
        guard tensor.dataType == Int32(Onnx_TensorProto.DataType.float.rawValue) else {
            throw ONNXImportError.unsupported("\(what) has data type \(typeName(tensor.dataType)); only FLOAT weights are imported")
        }
        let (dims, count) = try shape(tensor, what)
        let raw = tensor.rawData
        if tensor.hasRawData || !raw.isEmpty {
            guard tensor.floatData.isEmpty, raw.count == 4 * count else {
                throw ONNXImportError.malformed("\(what): dims \(dims) need \(4 * count) bytes of raw_data, the file holds \(raw.count)")
            }
            try charge(count)
            let values = try FloatBuffer(count: count)
            raw.withUnsafeBytes { bytes in
                for index in 0 ..< count {
                    let bits = bytes.loadUnaligned(fromByteOffset: 4 * index, as: UInt32.self)
                    values.pointer[index] = Float(bitPattern: UInt32(littleEndian: bits))
                }
            }
            return (dims, values)
        }
        guard tensor.floatData.count == count else {
            throw ONNXImportError.malformed("\(what): dims \(dims) need \(count) values, float_data holds \(tensor.floatData.count)")
        }
        try charge(count)
        return (dims, try FloatBuffer(tensor.floatData))
    }

    /// An INT64 or INT32 tensor of at most `maximumIntegers` entries (shapes, axes, indices);
    /// `scalar` when its dims are [].
    static func integers(_ tensor: Onnx_TensorProto, _ what: String) throws -> (values: [Int64], scalar: Bool) {
        try checkStorage(tensor, what)
        let (dims, count) = try shape(tensor, what)
        guard dims.count <= 1, count <= maximumIntegers else {
            throw ONNXImportError.unsupported("\(what): an integer tensor of dims \(dims) where a short list of integers is expected")
        }
        let raw = tensor.rawData
        switch Onnx_TensorProto.DataType(rawValue: Int(tensor.dataType)) {
        case .int64?:
            if !raw.isEmpty {
                guard raw.count == 8 * count else {
                    throw ONNXImportError.malformed("\(what): \(count) INT64 values need \(8 * count) bytes, raw_data holds \(raw.count)")
                }
                return (raw.withUnsafeBytes { bytes in
                    (0 ..< count).map { Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
                }, dims.isEmpty)
            }
            guard tensor.int64Data.count == count else {
                throw ONNXImportError.malformed("\(what): \(count) values expected, int64_data holds \(tensor.int64Data.count)")
            }
            return (tensor.int64Data, dims.isEmpty)
        case .int32?, .bool?:
            let width = tensor.dataType == Int32(Onnx_TensorProto.DataType.bool.rawValue) ? 1 : 4
            if !raw.isEmpty {
                guard raw.count == width * count else {
                    throw ONNXImportError.malformed("\(what): \(count) values need \(width * count) bytes, raw_data holds \(raw.count)")
                }
                return (raw.withUnsafeBytes { bytes in
                    (0 ..< count).map { index in
                        width == 1 ? Int64(bytes[index]) : Int64(Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * index, as: Int32.self)))
                    }
                }, dims.isEmpty)
            }
            guard tensor.int32Data.count == count else {
                throw ONNXImportError.malformed("\(what): \(count) values expected, int32_data holds \(tensor.int32Data.count)")
            }
            return (tensor.int32Data.map { Int64($0) }, dims.isEmpty)
        default:
            throw ONNXImportError.unsupported("\(what) has data type \(typeName(tensor.dataType)) where integers are expected")
        }
    }

    static func typeName(_ code: Int32) -> String {
        guard let type = Onnx_TensorProto.DataType(rawValue: Int(code)) else { return "\(code)" }
        return "\(type)".uppercased()
    }
}
