import Foundation
import ReparoCore

@_cdecl("reparo_dataset_load")
public func reparo_dataset_load(_ kind: UnsafePointer<CChar>?, _ path: UnsafePointer<CChar>?, _ split: UnsafePointer<CChar>?,
                                _ outDataset: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded("reparo_dataset_load") {
        let target = try output(outDataset, "out_dataset")
        let dataset = try DatasetCatalog.load(kind: try string(kind, "kind"), path: try optionalString(path, "path"),
                                              split: try string(split, "split"))
        target.pointee = HandleRegistry.shared.register(try DatasetHandle(dataset))
    }
}

@_cdecl("reparo_dataset_info")
public func reparo_dataset_info(_ dataset: OpaquePointer?, _ count: UnsafeMutablePointer<Int64>?,
                                _ channels: UnsafeMutablePointer<Int32>?, _ height: UnsafeMutablePointer<Int32>?,
                                _ width: UnsafeMutablePointer<Int32>?, _ classes: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded("reparo_dataset_info") {
        let dataset = try HandleRegistry.shared.lookup(dataset, as: DatasetHandle.self, "dataset").dataset
        count?.pointee = Int64(dataset.count)
        channels?.pointee = Int32(dataset.shape.channels)
        height?.pointee = Int32(dataset.shape.height)
        width?.pointee = Int32(dataset.shape.width)
        classes?.pointee = Int32(dataset.classes)
    }
}

@_cdecl("reparo_dataset_data")
public func reparo_dataset_data(_ dataset: OpaquePointer?, _ images: UnsafeMutablePointer<UnsafePointer<Float>?>?,
                                _ labels: UnsafeMutablePointer<UnsafePointer<Int32>?>?) -> Int32 {
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
