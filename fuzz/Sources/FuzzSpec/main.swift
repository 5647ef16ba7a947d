// libFuzzer target: the JSON text a caller passes to reparo_model_create (a spec) and to the
// options parameters of reparo_trainer_create / reparo_prune / reparo_expand /
// reparo_collapse. Compiled into one module with ReparoCore's sources (see fuzz/run.sh).
//
// The bytes are treated as the C layer treats a `const char *`: text up to the first NUL,
// rejected unless valid UTF-8. Every parser sees the text: StrictJSON, the four options
// parsers (for them the oracle is only "no trap, no hang, bounded memory"), and SpecParser; a
// spec that parses must be a fixed point of its own JSON text and equal its reparse, is built
// into a model (the work of reparo_model_create) when under 2 M parameters, and when small
// enough is run once on zeros.

#if canImport(Glibc)
import Glibc
#endif

/// See FuzzLoad: inference is skipped above this cost so that a legal but large model is not
/// reported as a timeout of the harness.
private let inferenceMultiplyAddLimit = 50_000_000

/// Models above this many parameters (as the engine's plan counts them, from the spec alone)
/// are not built: creating a model costs time linear in its size by design (vgg16 at width
/// 1.06, 16.6 M parameters, takes 1.3 s under ASan), and a legal but large model is no
/// finding. Below it, the model and the workspace of a one-image inference are always allocated.
private let parameterLimit = 2_000_000

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSpec(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let end = bytes.firstIndex(of: 0) ?? size
    guard let text = String(validating: UnsafeBufferPointer(rebasing: bytes[0 ..< end]), as: UTF8.self) else { return 0 }

    // The lower layer on its own, at the limits the parsers use.
    _ = try? StrictJSON.parse(text, context: "fuzz", maximumDepth: JSONObject.maximumDepth,
                              maximumLength: JSONObject.maximumLength)

    _ = try? TrainerOptions(json: text)
    _ = try? PruneOptions(json: text)
    _ = try? ExpandOptions(json: text)
    _ = try? CollapseOptions(json: text)

    guard let spec = try? SpecParser.parse(text) else { return 0 }
    // The saved text is the contract, so the text must be a fixed point, and the spec read back
    // must equal the one saved (what a reloaded model's spec is compared with).
    let saved = spec.jsonText
    guard let reparsed = try? SpecParser.parse(saved), reparsed.jsonText == saved, reparsed == spec else {
        fatalError("spec does not survive its JSON round trip: \(saved)")
    }
    // A spec the plan refuses, model creation refuses with the same error (it plans first).
    guard let resolution = try? SpecResolution(spec: spec) else { return 0 }
    _ = resolution.jsonText
    // Building allocates the one-image inference workspace too (`Model.reserveWorkspace`).
    guard resolution.plan.parameters <= parameterLimit, let model = try? Model(spec: spec, seed: 1) else { return 0 }
    guard resolution.plan.tensors == model.parameters.map({ TensorShape(name: $0.name, shape: $0.shape) }) else {
        fatalError("the plan's tensor table differs from the built model's: \(saved)")
    }
    model.threads = 1
    _ = model.describe()
    if model.multiplyAdds <= inferenceMultiplyAddLimit,
       let images = try? FloatBuffer(count: model.inputShape.count),
       let logits = try? FloatBuffer(count: model.classes) {
        try? model.infer(images.pointer, batch: 1, logits: logits.pointer)
    }
    return 0
}
