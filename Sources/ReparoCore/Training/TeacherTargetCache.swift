/// The teacher's side of SP-KD for batches already seen: per distillation pair, the
/// row-normalized Gram matrix `[b, b]` of the teacher's activations. Those depend only on the
/// frozen teacher, the layer and the batch, so several students fine-tuned on the same batches
/// (an ablation: every ratio and variant of one seed) can share them, and all but the first
/// skip the teacher's forward pass and its Gram matrices — with bit-identical results, since
/// the stored values are the ones the first trainer computed.
///
/// A batch is recognized by a 64-bit FNV-1a hash of its input bytes (after augmentation)
/// together with its size and the teacher layers asked for; a false match needs a 64-bit hash
/// collision among the cached batches (≈ n²/2⁶⁵: 10⁻¹² for 6,000 batches). Entries are kept up
/// to `capacityBytes`; later batches are computed as usual and not stored. Attach it with
/// `Trainer.useTeacherTargets(_:)`. One thread at a time, like a trainer.
public final class TeacherTargetCache {
    /// The teacher whose targets these are; a trainer with another teacher refuses the cache.
    public let teacher: Model
    public let capacityBytes: Int
    public private(set) var storedBytes = 0
    /// Lookups answered from the cache, and lookups that were not.
    public private(set) var hits = 0
    public private(set) var misses = 0

    struct Key: Hashable {
        var hash: UInt64
        var batch: Int
        var teacherLayers: [Int]
    }

    private var entries: [Key: [Float]] = [:]

    public init(teacher: Model, capacityBytes: Int = 1 << 30) {
        self.teacher = teacher
        self.capacityBytes = max(0, capacityBytes)
    }

    static func key(input: UnsafePointer<Float>, count: Int, batch: Int, teacherLayers: [Int]) -> Key {
        var hash = FNV1a()
        UnsafeRawPointer(input).withMemoryRebound(to: UInt32.self, capacity: count) { words in
            for i in 0..<count { hash.mix(UInt64(words[i])) }
        }
        return Key(hash: hash.value, batch: batch, teacherLayers: teacherLayers)
    }

    /// The stored Gram matrices for `key` (pairs × b × b, in pair order), counting the lookup.
    func targets(_ key: Key) -> [Float]? {
        if let found = entries[key] {
            hits += 1
            return found
        }
        misses += 1
        return nil
    }

    /// Whether an entry of `count` floats still fits.
    func hasRoom(forFloats count: Int) -> Bool {
        storedBytes + count * MemoryLayout<Float>.stride <= capacityBytes
    }

    func store(_ key: Key, _ values: [Float]) {
        guard entries[key] == nil, hasRoom(forFloats: values.count) else { return }
        entries[key] = values
        storedBytes += values.count * MemoryLayout<Float>.stride
    }
}
