import Foundation
import ReparoCore

@_cdecl("reparo_trainer_create")
public func reparo_trainer_create(_ student: OpaquePointer?, _ teacher: OpaquePointer?, _ options: UnsafePointer<CChar>?,
                                  _ outTrainer: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded("reparo_trainer_create") {
        let target = try output(outTrainer, "out_trainer")
        let studentHandle = try modelHandle(student, "student")
        let teacherHandle = teacher == nil ? nil : try modelHandle(teacher, "teacher")
        let options = try TrainerOptions.parse(try optionalString(options, "options_json"))
        let trainer = try Trainer(student: studentHandle.model, teacher: teacherHandle?.model, options: options)
        target.pointee = HandleRegistry.shared.register(
            TrainerHandle(trainer: trainer, student: studentHandle, teacher: teacherHandle))
    }
}

@_cdecl("reparo_trainer_step")
public func reparo_trainer_step(_ trainer: OpaquePointer?, _ images: UnsafePointer<Float>?, _ labels: UnsafePointer<Int32>?,
                                _ batch: Int32, _ outResult: UnsafeMutableRawPointer?) -> Int32 {
    guarded("reparo_trainer_step") {
        let handle = try HandleRegistry.shared.lookup(trainer, as: TrainerHandle.self, "trainer")
        let images = try required(images, "images")
        let labels = try required(labels, "labels")
        guard batch >= 1, Int(batch) <= maximumBatch else {
            throw ReparoError.invalidArgument("batch must be in 1...\(maximumBatch), got \(batch)")
        }
        let result = try handle.trainer.step(images: images, labels: labels, batch: Int(batch))
        if let outResult {
            // reparo_step_result: five floats, then int64 step at offset 24 (C layout).
            outResult.storeBytes(of: Float(result.loss), toByteOffset: 0, as: Float.self)
            outResult.storeBytes(of: Float(result.crossEntropy), toByteOffset: 4, as: Float.self)
            outResult.storeBytes(of: Float(result.distillation), toByteOffset: 8, as: Float.self)
            outResult.storeBytes(of: Float(result.accuracy), toByteOffset: 12, as: Float.self)
            outResult.storeBytes(of: Float(result.learningRate), toByteOffset: 16, as: Float.self)
            outResult.storeBytes(of: Int64(result.step), toByteOffset: 24, as: Int64.self)
        }
    }
}

@_cdecl("reparo_trainer_free")
public func reparo_trainer_free(_ trainer: OpaquePointer?) {
    HandleRegistry.shared.unregister(trainer, as: TrainerHandle.self)
}
