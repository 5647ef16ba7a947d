import Foundation
import ReparoCore

/// Process-lifetime C strings (never freed).
func permanentCString(_ text: String) -> UnsafePointer<CChar> {
    let bytes = Array(text.utf8CString)
    let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count)
    pointer.initialize(from: bytes, count: bytes.count)
    return UnsafePointer(pointer)
}

private let versionString = permanentCString(ReparoCore.Reparo.version)
private let statusNames: [UnsafePointer<CChar>] = ([
    "REPARO_OK", "REPARO_ERR_INVALID_ARGUMENT", "REPARO_ERR_IO", "REPARO_ERR_FORMAT", "REPARO_ERR_STATE",
    "REPARO_ERR_NUMERIC", "REPARO_ERR_OUT_OF_MEMORY", "REPARO_ERR_INTERNAL", "REPARO_ERR_UNKNOWN",
] as [String]).map(permanentCString)

@_cdecl("reparo_version")
public func reparo_version() -> UnsafePointer<CChar> { versionString }

@_cdecl("reparo_last_error")
public func reparo_last_error() -> UnsafePointer<CChar> { LastError.current }

@_cdecl("reparo_status_name")
public func reparo_status_name(_ status: Int32) -> UnsafePointer<CChar> {
    let index = (0...7).contains(status) ? Int(status) : 8
    return statusNames[index]
}
