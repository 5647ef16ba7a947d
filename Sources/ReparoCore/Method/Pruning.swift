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
            switch layer.kind {
            case .conv:
                guard layer.chain == nil else { throw ReparoError.state("cannot prune an expanded model; collapse it first") }
                groups[group].consumers.append(Consumer(layer: layer.name, spatial: 1))
                group = groups.make(channels: layer.out, prunable: true)
                groups[group].producers.append(Producer(conv: layer.name, batchNorm: nil))
                let height = (shape.height + 2 * layer.padding - layer.kernel) / layer.stride + 1
                let width = (shape.width + 2 * layer.padding - layer.kernel) / layer.stride + 1
                shape = FeatureShape(channels: layer.out, height: height, width: width)
            case .batchnorm:
                let owner = groups[group]
                if previous == .conv, var last = owner.producers.popLast() {
                    last.batchNorm = layer.name
                    owner.producers.append(last)
                } else {
                    owner.prunable = false  // a BatchNorm we cannot attribute: leave the group alone
                }
            case .relu:
                break
            case .maxpool, .avgpool:
                let kernel = layer.kernel > 0 ? layer.kernel : 0
                if kernel == 0 {
                    shape = FeatureShape(channels: shape.channels, height: 1, width: 1)
                } else {
                    shape = FeatureShape(channels: shape.channels, height: (shape.height - kernel) / layer.stride + 1,
                                         width: (shape.width - kernel) / layer.stride + 1)
                }
            case .flatten:
                spatial = shape.spatial
                shape = FeatureShape(channels: shape.count, height: 1, width: 1)
            case .linear:
                guard layer.chain == nil else { throw ReparoError.state("cannot prune an expanded model; collapse it first") }
                groups[group].consumers.append(Consumer(layer: layer.name, spatial: spatial ?? shape.spatial))
                spatial = nil
                group = groups.make(channels: layer.out, prunable: false)
                shape = FeatureShape(channels: layer.out, height: 1, width: 1)
            case .basicBlock:
                var mainShape = shape, shortcutShape = shape
                let mainGroup = try walk(layer.main, group: group, shape: &mainShape, groups: &groups, flattenedSpatial: nil)
                let shortcutGroup = try walk(layer.shortcut, group: group, shape: &shortcutShape, groups: &groups,
                                             flattenedSpatial: nil)
                group = groups.merge(shortcutGroup, mainGroup)
                shape = mainShape
            }
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
                let gamma = try table.get(batchNorm + ".weight").values
                for c in scores.indices { scores[c] += Double(abs(gamma.pointer[c])) }
                continue
            }
            let weight = try table.get(producer.conv + ".weight")
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
                try table.slice(producer.conv + ".weight", axis: 0, keep: keep)
                if table.has(producer.conv + ".bias") { try table.slice(producer.conv + ".bias", axis: 0, keep: keep) }
                if let batchNorm = producer.batchNorm {
                    for suffix in ["weight", "bias", "running_mean", "running_var"] {
                        try table.slice(batchNorm + "." + suffix, axis: 0, keep: keep)
                    }
                }
                newWidths[producer.conv] = keep.count
            }
            for consumer in group.consumers {
                try table.slice(consumer.layer + ".weight", axis: 1, keep: keep, block: consumer.spatial)
            }
        }
        let pruned = plans.count
        guard pruned > 0 else {
            throw ReparoError.invalidArgument("nothing to prune: no prunable conv loses a filter at ratio \(options.ratio)")
        }
        spec.layers.rewriteAll { layer in
            if let width = newWidths[layer.name] { layer.out = width }
        }
        spec.state = .pruned
        return try Model(spec: spec, tensors: table.all, source: "prune")
    }
}
