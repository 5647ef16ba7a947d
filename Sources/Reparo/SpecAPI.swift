import CReparo
import Foundation
import ReparoCore

@_cdecl("reparo_spec_resolve")
public func reparo_spec_resolve(_ spec: UnsafePointer<CChar>?, _ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int,
                                _ outLength: UnsafeMutablePointer<Int>?) -> reparo_status {
    guarded("reparo_spec_resolve") {
        let text = try string(spec, "spec_json")
        try checkTextBuffer(buffer, capacity: capacity)
        copyText(try SpecResolution(specJSON: text).jsonText, to: buffer, capacity: capacity, length: outLength)
    }
}
