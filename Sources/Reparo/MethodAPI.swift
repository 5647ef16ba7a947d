import Foundation
import ReparoCore

@_cdecl("reparo_prune")
public func reparo_prune(_ dense: OpaquePointer?, _ options: UnsafePointer<CChar>?,
                         _ outPruned: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded("reparo_prune") {
        let target = try output(outPruned, "out_pruned")
        let model = try modelHandle(dense, "dense").model
        let options = try PruneOptions.parse(try optionalString(options, "options_json"))
        let pruned = try Pruning.prune(model, options: options)
        target.pointee = HandleRegistry.shared.register(ModelHandle(pruned))
    }
}

@_cdecl("reparo_expand")
public func reparo_expand(_ model: OpaquePointer?, _ options: UnsafePointer<CChar>?) -> Int32 {
    guarded("reparo_expand") {
        let handle = try modelHandle(model)
        let options = try ExpandOptions.parse(try optionalString(options, "options_json"))
        try handle.replace(try Expansion.expand(handle.model, options: options), by: "reparo_expand")
    }
}

@_cdecl("reparo_collapse")
public func reparo_collapse(_ model: OpaquePointer?, _ options: UnsafePointer<CChar>?) -> Int32 {
    guarded("reparo_collapse") {
        let handle = try modelHandle(model)
        let options = try CollapseOptions.parse(try optionalString(options, "options_json"))
        try handle.replace(try Collapse.collapse(handle.model, options: options), by: "reparo_collapse")
    }
}
