// libFuzzer target: IDX dataset files, plain and gzipped, as reparo_dataset_load reads them
// ("digits", "mnist", "fashion-mnist" all end in DatasetReader.readIDX).
//
// Compiled into the same module as ReparoCore's sources (see fuzz/run.sh). readIDX reads
// paths, so each input is written to scratch files (one set per process, reused) and read
// both as the image file and as the label file, in three forms:
//   1. as it is, plain (hostile IDX headers and payloads);
//   2. as it is, named *.gz (hostile gzip streams: truncated, corrupt, lying trailers, members);
//   3. gzipped by the harness (zlib's deflate) and named *.gz: hostile IDX contents inside a
//      valid gzip stream, so the lying-header paths of the gzip reader are reached.
// The other file of the pair is written valid, with as many samples as the input's header
// declares (when it can be read and is small), so the reader gets past the count check.
// Oracles besides "no trap, no ASan report, bounded memory and time":
//   - form 3 reads exactly as form 1 does (the same dataset, or an error of the same case);
//   - form 2 reads as the bytes it inflates to (inflated here in one go, member by member)
//     read plain, and when it does not inflate to whole members it is a .format error.

#if canImport(Glibc)
import Glibc
#endif
import CZlib

/// Companion files are written for at most this many samples (an input of a few KB cannot
/// declare more and hold them; larger counts only slow the harness down).
private let companionLimit = 1 << 16
/// The harness's own inflate stops here (libFuzzer's inputs are a few KB; 1032:1 bounds them).
private let inflateLimit = 16 << 20

private var scratch = ""

private enum Role: CaseIterable { case images, labels }

