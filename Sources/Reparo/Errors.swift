import CReparo
import Foundation
import ReparoCore

/// Thread-local "last error" storage behind `reparo_last_error()`: one malloc'd C string per
/// thread, freed when replaced or when the thread exits.
enum LastError {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { pointer in free(pointer) }
        return key
    }()
    private static let empty = permanentCString("")

    static func set(_ message: String) {
        let old = pthread_getspecific(key)
        pthread_setspecific(key, strdup(message))
        free(old)
    }

    static var current: UnsafePointer<CChar> {
        if let pointer = pthread_getspecific(key) { return UnsafePointer(pointer.assumingMemoryBound(to: CChar.self)) }
        return empty
    }
}

extension ReparoError {
    /// The header's code for this error.
    var status: reparo_status {
        switch self {
        case .invalidArgument: return reparo_status(REPARO_ERR_INVALID_ARGUMENT)
        case .io: return reparo_status(REPARO_ERR_IO)
        case .format: return reparo_status(REPARO_ERR_FORMAT)
        case .state: return reparo_status(REPARO_ERR_STATE)
        case .numeric: return reparo_status(REPARO_ERR_NUMERIC)
        case .outOfMemory: return reparo_status(REPARO_ERR_OUT_OF_MEMORY)
        case .internalError: return reparo_status(REPARO_ERR_INTERNAL)
        }
    }
}

/// Runs one C entry point: maps thrown errors to a status code and records the message.
@inline(__always)
func guarded(_ function: String, _ body: () throws -> Void) -> reparo_status {
    do {
        try body()
        return reparo_status(REPARO_OK)
    } catch let error as ReparoError {
        LastError.set("\(function): \(error.message)")
        return error.status
    } catch {
        LastError.set("\(function): internal error: \(error)")
        return reparo_status(REPARO_ERR_INTERNAL)
    }
}

/// A required C string argument as a Swift String.
func string(_ pointer: UnsafePointer<CChar>?, _ name: String) throws -> String {
    guard let pointer else { throw ReparoError.invalidArgument("\(name) is NULL") }
    guard let text = String(validatingCString: pointer) else {
        throw ReparoError.invalidArgument("\(name) is not valid UTF-8")
    }
    return text
}

/// An optional C string argument (NULL allowed).
func optionalString(_ pointer: UnsafePointer<CChar>?, _ name: String) throws -> String? {
    guard pointer != nil else { return nil }
    return try string(pointer, name)
}

func required<T>(_ pointer: T?, _ name: String) throws -> T {
    guard let pointer else { throw ReparoError.invalidArgument("\(name) is NULL") }
    return pointer
}

/// A required, non-empty path argument (a file to write).
func nonEmptyPath(_ pointer: UnsafePointer<CChar>?) throws -> String {
    let path = try string(pointer, "path")
    guard !path.isEmpty else { throw ReparoError.invalidArgument("path is empty") }
    return path
}
