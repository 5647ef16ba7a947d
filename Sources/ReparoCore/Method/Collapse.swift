/// Re-parameterization (step 4 of the method): every expanded chain is multiplied back into
/// one layer of the compact shape, per kernel tap W[:,:,u,v] = F₂ · F₁[:,:,u,v] · F₀ (in
/// Double), the bias carried over. Optionally folds BatchNorm into the preceding conv:
/// W' = W·γ/√(σ²+ε), b' = (b − μ)·γ/√(σ²+ε) + β.
public enum Collapse {
    public static func collapse(_ model: Model, options: CollapseOptions) throws -> Model {
        var spec = model.spec
        var table = try TensorTable(model)
        var collapsed = 0
        try spec.layers.rewriteAll { layer in
            guard layer.weight?.chain != nil else { return }
            try collapseLayer(&layer, table: &table)
            collapsed += 1
        }
        var folded = 0
        if options.foldBatchNorm {
            folded = try foldBatchNorm(&spec.layers, table: &table)
        }
        guard collapsed > 0 || folded > 0 else {
            throw ReparoError.state(options.foldBatchNorm
                ? "nothing to collapse: the model has no expanded layer and no BatchNorm after a conv"
                : "nothing to collapse: the model (state \(model.state.rawValue)) has no expanded layer")
        }
        if collapsed > 0 || model.state == .expanded { spec.state = .collapsed }
        return try Model(spec: spec, tensors: table.all, source: "collapse")
    }

    static func collapseLayer(_ layer: inout LayerSpec, table: inout TensorTable) throws {
        let factors = (0..<3).map { TensorName.factor(layer.name, $0) }
        let f0 = try table.get(TensorName.weight(factors[0]))
        let f1 = try table.get(TensorName.weight(factors[1]))
        let f2 = try table.get(TensorName.weight(factors[2]))
        let inputs = f0.shape[1], hiddenIn = f0.shape[0], hiddenOut = f1.shape[0], outputs = f2.shape[0]
        let spatial = f1.shape.count == 4
        let taps = spatial ? f1.shape[2] * f1.shape[3] : 1
        let first = f0.values.doubles, middle = f1.values.doubles, last = f2.values.doubles
        var weight = [Double](repeating: 0, count: outputs * inputs * taps)
        for tap in 0..<taps {
            var middleTap = [Double](repeating: 0, count: hiddenOut * hiddenIn)
            for o in 0..<hiddenOut { for i in 0..<hiddenIn { middleTap[o * hiddenIn + i] = middle[(o * hiddenIn + i) * taps + tap] } }
            let right = DoubleMatrix.multiply(middleTap, first, m: hiddenOut, n: inputs, k: hiddenIn)
            let product = DoubleMatrix.multiply(last, right, m: outputs, n: inputs, k: hiddenOut)
            for o in 0..<outputs { for i in 0..<inputs { weight[(o * inputs + i) * taps + tap] = product[o * inputs + i] } }
        }
        for factor in factors { table.remove(TensorName.weight(factor)) }
        let shape = spatial ? [outputs, inputs] + Array(f1.shape[2...]) : [outputs, inputs]
        table.set(TensorName.weight(layer.name), shape: shape, values: try FloatBuffer(doubles: weight))
        if layer.weight?.bias == true {
            let bias = try table.get(TensorName.bias(factors[2]))
            table.remove(TensorName.bias(factors[2]))
            table.set(TensorName.bias(layer.name), shape: bias.shape, values: bias.values)
        }
        layer.weight?.chain = nil
    }

    /// Folds every BatchNorm that directly follows a (compact) conv in the same list.
    static func foldBatchNorm(_ layers: inout [LayerSpec], table: inout TensorTable) throws -> Int {
        var folded = 0
        try layers.rewriteLists { list in
            var index = 0
            while index < list.count {
                if list[index].kind == .conv, list[index].weight?.chain == nil, index + 1 < list.count,
                   list[index + 1].kind == .batchnorm {
                    try fold(conv: &list[index], batchNorm: list[index + 1].name, table: &table)
                    list.remove(at: index + 1)
                    folded += 1
                }
                index += 1
            }
        }
        return folded
    }

    static func fold(conv: inout LayerSpec, batchNorm: String, table: inout TensorTable) throws {
        let weight = try table.get(TensorName.weight(conv.name))
        let statistics = TensorName.batchNorm(batchNorm)
        let gamma = try table.get(statistics[0]).values.doubles
        let beta = try table.get(statistics[1]).values.doubles
        let mean = try table.get(statistics[2]).values.doubles
        let variance = try table.get(statistics[3]).values.doubles
        let outputs = weight.shape[0]
        let perFilter = weight.values.count / max(outputs, 1)
        var w = weight.values.doubles
        let hasBias = conv.weight?.bias == true
        var bias = hasBias ? try table.get(TensorName.bias(conv.name)).values.doubles : [Double](repeating: 0, count: outputs)
        for o in 0..<outputs {
            let scale = gamma[o] / (variance[o] + Double(BatchNorm2D.epsilon)).squareRoot()
            for i in 0..<perFilter { w[o * perFilter + i] *= scale }
            bias[o] = (bias[o] - mean[o]) * scale + beta[o]
        }
        table.set(TensorName.weight(conv.name), shape: weight.shape, values: try FloatBuffer(doubles: w))
        table.set(TensorName.bias(conv.name), shape: [outputs], values: try FloatBuffer(doubles: bias))
        for name in statistics { table.remove(name) }
        conv.weight?.bias = true
    }
}
