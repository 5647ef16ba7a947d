import CReparo
import Foundation
import ReparoCore

@_cdecl("reparo_trainer_create")
public func reparo_trainer_create(_ student: OpaquePointer?, _ teacher: OpaquePointer?, _ options: UnsafePointer<CChar>?,
                                  _ outTrainer: UnsafeMutablePointer<OpaquePointer?>?) -> reparo_status {
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
                                _ batch: Int32, _ outResult: UnsafeMutablePointer<reparo_step_result>?) -> reparo_status {
    guarded("reparo_trainer_step") {
        let handle = try trainerHandle(trainer)
        let images = try required(images, "images")
        let labels = try required(labels, "labels")
        guard batch >= 1, Int(batch) <= maximumBatch else {
            throw ReparoError.invalidArgument("batch must be in 1...\(maximumBatch), got \(batch)")
        }
        let result = try handle.trainer.step(images: images, labels: labels, batch: Int(batch))
        outResult?.pointee = reparo_step_result(result)
    }
}

@_cdecl("reparo_trainer_free")
public func reparo_trainer_free(_ trainer: OpaquePointer?) {
    HandleRegistry.shared.unregister(trainer, as: TrainerHandle.self)
}

func trainerHandle(_ pointer: OpaquePointer?) throws -> TrainerHandle {
    try HandleRegistry.shared.lookup(pointer, as: TrainerHandle.self, "trainer")
}

extension reparo_step_result {
    /// A step result in the header's struct (which fixes the layout C and Python read).
    init(_ result: Trainer.StepResult) {
        self.init(loss: Float(result.loss), ce_loss: Float(result.crossEntropy), kd_loss: Float(result.distillation),
                  accuracy: Float(result.accuracy), learning_rate: Float(result.learningRate), step: Int64(result.step))
    }
}

@_cdecl("reparo_trainer_save")
public func reparo_trainer_save(_ trainer: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> reparo_status {
    guarded("reparo_trainer_save") {
        let handle = try trainerHandle(trainer)
        try handle.trainer.saveState(path: try nonEmptyPath(path))
    }
}

@_cdecl("reparo_trainer_load")
public func reparo_trainer_load(_ trainer: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> reparo_status {
    guarded("reparo_trainer_load") {
        let handle = try trainerHandle(trainer)
        try handle.trainer.loadState(path: try string(path, "path"))
    }
}

@_cdecl("reparo_trainer_fit")
public func reparo_trainer_fit(_ trainer: OpaquePointer?, _ dataset: OpaquePointer?, _ epochs: Int32, _ batchSize: Int32,
                               _ seed: UInt64, _ progress: reparo_progress_callback?,
                               _ userData: UnsafeMutableRawPointer?) -> reparo_status {
    guarded("reparo_trainer_fit") {
        let handle = try trainerHandle(trainer)
        let data = try HandleRegistry.shared.lookup(dataset, as: DatasetHandle.self, "dataset")
        guard epochs >= 1, epochs <= 1_000_000 else { throw ReparoError.invalidArgument("epochs must be in 1...1000000, got \(epochs)") }
        guard batchSize >= 1, Int(batchSize) <= maximumBatch else {
            throw ReparoError.invalidArgument("batch_size must be in 1...\(maximumBatch), got \(batchSize)")
        }
        guard data.classes <= handle.trainer.student.classes else {
            throw ReparoError.invalidArgument("the dataset has \(data.classes) classes, the student \(handle.trainer.student.classes)")
        }
        try handle.trainer.fit(images: data.images.pointer, labels: data.labels, count: data.count, shape: data.shape,
                               epochs: Int(epochs), batchSize: Int(batchSize), seed: seed) { report in
            guard let progress else { return true }
            var result = reparo_step_result(report.step)
            return progress(&result, Int32(report.epoch), Int32(report.epochs), Int32(report.batchInEpoch),
                            Int32(report.batchesPerEpoch), Float(report.epochLoss), Float(report.epochAccuracy), userData) == 0
        }
    }
}

@_cdecl("reparo_fit_order")
public func reparo_fit_order(_ count: Int64, _ seed: UInt64, _ epoch: Int32, _ outOrder: UnsafeMutablePointer<Int64>?,
                             _ outCapacity: Int) -> reparo_status {
    guarded("reparo_fit_order") {
        let target = try output(outOrder, "out_order")
        guard count >= 1, count <= Int64(FloatBuffer.maximumCount) else {
            throw ReparoError.invalidArgument("count must be in 1...\(FloatBuffer.maximumCount), got \(count)")
        }
        guard epoch >= 1, epoch <= 1_000_000 else { throw ReparoError.invalidArgument("epoch must be in 1...1000000, got \(epoch)") }
        guard outCapacity >= Int(count) else {
            throw ReparoError.invalidArgument("out_capacity is \(outCapacity) but count is \(count)")
        }
        // Shuffled in the caller's buffer: nothing is allocated, however large count is.
        var order = UnsafeMutableBufferPointer(start: target, count: Int(count))
        for slot in 0..<order.count { order[slot] = Int64(slot) }
        var shuffle = FitOrder(seed: seed)
        for _ in 0..<Int(epoch) { shuffle.advance(&order) }
    }
}
