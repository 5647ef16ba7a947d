import Foundation
import ReparoCore

@_cdecl("reparo_trainer_create")
public func reparo_trainer_create(_ student: OpaquePointer?, _ teacher: OpaquePointer?, _ options: UnsafePointer<CChar>?,
                                  _ outTrainer: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded("reparo_trainer_create") {
        let target = try output(outTrainer, "out_trainer")
        let studentHandle = try modelHandle(student, "student")
        let teacherHandle = teacher == nil ? nil : try modelHandle(teacher, "teacher")
        let options = try TrainerOptions(json: try optionalString(options, "options_json"))
        let trainer = try Trainer(student: studentHandle.model, teacher: teacherHandle?.model, options: options)
        target.pointee = HandleRegistry.shared.register(
            TrainerHandle(trainer: trainer, student: studentHandle, teacher: teacherHandle))
    }
}

@_cdecl("reparo_trainer_step")
public func reparo_trainer_step(_ trainer: OpaquePointer?, _ images: UnsafePointer<Float>?, _ labels: UnsafePointer<Int32>?,
                                _ batch: Int32, _ outResult: UnsafeMutableRawPointer?) -> Int32 {
    guarded("reparo_trainer_step") {
        let handle = try trainerHandle(trainer)
        let images = try required(images, "images")
        let labels = try required(labels, "labels")
        guard batch >= 1, Int(batch) <= maximumBatch else {
            throw ReparoError.invalidArgument("batch must be in 1...\(maximumBatch), got \(batch)")
        }
        let result = try handle.trainer.step(images: images, labels: labels, batch: Int(batch))
        if let outResult { store(result, into: outResult) }
    }
}

@_cdecl("reparo_trainer_free")
public func reparo_trainer_free(_ trainer: OpaquePointer?) {
    HandleRegistry.shared.unregister(trainer, as: TrainerHandle.self)
}

func trainerHandle(_ pointer: OpaquePointer?) throws -> TrainerHandle {
    try HandleRegistry.shared.lookup(pointer, as: TrainerHandle.self, "trainer")
}

/// Writes a step result in reparo_step_result's C layout: five floats, then int64 at 24.
func store(_ result: Trainer.StepResult, into target: UnsafeMutableRawPointer) {
    target.storeBytes(of: Float(result.loss), toByteOffset: 0, as: Float.self)
    target.storeBytes(of: Float(result.crossEntropy), toByteOffset: 4, as: Float.self)
    target.storeBytes(of: Float(result.distillation), toByteOffset: 8, as: Float.self)
    target.storeBytes(of: Float(result.accuracy), toByteOffset: 12, as: Float.self)
    target.storeBytes(of: Float(result.learningRate), toByteOffset: 16, as: Float.self)
    target.storeBytes(of: Int64(result.step), toByteOffset: 24, as: Int64.self)
}

@_cdecl("reparo_trainer_save")
public func reparo_trainer_save(_ trainer: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> Int32 {
    guarded("reparo_trainer_save") {
        let handle = try trainerHandle(trainer)
        let path = try string(path, "path")
        guard !path.isEmpty else { throw ReparoError.invalidArgument("path is empty") }
        try handle.trainer.saveState(path: path)
    }
}

@_cdecl("reparo_trainer_load")
public func reparo_trainer_load(_ trainer: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> Int32 {
    guarded("reparo_trainer_load") {
        let handle = try trainerHandle(trainer)
        try handle.trainer.loadState(path: try string(path, "path"))
    }
}

public typealias ProgressCallback = @convention(c) (
    UnsafeRawPointer?, Int32, Int32, Int32, Int32, Float, Float, UnsafeMutableRawPointer?) -> Int32

@_cdecl("reparo_trainer_fit")
public func reparo_trainer_fit(_ trainer: OpaquePointer?, _ dataset: OpaquePointer?, _ epochs: Int32, _ batchSize: Int32,
                               _ seed: UInt64, _ progress: ProgressCallback?, _ userData: UnsafeMutableRawPointer?) -> Int32 {
    guarded("reparo_trainer_fit") {
        let handle = try trainerHandle(trainer)
        let data = try HandleRegistry.shared.lookup(dataset, as: DatasetHandle.self, "dataset").dataset
        guard epochs >= 1, epochs <= 1_000_000 else { throw ReparoError.invalidArgument("epochs must be in 1...1000000, got \(epochs)") }
        guard batchSize >= 1, Int(batchSize) <= maximumBatch else {
            throw ReparoError.invalidArgument("batch_size must be in 1...\(maximumBatch), got \(batchSize)")
        }
        guard data.classes <= handle.trainer.student.classes else {
            throw ReparoError.invalidArgument("the dataset has \(data.classes) classes, the student \(handle.trainer.student.classes)")
        }
        var result = [UInt8](repeating: 0, count: 32)
        try handle.trainer.fit(data, epochs: Int(epochs), batchSize: Int(batchSize), seed: seed) { report in
            guard let progress else { return true }
            return result.withUnsafeMutableBytes { bytes in
                guard let base = bytes.baseAddress else { return true }
                store(report.step, into: base)
                return progress(UnsafeRawPointer(base), Int32(report.epoch), Int32(report.epochs), Int32(report.batchInEpoch),
                                Int32(report.batchesPerEpoch), Float(report.epochLoss), Float(report.epochAccuracy), userData) == 0
            }
        }
    }
}
