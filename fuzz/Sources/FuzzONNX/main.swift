// libFuzzer target: an ONNX file as reparo_model_import_onnx sees it.
//
// Compiled into the same module as ReparoONNX's sources (see fuzz/run.sh), over SwiftProtobuf
// and ReparoCore as separate modules, so it calls the exact code behind
// reparo_model_import_onnx: ONNXImport.model(from:) on the bytes (default options), then, on
// a model it accepts, describe(), an inference of one all-zero image and ONNXExport.data.
// Invariants checked on every accepted input (a violation traps, and libFuzzer saves the input):
//   - a refusal is FORMAT (malformed) or INVALID_ARGUMENT (valid but unsupported), never
//     another error;
//   - inference never writes past the logits it was given;
//   - an imported model exports, and the export imports again to the same spec, bit-identical
//     tensors and bit-identical logits (import ∘ export is the identity on what import makes).
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

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzONNX(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    let model: Model
    do {
        model = try ONNXImport.model(from: bytes)
    } catch ReparoError.format(let message), ReparoError.invalidArgument(let message) {
        if verbose { fputs("refused: \(message)\n", stderr) }
        return 0
    } catch {
        fatalError("the importer refused with an error other than FORMAT or INVALID_ARGUMENT: \(error)")
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
