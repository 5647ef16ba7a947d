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

/// Runs one C entry point: maps thrown errors to a status code and records the message.
@inline(__always)
func guarded(_ function: String, _ body: () throws -> Void) -> Int32 {
    do {
        try body()
        return 0
    } catch let error as ReparoError {
        LastError.set("\(function): \(error.message)")
        return error.code
    } catch {
        LastError.set("\(function): internal error: \(error)")
        return ReparoError.internalError("").code
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
