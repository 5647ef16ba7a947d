import CReparo
import Foundation
import ReparoCore

@_cdecl("reparo_dataset_load")
public func reparo_dataset_load(_ kind: UnsafePointer<CChar>?, _ path: UnsafePointer<CChar>?, _ split: UnsafePointer<CChar>?,
                                _ outDataset: UnsafeMutablePointer<OpaquePointer?>?) -> reparo_status {
    guarded("reparo_dataset_load") {
        let target = try output(outDataset, "out_dataset")
        let dataset = try DatasetCatalog.load(kind: try string(kind, "kind"), path: try optionalString(path, "path"),
                                              split: try string(split, "split"))
        target.pointee = HandleRegistry.shared.register(try DatasetHandle(dataset))
    }
}

@_cdecl("reparo_dataset_create")
public func reparo_dataset_create(_ images: UnsafePointer<Float>?, _ labels: UnsafePointer<Int32>?, _ count: Int64,
                                  _ channels: Int32, _ height: Int32, _ width: Int32, _ classes: Int32,
                                  _ outDataset: UnsafeMutablePointer<OpaquePointer?>?) -> reparo_status {
    guarded("reparo_dataset_create") {
        let target = try output(outDataset, "out_dataset")
        let images = try required(images, "images")
        let labels = try required(labels, "labels")
        for (name, value) in [("channels", channels), ("height", height), ("width", width), ("classes", classes)] where value < 1 {
            throw ReparoError.invalidArgument("\(name) must be at least 1, got \(value)")
        }
        let shape = FeatureShape(channels: Int(channels), height: Int(height), width: Int(width))
        let limit = FloatBuffer.maximumCount
        guard count >= 1, count <= Int64(limit) else {
            throw ReparoError.invalidArgument("count must be in 1...\(limit), got \(count)")
        }
        let (sample, sampleOverflow) = Int(channels).multipliedReportingOverflow(by: Int(height) * Int(width))
        let (total, overflow) = Int(count).multipliedReportingOverflow(by: sample)
        guard !sampleOverflow, !overflow, total <= limit else {
            throw ReparoError.invalidArgument("count × C × H × W = \(count) × \(shape) exceeds the limit of \(limit) floats")
        }
        let sampleCount = Int(count)
        for n in 0..<sampleCount {
            let label = labels[n]
            guard label >= 0, label < classes else {
                throw ReparoError.invalidArgument("label \(label) of sample \(n) is outside 0..<\(classes)")
            }
            let base = images + n * sample
            for i in 0..<sample where !base[i].isFinite {
                throw ReparoError.invalidArgument("image value \(base[i]) of sample \(n) is not finite")
            }
        }
        target.pointee = HandleRegistry.shared.register(try DatasetHandle(
            shape: shape, classes: Int(classes), count: sampleCount,
            images: UnsafeBufferPointer(start: images, count: total),
            labels: UnsafeBufferPointer(start: labels, count: sampleCount)))
    }
}

@_cdecl("reparo_dataset_info")
public func reparo_dataset_info(_ dataset: OpaquePointer?, _ count: UnsafeMutablePointer<Int64>?,
                                _ channels: UnsafeMutablePointer<Int32>?, _ height: UnsafeMutablePointer<Int32>?,
                                _ width: UnsafeMutablePointer<Int32>?, _ classes: UnsafeMutablePointer<Int32>?) -> reparo_status {
    guarded("reparo_dataset_info") {
        let dataset = try HandleRegistry.shared.lookup(dataset, as: DatasetHandle.self, "dataset")
        count?.pointee = Int64(dataset.count)
        channels?.pointee = Int32(dataset.shape.channels)
        height?.pointee = Int32(dataset.shape.height)
        width?.pointee = Int32(dataset.shape.width)
        classes?.pointee = Int32(dataset.classes)
    }
}

@_cdecl("reparo_dataset_data")
public func reparo_dataset_data(_ dataset: OpaquePointer?, _ images: UnsafeMutablePointer<UnsafePointer<Float>?>?,
                                _ labels: UnsafeMutablePointer<UnsafePointer<Int32>?>?) -> reparo_status {
    guarded("reparo_dataset_data") {
        let handle = try HandleRegistry.shared.lookup(dataset, as: DatasetHandle.self, "dataset")
        images?.pointee = UnsafePointer(handle.images.pointer)
        labels?.pointee = UnsafePointer(handle.labels)
    }
}

@_cdecl("reparo_dataset_free")
public func reparo_dataset_free(_ dataset: OpaquePointer?) {
    HandleRegistry.shared.unregister(dataset, as: DatasetHandle.self)
}
