import CReparo
import Foundation
import ReparoCore

func modelHandle(_ pointer: OpaquePointer?, _ name: String = "model") throws -> ModelHandle {
    try HandleRegistry.shared.lookup(pointer, as: ModelHandle.self, name)
}

func output<T>(_ pointer: UnsafeMutablePointer<T>?, _ name: String) throws -> UnsafeMutablePointer<T> {
    try required(pointer, name)
}

@_cdecl("reparo_model_create")
public func reparo_model_create(_ spec: UnsafePointer<CChar>?, _ seed: UInt64,
                                _ outModel: UnsafeMutablePointer<OpaquePointer?>?) -> reparo_status {
    guarded("reparo_model_create") {
        let target = try output(outModel, "out_model")
        let model = try Model(specJSON: try string(spec, "spec_json"), seed: seed)
        target.pointee = HandleRegistry.shared.register(ModelHandle(model))
    }
}

@_cdecl("reparo_model_load")
public func reparo_model_load(_ path: UnsafePointer<CChar>?, _ outModel: UnsafeMutablePointer<OpaquePointer?>?) -> reparo_status {
    guarded("reparo_model_load") {
        let target = try output(outModel, "out_model")
        let model = try Model.load(path: try string(path, "path"))
        target.pointee = HandleRegistry.shared.register(ModelHandle(model))
    }
}

@_cdecl("reparo_model_save")
public func reparo_model_save(_ model: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> reparo_status {
    guarded("reparo_model_save") {
        let handle = try modelHandle(model)
        try handle.model.save(path: try nonEmptyPath(path))
    }
}

@_cdecl("reparo_model_clone")
public func reparo_model_clone(_ model: OpaquePointer?, _ outModel: UnsafeMutablePointer<OpaquePointer?>?) -> reparo_status {
    guarded("reparo_model_clone") {
        let handle = try modelHandle(model)
        let target = try output(outModel, "out_model")
        target.pointee = HandleRegistry.shared.register(ModelHandle(try handle.model.clone()))
    }
}

@_cdecl("reparo_model_describe")
public func reparo_model_describe(_ model: OpaquePointer?, _ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int,
                                  _ outLength: UnsafeMutablePointer<Int>?) -> reparo_status {
    guarded("reparo_model_describe") {
        let handle = try modelHandle(model)
        try checkTextBuffer(buffer, capacity: capacity)
        copyText(handle.model.describe(), to: buffer, capacity: capacity, length: outLength)
    }
}

@_cdecl("reparo_model_shape")
public func reparo_model_shape(_ model: OpaquePointer?, _ channels: UnsafeMutablePointer<Int32>?,
                               _ height: UnsafeMutablePointer<Int32>?, _ width: UnsafeMutablePointer<Int32>?,
                               _ classes: UnsafeMutablePointer<Int32>?) -> reparo_status {
    guarded("reparo_model_shape") {
        let model = try modelHandle(model).model
        channels?.pointee = Int32(model.inputShape.channels)
        height?.pointee = Int32(model.inputShape.height)
        width?.pointee = Int32(model.inputShape.width)
        classes?.pointee = Int32(model.classes)
    }
}

@_cdecl("reparo_model_set_threads")
public func reparo_model_set_threads(_ model: OpaquePointer?, _ threads: Int32) -> reparo_status {
    guarded("reparo_model_set_threads") {
        let model = try modelHandle(model).model
        guard threads >= 0, Int(threads) <= ExecutionContext.maximumThreads else {
            throw ReparoError.invalidArgument("threads must be in 0...\(ExecutionContext.maximumThreads) (0 = every core), got \(threads)")
        }
        model.threads = Int(threads)
    }
}

@_cdecl("reparo_model_threads")
public func reparo_model_threads(_ model: OpaquePointer?, _ outThreads: UnsafeMutablePointer<Int32>?) -> reparo_status {
    guarded("reparo_model_threads") {
        let model = try modelHandle(model).model
        try output(outThreads, "out_threads").pointee = Int32(model.threads)
    }
}

@_cdecl("reparo_model_free")
public func reparo_model_free(_ model: OpaquePointer?) {
    HandleRegistry.shared.unregister(model, as: ModelHandle.self)
}
