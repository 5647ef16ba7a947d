import CReparo
import ReparoCore

@_cdecl("reparo_system_info")
public func reparo_system_info(_ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int,
                               _ outLength: UnsafeMutablePointer<Int>?) -> reparo_status {
    guarded("reparo_system_info") {
        try checkTextBuffer(buffer, capacity: capacity)
        copyText(JSONWriter.text(ComputeEnvironment.json), to: buffer, capacity: capacity, length: outLength)
    }
}
