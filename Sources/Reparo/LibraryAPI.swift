import CReparo
import Foundation
import ReparoCore

/// Process-lifetime C strings (never freed).
func permanentCString(_ text: String) -> UnsafePointer<CChar> {
    let bytes = Array(text.utf8CString)
    let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count)
    pointer.initialize(from: bytes, count: bytes.count)
    return UnsafePointer(pointer)
}

private let versionString = permanentCString(REPARO_VERSION_STRING)
/// The header's codes and their names; anything else is REPARO_ERR_UNKNOWN.
private let statusNames: [reparo_status: UnsafePointer<CChar>] = [
    reparo_status(REPARO_OK): permanentCString("REPARO_OK"),
    reparo_status(REPARO_ERR_INVALID_ARGUMENT): permanentCString("REPARO_ERR_INVALID_ARGUMENT"),
    reparo_status(REPARO_ERR_IO): permanentCString("REPARO_ERR_IO"),
    reparo_status(REPARO_ERR_FORMAT): permanentCString("REPARO_ERR_FORMAT"),
    reparo_status(REPARO_ERR_STATE): permanentCString("REPARO_ERR_STATE"),
    reparo_status(REPARO_ERR_NUMERIC): permanentCString("REPARO_ERR_NUMERIC"),
    reparo_status(REPARO_ERR_OUT_OF_MEMORY): permanentCString("REPARO_ERR_OUT_OF_MEMORY"),
    reparo_status(REPARO_ERR_INTERNAL): permanentCString("REPARO_ERR_INTERNAL"),
]
private let unknownStatus = permanentCString("REPARO_ERR_UNKNOWN")

@_cdecl("reparo_version")
public func reparo_version() -> UnsafePointer<CChar> { versionString }

@_cdecl("reparo_last_error")
public func reparo_last_error() -> UnsafePointer<CChar> { LastError.current }

@_cdecl("reparo_status_name")
public func reparo_status_name(_ status: reparo_status) -> UnsafePointer<CChar> {
    statusNames[status] ?? unknownStatus
}