/// What a read gave: the dataset, or the case of the error.
private enum Outcome: Equatable {
    case dataset(shape: FeatureShape, images: [Float], labels: [Int32])
    case failure(String)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIDX(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    if scratch.isEmpty {
        let directory = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
        scratch = "\(directory)/reparo-fuzz-idx-\(getpid())"
        atexit {
            for name in ["input", "input.gz", "other"] { _ = unlink("\(scratch)-\(name)") }
        }
    }
    let input = [UInt8](UnsafeBufferPointer(start: data, count: size))
    let compressed = gzip(input)
    let inflated = gunzip(input)
    for role in Role.allCases {
        let plain = read(input, named: "input", as: role)
        if let compressed {
            let outcome = read(compressed, named: "input.gz", as: role)
            guard outcome == plain else { fatalError("gzip(input) as \(role): \(outcome), plain: \(plain)") }
        }
        let raw = read(input, named: "input.gz", as: role)
        switch inflated {
        case .whole(let bytes):
            let expected = read(bytes, named: "input", as: role)
            guard raw == expected else { fatalError("input.gz as \(role): \(raw), inflated: \(expected)") }
        case .broken:
            guard raw == .failure("format") else { fatalError("input.gz as \(role) does not inflate, yet reads as \(raw)") }
        case .tooLarge:
            break
        }
    }
    return 0
}

/// Writes `bytes` to the scratch file `name` in `role`, a valid file beside it in the other
/// role, and reads the pair with readIDX.
private func read(_ bytes: [UInt8], named name: String, as role: Role) -> Outcome {
    let path = "\(scratch)-\(name)", other = "\(scratch)-other"
    write(bytes, to: path)
    let magic: UInt32 = role == .images ? 0x0000_0803 : 0x0000_0801
    var count = 1
    if let header = try? IDXHeader(from: openByteStream(path), magic: magic), header.dims[0] <= companionLimit {
        count = header.dims[0]
    }
    // Images 1×1 and labels all 0: valid whatever the count.
    let rank: UInt32 = role == .images ? 1 : 3
    write(bigEndian(0x0000_0800 | rank) + bigEndian(UInt32(count)) + (role == .images ? [] : bigEndian(1) + bigEndian(1))
          + [UInt8](repeating: 0, count: count), to: other)
    do {
        let dataset = role == .images
            ? try DatasetReader.readIDX(images: path, labels: other, pixelScale: 255)
            : try DatasetReader.readIDX(images: other, labels: path, pixelScale: 255)
        return .dataset(shape: dataset.shape, images: dataset.images, labels: dataset.labels)
    } catch let error as ReparoError {
        switch error {
        case .format: return .failure("format")
        case .io: return .failure("io")
        default: return .failure("\(error)")
        }
    } catch {
        fatalError("readIDX threw a non-ReparoError: \(error)")
    }
}

private func bigEndian(_ value: UInt32) -> [UInt8] {
    [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
}

private func write(_ bytes: [UInt8], to path: String) {
    guard let file = fopen(path, "wb") else { fatalError("cannot create \(path)") }
    guard fwrite(bytes, 1, bytes.count, file) == bytes.count, fclose(file) == 0 else {
        fatalError("cannot write \(path)")
    }
}

/// One gzip member holding `bytes` (zlib's deflate; 16 + MAX_WBITS: the gzip wrapper).
private func gzip(_ bytes: [UInt8]) -> [UInt8]? {
    let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)  // zlib keeps its address
    stream.initialize(to: z_stream())
    defer { stream.deallocate() }
    guard deflateInit2_(stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY,
                        zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return nil }
    defer { deflateEnd(stream) }
    var output = [UInt8](repeating: 0, count: Int(deflateBound(stream, uLong(bytes.count))) + 32)
    var input = bytes
    let status = input.withUnsafeMutableBufferPointer { source in
        output.withUnsafeMutableBufferPointer { target in
            stream.pointee.next_in = source.baseAddress
            stream.pointee.avail_in = uInt(source.count)
            stream.pointee.next_out = target.baseAddress
            stream.pointee.avail_out = uInt(target.count)
            return deflate(stream, Z_FINISH)
        }
    }
    guard status == Z_STREAM_END else { return nil }
    return Array(output.prefix(Int(stream.pointee.total_out)))
}

/// What the harness's own inflate makes of a gzip file.
private enum Inflation {
    /// Whole members only (the rule GzipFile follows): what they hold.
    case whole([UInt8])
    /// Truncated, corrupt, or followed by something that is not a member.
    case broken
    /// Larger than `inflateLimit`: not compared.
    case tooLarge
}

/// Inflates `bytes` member after member until the input is used up.
private func gunzip(_ bytes: [UInt8]) -> Inflation {
    guard !bytes.isEmpty else { return .broken }
    let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    stream.initialize(to: z_stream())
    defer { stream.deallocate() }
    guard inflateInit2_(stream, 16 + MAX_WBITS, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
        fatalError("inflateInit2 failed")
    }
    defer { inflateEnd(stream) }
    var output = [UInt8]()
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    var input = bytes
    return input.withUnsafeMutableBufferPointer { source -> Inflation in
        stream.pointee.next_in = source.baseAddress
        stream.pointee.avail_in = uInt(source.count)
        while true {
            let (status, produced) = buffer.withUnsafeMutableBufferPointer { target -> (Int32, Int) in
                stream.pointee.next_out = target.baseAddress
                stream.pointee.avail_out = uInt(target.count)
                let status = inflate(stream, Z_NO_FLUSH)
                return (status, target.count - Int(stream.pointee.avail_out))
            }
            output += buffer.prefix(produced)
            guard output.count <= inflateLimit else { return .tooLarge }
            switch status {
            case Z_OK:
                continue
            case Z_STREAM_END where stream.pointee.avail_in == 0:
                return .whole(output)
            case Z_STREAM_END:
                guard inflateReset(stream) == Z_OK else { fatalError("inflateReset failed") }
            default:  // Z_BUF_ERROR: truncated; Z_DATA_ERROR: corrupt
                return .broken
            }
        }
    }
}
