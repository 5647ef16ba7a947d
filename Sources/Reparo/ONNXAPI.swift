import CReparo
import Foundation
import ReparoCore
import ReparoONNX

@_cdecl("reparo_model_export_onnx")
public func reparo_model_export_onnx(_ model: OpaquePointer?, _ path: UnsafePointer<CChar>?,
                                     _ options: UnsafePointer<CChar>?) -> reparo_status {
    guarded("reparo_model_export_onnx") {
        let handle = try modelHandle(model)
        let target = try nonEmptyPath(path)
        let parsed = try ONNXExportOptions(json: try optionalString(options, "options_json"))
        try ONNXExport.write(handle.model, path: target, options: parsed)
    }
}

@_cdecl("reparo_model_import_onnx")
public func reparo_model_import_onnx(_ path: UnsafePointer<CChar>?, _ options: UnsafePointer<CChar>?,
                                     _ outModel: UnsafeMutablePointer<OpaquePointer?>?) -> reparo_status {
    guarded("reparo_model_import_onnx") {
        let target = try output(outModel, "out_model")
        let source = try nonEmptyPath(path)
        let parsed = try ONNXImportOptions(json: try optionalString(options, "options_json"))
        let model = try ONNXImport.model(path: source, options: parsed)
        target.pointee = HandleRegistry.shared.register(ModelHandle(model))
    }
}
