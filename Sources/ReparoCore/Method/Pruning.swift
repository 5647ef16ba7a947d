import Foundation

/// Structured filter pruning (step 1 of the method). Channels are analysed as groups: a
/// group is the set of output channels of one conv, or of several convs whose outputs a
/// residual addition ties together; every conv/linear reading the group is a consumer.
/// Removing channel c of a group removes filter c of every producer (and its BatchNorm
/// channel) and input channel c of every consumer (a block of H·W features for a linear
/// layer after a flatten), so the pruned network equals the dense one with those channels'
/// activations forced to zero.
public enum Pruning {
    struct Producer { var conv: String; var batchNorm: String? }
    struct Consumer { var layer: String; var spatial: Int }

    final class Group {
        var producers: [Producer] = []
        var consumers: [Consumer] = []
        var channels: Int
        var tiedByResidual = false
        var prunable = true
        init(channels: Int, prunable: Bool) { self.channels = channels; self.prunable = prunable }
    }

    /// Union-find over groups, so residual additions can merge them.
    struct Groups {
        var groups: [Group] = []
        var parent: [Int] = []
        mutating func make(channels: Int, prunable: Bool) -> Int {
            groups.append(Group(channels: channels, prunable: prunable))
            parent.append(parent.count)
            return parent.count - 1
        }
        mutating func find(_ id: Int) -> Int {
            var root = id
            while parent[root] != root { root = parent[root] }
            return root
        }
        mutating func merge(_ a: Int, _ b: Int) -> Int {
            let ra = find(a), rb = find(b)
            guard ra != rb else { return ra }
            parent[rb] = ra
            let target = groups[ra], source = groups[rb]
            target.producers += source.producers
            target.consumers += source.consumers
            target.prunable = target.prunable && source.prunable
            target.tiedByResidual = true
            return ra
        }
        subscript(id: Int) -> Group { mutating get { groups[find(id)] } }
    }

    /// Follows the activation through the spec, recording producers and consumers.
    static func analyse(_ spec: ModelSpec) throws -> Groups {
        var groups = Groups()
        let input = groups.make(channels: spec.input.channels, prunable: false)
        var shape = spec.input
        _ = try walk(spec.layers, group: input, shape: &shape, groups: &groups, flattenedSpatial: nil)
        return groups
    }

    /// Returns the group of the list's output; `shape` tracks the activation shape.
    static func walk(_ layers: [LayerSpec], group start: Int, shape: inout FeatureShape, groups: inout Groups,
                     flattenedSpatial: Int?) throws -> Int {
        var group = start
        var spatial = flattenedSpatial
        var previous: LayerSpec.Kind?
        for layer in layers {
            let output = try layer.outputShape(input: shape)
            switch layer.operation {
            case .conv(let weight, _), .linear(let weight):
                guard weight.chain == nil else { throw ReparoError.state("cannot prune an expanded model; collapse it first") }
                let convolution = layer.kind == .conv
                groups[group].consumers.append(Consumer(layer: layer.name, spatial: convolution ? 1 : spatial ?? shape.spatial))
                if !convolution { spatial = nil }
                group = groups.make(channels: weight.out, prunable: convolution)
                if convolution { groups[group].producers.append(Producer(conv: layer.name, batchNorm: nil)) }
            case .batchnorm:
                let owner = groups[group]
                if previous == .conv, var last = owner.producers.popLast() {
                    last.batchNorm = layer.name
                    owner.producers.append(last)
                } else {
                    owner.prunable = false  // a BatchNorm we cannot attribute: leave the group alone
                }
            case .relu, .maxpool, .avgpool:
                break
            case .flatten:
                spatial = shape.spatial
            case .basicBlock(let main, let shortcut):
                var mainShape = shape, shortcutShape = shape
                let mainGroup = try walk(main, group: group, shape: &mainShape, groups: &groups, flattenedSpatial: nil)
                let shortcutGroup = try walk(shortcut, group: group, shape: &shortcutShape, groups: &groups,
                                             flattenedSpatial: nil)
                group = groups.merge(shortcutGroup, mainGroup)
            }
            shape = output
            previous = layer.kind
        }
        return group
    }

