// libFuzzer target: an ONNX file as reparo_model_import_onnx sees it.
//
// Compiled into the same module as ReparoONNX's sources (see fuzz/run.sh), over SwiftProtobuf
// and ReparoCore as separate modules, so it calls the exact code behind
// reparo_model_import_onnx: the input is written to a scratch directory as "model.onnx" and
// read with ONNXImport.model(path:) (default options), which also reads the external data
// files the model names (ONNXExternalData); beside it lies a fixed 64 KiB "model.onnx.data"
// for mutated external_data entries to point into, and one level up a 1.25 GiB sparse
// "outside.data" that a model must never reach ("../outside.data" is refused): reading all of
// it would exceed -malloc_limit_mb, so such an escape is reported as an OOM. On a model it accepts:
// describe(), an inference of one all-zero image, ONNXExport.data and ONNXImport.model(from:)
// on that export. Invariants checked on every accepted input (a violation traps, and libFuzzer
// saves the input):
//   - a refusal is FORMAT (malformed), INVALID_ARGUMENT (valid but unsupported) or IO (an
//     external data file that is missing or unreadable), never another error;
//   - inference never writes past the logits it was given;
//   - an imported model exports, and the export imports again to the same spec (layer names
//     included: fuzz/README.md finding 1), bit-identical tensors and bit-identical logits
//     (import ∘ export is the identity on what import makes).
// FUZZ_ONNX_VERBOSE=1 prints why each input was refused (for `fuzz/run.sh repro`).

import Foundation
import ReparoCore

#if canImport(Glibc)
import Glibc
#endif

/// The forward pass is skipped above this many multiply-adds (as in the load and spec targets):
/// a legal but large model is slow by design. Import, its allocations and export always run.
private let inferenceMultiplyAddLimit = 50_000_000

private let verbose = getenv("FUZZ_ONNX_VERBOSE").map { String(cString: $0) == "1" } ?? false

/// The per-process scratch directory (…/reparo-fuzz-onnx-<pid>), made on the first input.
private var scratch = ""

/// "model.onnx.data": 16,384 floats (i mod 97)/97 + 0.01 — positive, so they also serve as
/// BatchNorm variances. make_onnx_corpus.py writes the same values for its external-data seed.
private let externalDataCount = 16_384
private let outsideBytes = 5 << 28   // 1.25 GiB, over -malloc_limit_mb=1024

private func makeScratch() {
    let base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
    scratch = "\(base)/reparo-fuzz-onnx-\(getpid())"
    guard mkdir(scratch, 0o700) == 0 || errno == EEXIST, mkdir("\(scratch)/model", 0o700) == 0 || errno == EEXIST else {
        fatalError("cannot create \(scratch)/model")
    }
    var floats = [UInt8]()
    floats.reserveCapacity(4 * externalDataCount)
    for index in 0 ..< externalDataCount {
        let bits = (Float(index % 97) / 97 + 0.01).bitPattern.littleEndian
        withUnsafeBytes(of: bits) { floats.append(contentsOf: $0) }
    }
    write(floats, to: "\(scratch)/model/model.onnx.data")
    let outside = open("\(scratch)/outside.data", O_CREAT | O_WRONLY | O_TRUNC, 0o600)
    guard outside >= 0, ftruncate(outside, off_t(outsideBytes)) == 0, close(outside) == 0 else {
        fatalError("cannot create \(scratch)/outside.data")
    }
    atexit {
        for name in ["model/model.onnx", "model/model.onnx.data", "outside.data"] { _ = unlink("\(scratch)/\(name)") }
        _ = rmdir("\(scratch)/model")
        _ = rmdir(scratch)
    }
}

private func write(_ bytes: [UInt8], to path: String) {
    guard let file = fopen(path, "wb") else { fatalError("cannot create \(path)") }
    guard fwrite(bytes, 1, bytes.count, file) == bytes.count, fclose(file) == 0 else {
        fatalError("cannot write \(path)")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzONNX(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    if scratch.isEmpty { makeScratch() }
    let path = "\(scratch)/model/model.onnx"
    write([UInt8](UnsafeBufferPointer(start: data, count: size)), to: path)
    let model: Model
    do {
        model = try ONNXImport.model(path: path)
    } catch ReparoError.format(let message), ReparoError.invalidArgument(let message), ReparoError.io(let message) {
        if verbose { fputs("refused: \(message)\n", stderr) }
        return 0
    } catch {
        fatalError("the importer refused with an error other than FORMAT, INVALID_ARGUMENT or IO: \(error)")
    }
    model.threads = 1   // one compute thread: libFuzzer runs inputs serially and results must not depend on it
    _ = model.describe()
    let logits = model.multiplyAdds <= inferenceMultiplyAddLimit ? infer(model) : nil
    if verbose { fputs("imported: \(model.spec.layers.count) top-level layers, \(model.multiplyAdds) multiply-adds\n", stderr) }

    let exported: Data
    do {
        exported = try ONNXExport.data(model)
    } catch {
        fatalError("an imported model does not export: \(error)")
    }
    let again: Model
    do {
        again = try ONNXImport.model(from: exported)
    } catch {
        fatalError("the export of an imported model does not import: \(error)")
    }
    again.threads = 1
    guard again.spec == model.spec else {
        fatalError("import ∘ export changed the spec: \(model.spec.jsonText) became \(again.spec.jsonText)")
    }
    checkSameTensors(model.namedTensors, again.namedTensors)
    if let logits, let reimported = infer(again),
       !zip(logits, reimported).allSatisfy({ $0.bitPattern == $1.bitPattern }) {
        fatalError("import ∘ export changed the logits: \(logits) became \(reimported)")
    }
    return 0
}

/// Logits of one all-zero image, with a guard zone after the logits that must stay untouched;
/// nil when the model refuses to run (e.g. a workspace over the engine's limits).
private func infer(_ model: Model) -> [Float]? {
    let guardCount = 64
    let sentinel = Float(bitPattern: 0x7FC0_BEEF)
    guard let images = try? FloatBuffer(count: model.inputShape.count),
          let logits = try? FloatBuffer(count: model.classes + guardCount) else { return nil }
    for index in model.classes ..< model.classes + guardCount { logits.pointer[index] = sentinel }
    do {
        try model.infer(images.pointer, batch: 1, logits: logits.pointer)
    } catch {
        return nil
    }
    for index in model.classes ..< model.classes + guardCount
    where logits.pointer[index].bitPattern != sentinel.bitPattern {
        fatalError("infer wrote past its \(model.classes) logits (index \(index))")
    }
    return Array(UnsafeBufferPointer(start: logits.pointer, count: model.classes))
}

private func checkSameTensors(_ first: [NamedTensor], _ second: [NamedTensor]) {
    guard first.count == second.count else {
        fatalError("import ∘ export changed the tensor count: \(first.count) became \(second.count)")
    }
    for (a, b) in zip(first, second) {
        guard a.name == b.name, a.shape == b.shape else {
            fatalError("import ∘ export changed tensor \(a.name) \(a.shape) into \(b.name) \(b.shape)")
        }
        for index in 0 ..< a.values.count where a.values.pointer[index].bitPattern != b.values.pointer[index].bitPattern {
            fatalError("import ∘ export changed \(a.name)[\(index)]: \(a.values.pointer[index]) became \(b.values.pointer[index])")
        }
    }
}
