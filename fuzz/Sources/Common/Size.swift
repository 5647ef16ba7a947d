// Shared by the spec and checkpoint targets (compiled into the same module as ReparoCore).

/// Parameters (weights, biases, BatchNorm tensors) a resolved spec asks for, computed from the
/// spec alone, without allocating: the shapes follow the same formulas as the layers
/// (NetworkBuilder rejects whatever is inconsistent). Saturates instead of overflowing.
///
/// The spec and checkpoint harnesses build a model only below a size limit: creating a model
/// costs time linear in its size by design (vgg16 at width 1.06, 16.6 M parameters, takes
/// 1.3 s under ASan), and a legal but large model is no finding. The load harness needs no
/// such limit, because there the tensors must be in the file.
func estimatedParameters(_ spec: ModelSpec) -> Int {
    var shape = Shape(channels: spec.input.channels, height: spec.input.height, width: spec.input.width)
    return estimatedParameters(spec.layers, &shape)
}

private struct Shape {
    var channels: Int
    var height: Int
    var width: Int
}

private func estimatedParameters(_ layers: [LayerSpec], _ shape: inout Shape) -> Int {
    var total = 0
    for layer in layers {
        switch layer.kind {
        case .conv:
            total = add(total, weights(layer, inputs: shape.channels, taps: multiply(layer.kernel, layer.kernel)))
            let stride = max(layer.stride, 1)
            shape = Shape(channels: layer.out,
                          height: max((shape.height + 2 * layer.padding - layer.kernel) / stride + 1, 1),
                          width: max((shape.width + 2 * layer.padding - layer.kernel) / stride + 1, 1))
        case .linear:
            let inputs = multiply(multiply(shape.channels, shape.height), shape.width)
            total = add(total, weights(layer, inputs: inputs, taps: 1))
            shape = Shape(channels: layer.out, height: 1, width: 1)
        case .batchnorm:
            total = add(total, multiply(4, shape.channels))
        case .maxpool, .avgpool:
            if layer.kernel > 0 {
                let stride = max(layer.stride, 1)
                shape.height = max((shape.height - layer.kernel) / stride + 1, 1)
                shape.width = max((shape.width - layer.kernel) / stride + 1, 1)
            } else {
                shape.height = 1
                shape.width = 1
            }
        case .flatten:
            shape = Shape(channels: multiply(multiply(shape.channels, shape.height), shape.width), height: 1, width: 1)
        case .relu:
            break
        case .basicBlock:
            var shortcut = shape
            total = add(total, estimatedParameters(layer.main, &shape))
            total = add(total, estimatedParameters(layer.shortcut, &shortcut))
        }
    }
    return total
}

private func weights(_ layer: LayerSpec, inputs: Int, taps: Int) -> Int {
    let bias = layer.bias ? layer.out : 0
    guard let chain = layer.chain, chain.count == 2 else {
        return add(multiply(multiply(layer.out, inputs), taps), bias)
    }
    let first = multiply(chain[0], inputs)
    let middle = multiply(multiply(chain[1], chain[0]), taps)
    return add(add(add(first, middle), multiply(layer.out, chain[1])), bias)
}

private func multiply(_ a: Int, _ b: Int) -> Int {
    let (product, overflow) = a.multipliedReportingOverflow(by: b)
    return overflow ? Int.max : product
}

private func add(_ a: Int, _ b: Int) -> Int {
    let (sum, overflow) = a.addingReportingOverflow(b)
    return overflow ? Int.max : sum
}
