// libFuzzer target: an ONNX file as reparo_model_import_onnx sees it (interim: protobuf decode only).

import Foundation
import SwiftProtobuf

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzONNX(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    guard let proto = try? Onnx_ModelProto(serializedBytes: bytes) else { return 0 }
    guard let again = try? proto.serializedData(), let reparsed = try? Onnx_ModelProto(serializedBytes: again),
          reparsed == proto else {
        fatalError("a decoded ModelProto does not survive its own serialization")
    }
    return 0
}