    /// Importance of each output channel of a group: the criterion summed over its producers.
    static func importance(_ group: Group, table: TensorTable, criterion: PruneOptions.Criterion,
                           generator: inout SeededGenerator) throws -> [Double] {
        var scores = [Double](repeating: 0, count: group.channels)
        if criterion == .random {
            for c in scores.indices { scores[c] = Double(generator.nextUniform()) }
            return scores
        }
        for producer in group.producers {
            if criterion == .batchNormGamma {
                guard let batchNorm = producer.batchNorm else {
                    throw ReparoError.invalidArgument("options.criterion: \"bn_gamma\" needs a BatchNorm after conv \(producer.conv)")
                }
                let gamma = try table.get(TensorName.weight(batchNorm)).values
                for c in scores.indices { scores[c] += Double(abs(gamma.pointer[c])) }
                continue
            }
            let weight = try table.get(TensorName.weight(producer.conv))
            let perFilter = weight.values.count / max(group.channels, 1)
            for c in scores.indices {
                var total = 0.0
                let filter = weight.values.pointer + c * perFilter
                for i in 0..<perFilter {
                    let value = Double(filter[i])
                    total += criterion == .l1 ? abs(value) : value * value
                }
                scores[c] += criterion == .l1 ? total : total.squareRoot()
            }
        }
        return scores
    }

    public static func prune(_ dense: Model, options: PruneOptions) throws -> Model {
        guard dense.state != .expanded else { throw ReparoError.state("cannot prune an expanded model; collapse it first") }
        var spec = dense.spec
        var groups = try analyse(spec)
        var table = try TensorTable(dense)
        var generator = SeededGenerator(seed: options.seed)
        let convNames = Set(spec.layers.flatMap(\.weightedLayers).filter { $0.kind == .conv }.map(\.name))
        if let unknown = options.layerRatios.keys.sorted().first(where: { !convNames.contains($0) }) {
            throw ReparoError.invalidArgument("options.layers: \"\(unknown)\" is not a conv layer of the model")
        }
        // Rank every group on the dense weights first ("independent" pruning, Li et al. 2017
        // §3.2), then slice: slicing one group's consumers must not change another's ranking.
        var plans: [(group: Group, keep: [Int])] = []
        var visited = Set<ObjectIdentifier>()
        for id in 0..<groups.parent.count {
            let group = groups[id]
            guard visited.insert(ObjectIdentifier(group)).inserted, group.prunable, !group.producers.isEmpty else { continue }
            if group.tiedByResidual && options.residual == .block { continue }
            let ratio = group.producers.compactMap { options.layerRatios[$0.conv] }.first ?? options.ratio
            let keepCount = PruneOptions.kept(group.channels, ratio: ratio)
            guard keepCount < group.channels else { continue }
            let scores = try importance(group, table: table, criterion: options.criterion, generator: &generator)
            // Highest scores stay; ties broken by index so the result is deterministic.
            let ranked = scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
            plans.append((group, ranked.prefix(keepCount).sorted()))
        }
        var newWidths: [String: Int] = [:]
        for (group, keep) in plans {
            for producer in group.producers {
                try table.slice(TensorName.weight(producer.conv), axis: 0, keep: keep)
                let bias = TensorName.bias(producer.conv)
                if table.has(bias) { try table.slice(bias, axis: 0, keep: keep) }
                if let batchNorm = producer.batchNorm {
                    for name in TensorName.batchNorm(batchNorm) { try table.slice(name, axis: 0, keep: keep) }
                }
                newWidths[producer.conv] = keep.count
            }
            for consumer in group.consumers {
                try table.slice(TensorName.weight(consumer.layer), axis: 1, keep: keep, block: consumer.spatial)
            }
        }
        let pruned = plans.count
        guard pruned > 0 else {
            throw ReparoError.invalidArgument("nothing to prune: no prunable conv loses a filter at ratio \(options.ratio)")
        }
        spec.layers.rewriteAll { layer in
            if let width = newWidths[layer.name] { layer.weight?.out = width }
        }
        spec.state = .pruned
        return try Model(spec: spec, tensors: table.all, source: "prune")
    }
}
