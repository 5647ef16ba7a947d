/// Turns user JSON (a preset or a generic layer list, or a resolved spec read back from a
/// weights file) into a resolved `ModelSpec`. Sizes are range-checked here; shape
/// consistency is checked when the network is built.
public enum SpecParser {
    static let channelRange = 1...65_536
    static let spatialRange = 1...4_096

    public static func parse(_ text: String) throws -> ModelSpec {
        guard !text.allSatisfy(\.isWhitespace) else { throw ReparoError.invalidArgument("spec: empty") }
        var object = try JSONObject.parse(text, context: "spec")
        return try parse(&object)
    }

    static func parse(_ object: inout JSONObject) throws -> ModelSpec {
        let classes = try object.int("classes", default: 10, in: 1...100_000)
        let input = try parseInput(&object)
        let state = try ModelState(rawValue: object.string("state", default: "dense",
                                                            allowed: ModelState.allCases.map(\.rawValue))) ?? .dense
        if let preset = try object.optionalString("preset", allowed: Presets.names) {
            let width = try object.double("width", default: 1.0, in: 0.01...16)
            guard !object.has("layers") else {
                throw ReparoError.invalidArgument("spec: give either \"preset\" or \"layers\", not both")
            }
            try object.finish()
            return try Presets.spec(preset, input: input ?? FeatureShape(channels: 3, height: 32, width: 32),
                                    classes: classes, width: width)
        }
        guard let layers = try object.optionalArray("layers") else {
            throw ReparoError.invalidArgument("spec: needs \"preset\" or \"layers\"")
        }
        guard let input else { throw ReparoError.invalidArgument("spec.input: required with \"layers\" ([C, H, W])") }
        guard !layers.isEmpty else { throw ReparoError.invalidArgument("spec.layers: empty") }
        try object.finish()
        var channels = input.channels
        var parsed: [LayerSpec] = []
        for (index, value) in layers.enumerated() {
            parsed.append(try parseLayer(value, context: "spec.layers[\(index)]", defaultName: "layers.\(index)",
                                         inputChannels: &channels))
        }
        return ModelSpec(input: input, classes: classes, state: state, layers: parsed)
    }

    static func parseInput(_ object: inout JSONObject) throws -> FeatureShape? {
        guard let values = try object.optionalArray("input") else { return nil }
        guard values.count == 3 else { throw ReparoError.invalidArgument("spec.input: expected [C, H, W]") }
        let c = try JSONObject.integer(values[0], name: "spec.input[0]", in: 1...4_096)
        let h = try JSONObject.integer(values[1], name: "spec.input[1]", in: spatialRange)
        let w = try JSONObject.integer(values[2], name: "spec.input[2]", in: spatialRange)
        return FeatureShape(channels: c, height: h, width: w)
    }

