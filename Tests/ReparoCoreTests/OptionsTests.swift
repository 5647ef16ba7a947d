import Testing
@testable import ReparoCore

// Ranges are written out from reparo.h's documentation of each option.

@Suite("Option structs validate in their initializers; JSON decodes into them")
struct OptionsTests {
    @Test("initializers reject out-of-range values with the JSON key's name")
    func ranges() throws {
        #expect(throws: ReparoError.invalidArgument("options.ratio: 1.5 is out of range 0.0...1.0")) { try PruneOptions(ratio: 1.5) }
        #expect(throws: ReparoError.invalidArgument("options.layers.b: -0.1 is out of range 0.0...1.0")) {
            try PruneOptions(layerRatios: ["a": 0.5, "b": -0.1])
        }
        #expect(throws: ReparoError.self) { try PruneOptions(ratio: .nan) }
        #expect(throws: ReparoError.invalidArgument("options.rate: 0 is out of range 1...16")) { try ExpandOptions(rate: 0) }
        #expect(throws: ReparoError.invalidArgument("options.rate: 17 is out of range 1...16")) { try ExpandOptions(rate: 17) }
        #expect(throws: ReparoError.invalidArgument("options.lr: 0.0 is out of range 1e-12...100.0")) { try TrainerOptions(learningRate: 0) }
        #expect(throws: ReparoError.invalidArgument("options.momentum: 1.0 is out of range 0.0...0.999999")) { try TrainerOptions(momentum: 1) }
        #expect(throws: ReparoError.invalidArgument("options.threads: 257 is out of range 0...256")) { try TrainerOptions(threads: 257) }
        #expect(throws: ReparoError.invalidArgument("options.gamma: 2.0 is out of range 0.0...1.0")) {
            try TrainerOptions(schedule: .step(every: 10, gamma: 2))
        }
        #expect(throws: ReparoError.invalidArgument(#"options.total_steps: required (> 0) with "schedule": "cosine""#)) {
            try TrainerOptions(schedule: .cosine(totalSteps: 0))
        }
        #expect(throws: ReparoError.invalidArgument("options.kd_weight: -1.0 is out of range 0.0...1000000000.0")) {
            try TrainerOptions(kdWeight: -1)
        }
        #expect(throws: ReparoError.invalidArgument("options.augment.crop_padding: 65 is out of range 0...64")) {
            try TrainerOptions(cropPadding: 65)
        }
        // The limits themselves are accepted.
        _ = try TrainerOptions(learningRate: 100, momentum: 0.999999, weightDecay: 1, schedule: .cosine(totalSteps: 1_000_000_000),
                               cropPadding: 64, kdWeight: 1e9, clipNorm: 1e9, threads: 256)
        _ = try ExpandOptions(rate: 16)
    }

    @Test("JSON gives the same struct as the initializer; absent keys are the initializer's defaults")
    func decoding() throws {
        #expect(try TrainerOptions(json: nil) == TrainerOptions())
        #expect(try TrainerOptions(json: " ") == TrainerOptions())
        let json = #"{"lr":0.1,"momentum":0.5,"nesterov":true,"weight_decay":0,"schedule":"step","step_size":7,"gamma":0.5,"# +
            #""augment":{"crop_padding":4,"flip":true},"kd_weight":30,"kd_layers":["a","b"],"clip_norm":5,"seed":9,"# +
            #""threads":2,"chain_mode":"online"}"#
        #expect(try TrainerOptions(json: json) == TrainerOptions(
            learningRate: 0.1, momentum: 0.5, nesterov: true, weightDecay: 0, schedule: .step(every: 7, gamma: 0.5),
            cropPadding: 4, flip: true, kdWeight: 30, kdLayers: .names(["a", "b"]), clipNorm: 5, seed: 9, threads: 2,
            chainMode: .online))
        #expect(try TrainerOptions(json: #"{"schedule":"cosine","total_steps":5,"kd_layers":"all"}"#)
                == TrainerOptions(schedule: .cosine(totalSteps: 5), kdLayers: .all))
        #expect(try PruneOptions(json: #"{"ratio":0.25,"criterion":"bn_gamma","seed":3,"residual":"coupled","layers":{"x":0.5}}"#)
                == PruneOptions(ratio: 0.25, criterion: .batchNormGamma, seed: 3, layerRatios: ["x": 0.5], residual: .coupled))
        #expect(try PruneOptions(json: nil) == PruneOptions())
        #expect(try ExpandOptions(json: #"{"rate":2,"layers":"all","seed":5}"#) == ExpandOptions(rate: 2, layers: .all, seed: 5))
        #expect(try ExpandOptions(json: #"{"layers":["c"]}"#) == ExpandOptions(layers: .names(["c"])))
        #expect(try CollapseOptions(json: #"{"fold_batchnorm":true}"#) == CollapseOptions(foldBatchNorm: true))
    }

    @Test("JSON errors name the key", arguments: [
        (#"{"gamma":5}"#, "options.gamma: 5.0 is out of range 0.0...1.0"),      // checked even when the schedule ignores it
        (#"{"kd_layers":"some"}"#, #"options.kd_layers: "some" is not "pruned", "all" or a list of layer names"#),
        (#"{"kd_layers":[1]}"#, "options.kd_layers[0]: expected a layer name"),
        (#"{"augment":{"rotate":5}}"#, #"options.augment: unknown key "rotate""#),
        (#"{"lr":"fast"}"#, "options.lr: expected a number"),
        (#"{"seed":-1}"#, "options.seed: -1 is out of range 0...9223372036854775807"),
        (#"{"speed":1,"lr":0.1}"#, #"options: unknown key "speed""#),
    ])
    func trainerErrors(json: String, message: String) {
        #expect(throws: ReparoError.invalidArgument(message)) { try TrainerOptions(json: json) }
    }

    @Test("expand and prune JSON errors name the key")
    func methodErrors() {
        #expect(throws: ReparoError.invalidArgument(#"options.layers: expected "conv", "all" or a list of layer names"#)) {
            try ExpandOptions(json: #"{"layers":3}"#)
        }
        #expect(throws: ReparoError.invalidArgument("options.layers.b: 2.0 is out of range 0.0...1.0")) {
            try PruneOptions(json: #"{"layers":{"a":0.5,"b":2}}"#)
        }
        #expect(throws: ReparoError.invalidArgument(#"options.fold_batchnorm: expected true or false"#)) {
            try CollapseOptions(json: #"{"fold_batchnorm":"yes"}"#)
        }
    }
}
