/// Every failure the engine reports. The C layer maps each case to a `reparo_status` code
/// (see include/reparo.h) and its message to `reparo_last_error()`.
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

    /// The `reparo_status` value of this error (REPARO_ERR_*).
    public var code: Int32 {
        switch self {
        case .invalidArgument: return 1
        case .io: return 2
        case .format: return 3
        case .state: return 4
        case .numeric: return 5
        case .outOfMemory: return 6
        case .internalError: return 7
        }
    }

    public var message: String {
        switch self {
        case .invalidArgument(let m), .io(let m), .format(let m), .state(let m),
             .numeric(let m), .outOfMemory(let m), .internalError(let m):
            return m
        }
    }

    public var description: String { message }
}
