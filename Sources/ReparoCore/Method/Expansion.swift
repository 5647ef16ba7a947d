/// Linear over-parameterization (step 2 of the method). Each selected compact layer with
/// weight W becomes a chain whose product is W, so the network's function is unchanged:
///   conv W [Cout, Cin, k, k] → 1×1 Q [r·Cin, Cin] → k×k P·W[:,:,u,v]·Qᵀ [r·Cout, r·Cin] → 1×1 Pᵀ [Cout, r·Cout]
/// with random semi-orthogonal Q, P (QᵀQ = I, PᵀP = I), so Pᵀ·(P·W·Qᵀ)·Q = W exactly while
/// every factor is dense and random (no all-zero blocks whose gradients would stay zero).
/// Linear layers the same way with k = 1. The chain shape follows ExpandNets (Guo et al.,
/// NeurIPS 2020); the paper (Qian et al. 2022) gives no more detail than its abstract.
public enum Expansion {
    public static func expand(_ model: Model, options: ExpandOptions) throws -> Model {
        guard model.state != .expanded else {
            throw ReparoError.state("the model is already expanded; collapse it first")
        }
        var spec = model.spec
        var table = try TensorTable(model)
        var generator = SeededGenerator(seed: options.seed)
        var requested: Set<String> = []
        if case .names(let names) = options.layers { requested = Set(names) }
        var found: Set<String> = []
        var expanded = 0
        try spec.layers.rewriteAll { layer in
            guard let weight = layer.weight, weight.chain == nil else { return }
            switch options.layers {
            case .convolutions: guard layer.kind == .conv else { return }
            case .all: break
            case .names: guard requested.contains(layer.name) else { return }
                found.insert(layer.name)
            }
            try expandLayer(&layer, table: &table, rate: options.rate, generator: &generator)
            expanded += 1
        }
        if let missing = requested.subtracting(found).sorted().first {
            throw ReparoError.invalidArgument("options.layers: \"\(missing)\" is not a conv or linear layer of the model")
        }
        guard expanded > 0 else { throw ReparoError.invalidArgument("options.layers: selects no layer to expand") }
        spec.state = .expanded
        return try Model(spec: spec, tensors: table.all, source: "expand")
    }

    static func expandLayer(_ layer: inout LayerSpec, table: inout TensorTable, rate: Int,
                            generator: inout SeededGenerator) throws {
        let weight = try table.get(TensorName.weight(layer.name))
        let outputs = weight.shape[0], inputs = weight.shape[1]
        let taps = weight.shape.count == 4 ? weight.shape[2] * weight.shape[3] : 1
        let hiddenIn = rate * inputs, hiddenOut = rate * outputs
        let q = DoubleMatrix.semiOrthogonal(rows: hiddenIn, columns: inputs, generator: &generator)
        let p = DoubleMatrix.semiOrthogonal(rows: hiddenOut, columns: outputs, generator: &generator)
        let w = weight.values.doubles
        // Middle factor [hiddenOut, hiddenIn, taps]: at each tap P · W_tap · Qᵀ.
        var middle = [Double](repeating: 0, count: hiddenOut * hiddenIn * taps)
        for tap in 0..<taps {
            var wTap = [Double](repeating: 0, count: outputs * inputs)
            for o in 0..<outputs { for i in 0..<inputs { wTap[o * inputs + i] = w[(o * inputs + i) * taps + tap] } }
            let pw = DoubleMatrix.multiply(p, wTap, m: hiddenOut, n: inputs, k: outputs)
            let pwq = DoubleMatrix.multiply(pw, q, m: hiddenOut, n: hiddenIn, k: inputs, transposeB: true)
            for o in 0..<hiddenOut { for i in 0..<hiddenIn { middle[(o * hiddenIn + i) * taps + tap] = pwq[o * hiddenIn + i] } }
        }
        var pTransposed = [Double](repeating: 0, count: outputs * hiddenOut)
        for r in 0..<hiddenOut { for c in 0..<outputs { pTransposed[c * hiddenOut + r] = p[r * outputs + c] } }
        let spatial = weight.shape.count == 4
        let kernel = spatial ? Array(weight.shape[2...]) : []
        let unit = spatial ? [1, 1] : []
        let factors = (0..<3).map { TensorName.factor(layer.name, $0) }
        table.remove(TensorName.weight(layer.name))
        table.set(TensorName.weight(factors[0]), shape: [hiddenIn, inputs] + unit, values: try FloatBuffer(doubles: q))
        table.set(TensorName.weight(factors[1]), shape: [hiddenOut, hiddenIn] + kernel, values: try FloatBuffer(doubles: middle))
        table.set(TensorName.weight(factors[2]), shape: [outputs, hiddenOut] + unit, values: try FloatBuffer(doubles: pTransposed))
        if layer.weight?.bias == true {
            let bias = try table.get(TensorName.bias(layer.name))
            table.remove(TensorName.bias(layer.name))
            table.set(TensorName.bias(factors[2]), shape: bias.shape, values: bias.values)
        }
        layer.weight?.chain = [hiddenIn, hiddenOut]
    }
}
