// libFuzzer target: a weights file as reparo_model_load sees it.
//
// Compiled into the same module as ReparoCore's sources (see fuzz/run.sh), so it calls the
// exact code behind reparo_model_load: SafeTensors.decode on the bytes, then — when the
// metadata carries a "spec" — SpecParser.parse and Model(spec:tensors:), then an inference on
// zeros and a describe(). Invariants checked on every accepted input (a violation traps, and
// libFuzzer saves the input):
//   - encode(decode(x)) decodes to the same metadata, names, shapes and bit patterns;
//   - a parsed spec survives its own JSON round trip (what save/load relies on);
//   - a loaded model re-saves to an image that loads to bit-identical tensors;
//   - inference never writes past the logits it was given.

#if canImport(Glibc)
import Glibc
#endif

/// Work the harness refuses to start, so that an input which the library accepts by design
/// (sizes within NetworkBuilder's limits) cannot turn into a > 1 s timeout of the harness
/// itself. Parsing and validation still run on such inputs; only the forward pass is skipped.
/// Allocation is not gated: loading allocates the model and the inference workspace of one
/// image (`Model.reserveWorkspace`, which the first reparo_infer then uses), so a file that
/// makes the loader or the first inference allocate more than -malloc_limit_mb /
/// -rss_limit_mb is exactly what the fuzzer reports.
private let inferenceMultiplyAddLimit = 50_000_000

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLoad(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    guard let (metadata, tensors) = try? SafeTensors.decode(bytes) else { return 0 }
    checkRoundTrip(metadata: metadata, tensors: tensors)

    guard let specText = metadata["spec"], let spec = try? SpecParser.parse(specText) else { return 0 }
    // The saved text is the contract, so the text must be a fixed point, and the spec read back
    // must equal the one saved (what a reloaded model's spec is compared with).
    let text = spec.jsonText
    guard let reparsed = try? SpecParser.parse(text), reparsed.jsonText == text, reparsed == spec else {
        fatalError("spec does not survive its JSON round trip: \(text)")
    }
    guard let model = try? Model(spec: spec, tensors: tensors, source: "fuzz") else { return 0 }
    model.threads = 1   // one compute thread: libFuzzer runs inputs serially and results must not depend on it
    _ = model.describe()
    if model.multiplyAdds <= inferenceMultiplyAddLimit {
        infer(model)
    }
    checkSaveLoad(model, specText: text)
    return 0
}

/// Logits on an all-zero image, with a guard zone after the logits that must stay untouched.
private func infer(_ model: Model) {
    let guardCount = 64
    let sentinel = Float(bitPattern: 0x7FC0_BEEF)
    guard let images = try? FloatBuffer(count: model.inputShape.count),
          let logits = try? FloatBuffer(count: model.classes + guardCount) else { return }
    for index in model.classes ..< model.classes + guardCount { logits.pointer[index] = sentinel }
    do {
        try model.infer(images.pointer, batch: 1, logits: logits.pointer)
    } catch {
        return  // a refusal (e.g. a workspace over FloatBuffer.maximumCount) is fine
    }
    for index in model.classes ..< model.classes + guardCount
    where logits.pointer[index].bitPattern != sentinel.bitPattern {
        fatalError("infer wrote past its \(model.classes) logits (index \(index))")
    }
}

private func checkRoundTrip(metadata: [String: String], tensors: [NamedTensor]) {
    let encoded: [UInt8]
    do {
        encoded = try SafeTensors.encode(metadata: metadata, tensors: tensors)
    } catch {
        fatalError("decoded tensors cannot be encoded again: \(error)")
    }
    let decoded: (metadata: [String: String], tensors: [NamedTensor])
    do {
        decoded = try encoded.withUnsafeBytes { try SafeTensors.decode($0) }
    } catch {
        fatalError("re-encoded file does not decode: \(error)")
    }
    guard decoded.metadata == metadata else { fatalError("metadata changed in the round trip") }
    // encode writes in the given order and decode returns file order, so the order is kept.
    guard sameTensors(decoded.tensors, tensors) else { fatalError("tensors changed in the round trip") }
}

private func checkSaveLoad(_ model: Model, specText: String) {
    let metadata = ["format": "reparo", "spec": specText]
    guard let encoded = try? SafeTensors.encode(metadata: metadata, tensors: model.namedTensors) else {
        fatalError("a loaded model cannot be encoded")
    }
    do {
        let (metadata, tensors) = try encoded.withUnsafeBytes { try SafeTensors.decode($0) }
        let spec = try SpecParser.parse(metadata["spec"] ?? "")
        let again = try Model(spec: spec, tensors: tensors, source: "round trip")
        guard sameTensors(again.namedTensors, model.namedTensors) else {
            fatalError("a saved model reloads with different tensors")
        }
    } catch {
        fatalError("a loaded model does not load again after saving: \(error)")
    }
}

/// Same names, shapes and bit patterns (NaN payloads included), in the same order.
private func sameTensors(_ a: [NamedTensor], _ b: [NamedTensor]) -> Bool {
    guard a.count == b.count else { return false }
    for (x, y) in zip(a, b) {
        guard x.name == y.name, x.shape == y.shape, x.values.count == y.values.count else { return false }
        if memcmp(x.values.pointer, y.values.pointer, x.values.count * MemoryLayout<Float>.stride) != 0 { return false }
    }
    return true
}
