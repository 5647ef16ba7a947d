/// The 64-bit FNV-1a hash (Fowler–Noll–Vo): fast, deterministic on every platform, not
/// cryptographic. Used to recognize a batch (`TeacherTargetCache`) and a set of settings
/// (the CLI's teacher cache).
public struct FNV1a: Sendable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    /// Mixes in one unit (a byte, or a 32-bit word where speed matters more than the
    /// byte-wise definition).
    @inline(__always)
    public mutating func mix(_ unit: UInt64) {
        value = (value ^ unit) &* 0x0000_0100_0000_01b3
    }

    /// Mixes in every byte of `bytes`.
    public mutating func mix<S: Sequence>(bytes: S) where S.Element == UInt8 {
        for byte in bytes { mix(UInt64(byte)) }
    }
}
