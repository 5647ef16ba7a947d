internal import CReparo

/// Library identity.
public enum Reparo {
    /// `REPARO_VERSION_STRING` of include/reparo.h, the one place the version is written; saved
    /// files record it in their metadata.
    public static let version: String = REPARO_VERSION_STRING
}
