import CReparo
import Foundation
import ReparoCore

@_cdecl("reparo_prune")
public func reparo_prune(_ dense: OpaquePointer?, _ options: UnsafePointer<CChar>?,
                         _ outPruned: UnsafeMutablePointer<OpaquePointer?>?) -> reparo_status {
    guarded("reparo_prune") {
        let target = try output(outPruned, "out_pruned")
        let model = try modelHandle(dense, "dense").model
        let options = try PruneOptions(json: try optionalString(options, "options_json"))
        let pruned = try Pruning.prune(model, options: options)
        target.pointee = HandleRegistry.shared.register(ModelHandle(pruned))
    }
}

@_cdecl("reparo_expand")
public func reparo_expand(_ model: OpaquePointer?, _ options: UnsafePointer<CChar>?) -> reparo_status {
    guarded("reparo_expand") {
        try replaceModel(model, by: "reparo_expand") {
            try Expansion.expand($0, options: ExpandOptions(json: try optionalString(options, "options_json")))
        }
    }
}

@_cdecl("reparo_collapse")
public func reparo_collapse(_ model: OpaquePointer?, _ options: UnsafePointer<CChar>?) -> reparo_status {
    guarded("reparo_collapse") {
        try replaceModel(model, by: "reparo_collapse") {
            try Collapse.collapse($0, options: CollapseOptions(json: try optionalString(options, "options_json")))
        }
    }
}

/// Replaces the model behind `pointer` with `transform(model)`; the handle stays the same.
private func replaceModel(_ pointer: OpaquePointer?, by function: String, _ transform: (Model) throws -> Model) throws {
    let handle = try modelHandle(pointer)
    try handle.replace(try transform(handle.model), by: function)
}
