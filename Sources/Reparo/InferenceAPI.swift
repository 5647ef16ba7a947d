import CReparo
import Foundation
import ReparoCore

let maximumBatch = 65_536

@_cdecl("reparo_infer")
public func reparo_infer(_ model: OpaquePointer?, _ images: UnsafePointer<Float>?, _ batch: Int32,
                         _ outLogits: UnsafeMutablePointer<Float>?, _ outCapacity: Int) -> reparo_status {
    guarded("reparo_infer") {
        let model = try modelHandle(model).model
        let images = try required(images, "images")
        let logits = try required(outLogits, "out_logits")
        guard batch >= 1, Int(batch) <= maximumBatch else {
            throw ReparoError.invalidArgument("batch must be in 1...\(maximumBatch), got \(batch)")
        }
        let needed = Int(batch) * model.classes
        guard outCapacity >= needed else {
            throw ReparoError.invalidArgument("out_capacity is \(outCapacity) floats but \(batch) × \(model.classes) classes = \(needed) are needed")
        }
        try model.infer(images, batch: Int(batch), logits: logits)
    }
}

@_cdecl("reparo_evaluate")
public func reparo_evaluate(_ model: OpaquePointer?, _ images: UnsafePointer<Float>?, _ labels: UnsafePointer<Int32>?,
                            _ count: Int64, _ outAccuracy: UnsafeMutablePointer<Float>?,
                            _ outLoss: UnsafeMutablePointer<Float>?) -> reparo_status {
    guarded("reparo_evaluate") {
        let model = try modelHandle(model).model
        let images = try required(images, "images")
        let labels = try required(labels, "labels")
        guard count >= 1, count <= Int64(FloatBuffer.maximumCount) else {
            throw ReparoError.invalidArgument("count must be in 1...\(FloatBuffer.maximumCount), got \(count)")
        }
        let result = try model.evaluate(images: images, labels: labels, count: Int(count))
        outAccuracy?.pointee = Float(result.accuracy)
        outLoss?.pointee = Float(result.loss)
    }
}
