/// Every failure the engine reports. The C layer (Sources/Reparo/Errors.swift) maps each case to
/// the header's `REPARO_ERR_*` code and its message to `reparo_last_error()`.
public enum ReparoError: Error, Equatable, CustomStringConvertible {
    /// A caller-supplied value is wrong (NULL, size, shape, option, spec field).
    case invalidArgument(String)
    /// The file system refused (missing file, directory, permissions, short write).
    case io(String)
    /// A file's contents are malformed (weights, dataset, spec in metadata).
    case format(String)
    /// The call does not fit the object's state (e.g. collapse of a model that is not expanded).
    case state(String)
    /// A loss or gradient is not finite; nothing was changed.
    case numeric(String)
    /// An allocation failed or would exceed the engine's size limits.
    case outOfMemory(String)
    /// A bug in Reparo: please report it.
    case internalError(String)

    public var message: String {
        switch self {
        case .invalidArgument(let m), .io(let m), .format(let m), .state(let m),
             .numeric(let m), .outOfMemory(let m), .internalError(let m):
            return m
        }
    }

    public var description: String { message }
}
