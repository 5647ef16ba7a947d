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
            guard layer.chain != nil else { return }
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
        let f0 = try table.get(layer.name + ".factors.0.weight")
        let f1 = try table.get(layer.name + ".factors.1.weight")
        let f2 = try table.get(layer.name + ".factors.2.weight")
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
        for index in 0..<3 { table.remove(layer.name + ".factors.\(index).weight") }
        let shape = spatial ? [outputs, inputs] + Array(f1.shape[2...]) : [outputs, inputs]
        table.set(layer.name + ".weight", shape: shape, values: try FloatBuffer(doubles: weight))
        if layer.bias {
            let bias = try table.get(layer.name + ".factors.2.bias")
            table.remove(layer.name + ".factors.2.bias")
            table.set(layer.name + ".bias", shape: bias.shape, values: bias.values)
        }
        layer.chain = nil
    }

    /// Folds every BatchNorm that directly follows a (compact) conv in the same list.
    static func foldBatchNorm(_ layers: inout [LayerSpec], table: inout TensorTable) throws -> Int {
        var folded = 0
        var index = 0
        while index < layers.count {
            if layers[index].kind == .basicBlock {
                folded += try foldBatchNorm(&layers[index].main, table: &table)
                folded += try foldBatchNorm(&layers[index].shortcut, table: &table)
            }
            if layers[index].kind == .conv, layers[index].chain == nil, index + 1 < layers.count,
               layers[index + 1].kind == .batchnorm {
                try fold(conv: &layers[index], batchNorm: layers[index + 1].name, table: &table)
                layers.remove(at: index + 1)
                folded += 1
            }
            index += 1
        }
        return folded
    }

    static func fold(conv: inout LayerSpec, batchNorm: String, table: inout TensorTable) throws {
        let weight = try table.get(conv.name + ".weight")
        let gamma = try table.get(batchNorm + ".weight").values.doubles
        let beta = try table.get(batchNorm + ".bias").values.doubles
        let mean = try table.get(batchNorm + ".running_mean").values.doubles
        let variance = try table.get(batchNorm + ".running_var").values.doubles
        let outputs = weight.shape[0]
        let perFilter = weight.values.count / max(outputs, 1)
        var w = weight.values.doubles
        var bias = conv.bias ? try table.get(conv.name + ".bias").values.doubles : [Double](repeating: 0, count: outputs)
        for o in 0..<outputs {
            let scale = gamma[o] / (variance[o] + Double(BatchNorm2D.epsilon)).squareRoot()
            for i in 0..<perFilter { w[o * perFilter + i] *= scale }
            bias[o] = (bias[o] - mean[o]) * scale + beta[o]
        }
        table.set(conv.name + ".weight", shape: weight.shape, values: try FloatBuffer(doubles: w))
        table.set(conv.name + ".bias", shape: [outputs], values: try FloatBuffer(doubles: bias))
        for suffix in ["weight", "bias", "running_mean", "running_var"] { table.remove(batchNorm + "." + suffix) }
        conv.bias = true
    }
}
