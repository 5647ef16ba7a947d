/// The names of a layer's tensors, spelled once (PyTorch's, so weights map onto a PyTorch
/// model): the layers name their parameters with these, the builder's plan lists them, and
/// expansion, collapse and pruning find tensors by them.
public enum TensorName {
    public static func weight(_ layer: String) -> String { layer + ".weight" }
    public static func bias(_ layer: String) -> String { layer + ".bias" }
    public static func runningMean(_ layer: String) -> String { layer + ".running_mean" }
    public static func runningVariance(_ layer: String) -> String { layer + ".running_var" }
    /// The layer name of factor `index` (0, 1, 2) of an expanded layer's chain.
    public static func factor(_ layer: String, _ index: Int) -> String { layer + ".factors.\(index)" }
    /// A BatchNorm's four tensors, in their saved order: γ, β, running mean, running variance.
    public static func batchNorm(_ layer: String) -> [String] {
        [weight(layer), bias(layer), runningMean(layer), runningVariance(layer)]
    }
}