    /// Parses one layer; `inputChannels` tracks channel counts so a basic block knows whether
    /// it needs a projection shortcut.
    static func parseLayer(_ value: JSONValue, context: String, defaultName: String, inputChannels: inout Int) throws -> LayerSpec {
        var object = try JSONObject(value, context: context)
        let typeName = try object.optionalString("type", allowed: LayerSpec.Kind.allCases.map(\.rawValue))
        guard let typeName, let kind = LayerSpec.Kind(rawValue: typeName) else {
            throw ReparoError.invalidArgument("\(context).type: required")
        }
        let name = try object.string("name", default: defaultName)
        guard !name.isEmpty, name.count <= 200, !name.contains("\"") else {
            throw ReparoError.invalidArgument("\(context).name: must be 1 to 200 characters without quotes")
        }
        let spec: LayerSpec
        switch kind {
        case .conv:
            let out = try object.int("out", default: 0, in: channelRange)
            let window = Window(kernel: try object.int("kernel", default: 3, in: 1...31),
                                stride: try object.int("stride", default: 1, in: 1...16),
                                padding: try object.int("padding", default: 0, in: 0...15))
            let bias = try object.bool("bias", default: false)
            spec = LayerSpec(name, .conv(.init(out: out, bias: bias, chain: try parseChain(&object)), window))
            inputChannels = out
        case .linear:
            let out = try object.int("out", default: 0, in: channelRange)
            let bias = try object.bool("bias", default: true)
            spec = LayerSpec(name, .linear(.init(out: out, bias: bias, chain: try parseChain(&object))))
            inputChannels = out
        case .maxpool:
            let kernel = try object.int("kernel", default: 2, in: 1...64)
            spec = .pool(.maxpool, name, kernel: kernel, stride: try object.int("stride", default: kernel, in: 1...64),
                         padding: try object.int("padding", default: 0, in: 0...32))   // ≤ kernel/2: outputShape
        case .avgpool:
            guard !object.has("padding") else {
                throw ReparoError.invalidArgument("\(context).padding: average pooling takes no padding (max pooling does)")
            }
            if let kernel = try object.optionalInt("kernel", in: 1...64) {
                spec = .pool(.avgpool, name, kernel: kernel, stride: try object.int("stride", default: kernel, in: 1...64))
            } else {
                spec = .pool(.avgpool, name)   // global, as the presets make it
            }
        case .batchnorm:
            spec = LayerSpec(name, .batchnorm)
        case .relu:
            spec = LayerSpec(name, .relu)
        case .flatten:
            spec = LayerSpec(name, .flatten)
        case .basicBlock:
            if object.has("main") {
                let main = try parseList(&object, key: "main", prefix: name, inputChannels: inputChannels)
                let shortcut = try parseList(&object, key: "shortcut", prefix: name, inputChannels: inputChannels)
                spec = LayerSpec(name, .basicBlock(main: main, shortcut: shortcut))
                inputChannels = main.last(where: { $0.kind == .conv })?.out ?? inputChannels
            } else {
                let out = try object.int("out", default: inputChannels, in: channelRange)
                let stride = try object.int("stride", default: 1, in: 1...16)
                spec = basicBlock(name, inputChannels: inputChannels, out: out, stride: stride)
                inputChannels = out
            }
        }
        try object.finish()
        if (kind == .conv || kind == .linear) && spec.out == 0 {
            throw ReparoError.invalidArgument("\(context).out: required")
        }
        return spec
    }

    static func parseChain(_ object: inout JSONObject) throws -> [Int]? {
        guard let values = try object.optionalArray("chain") else { return nil }
        guard values.count == 2 else { throw ReparoError.invalidArgument("\(object.context).chain: expected [hidden_in, hidden_out]") }
        return try values.enumerated().map { try JSONObject.integer($1, name: "\(object.context).chain[\($0)]", in: channelRange) }
    }

    static func parseList(_ object: inout JSONObject, key: String, prefix: String, inputChannels: Int) throws -> [LayerSpec] {
        let values = try object.optionalArray(key) ?? []
        var channels = inputChannels
        return try values.enumerated().map { index, value in
            try parseLayer(value, context: "\(object.context).\(key)[\(index)]", defaultName: "\(prefix).\(key).\(index)",
                           inputChannels: &channels)
        }
    }

    /// conv3×3(stride)-BN-ReLU-conv3×3-BN, with a 1×1 conv + BN projection shortcut when the
    /// stride or the channel count changes.
    public static func basicBlock(_ name: String, inputChannels: Int, out: Int, stride: Int) -> LayerSpec {
        let main: [LayerSpec] = [
            .conv("\(name).conv1", out: out, kernel: 3, stride: stride, padding: 1),
            LayerSpec("\(name).bn1", .batchnorm),
            LayerSpec("\(name).relu", .relu),
            .conv("\(name).conv2", out: out, kernel: 3, stride: 1, padding: 1),
            LayerSpec("\(name).bn2", .batchnorm),
        ]
        var shortcut: [LayerSpec] = []
        if stride != 1 || inputChannels != out {
            shortcut = [
                .conv("\(name).shortcut.0", out: out, kernel: 1, stride: stride, padding: 0),
                LayerSpec("\(name).shortcut.1", .batchnorm),
            ]
        }
        return LayerSpec(name, .basicBlock(main: main, shortcut: shortcut))
    }
}
