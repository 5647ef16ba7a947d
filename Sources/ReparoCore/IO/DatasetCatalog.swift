/// Named datasets as the C API and the CLI load them, standardized per channel with the
/// training split's statistics (fixed published values for MNIST and CIFAR-10, so the test
/// split can be loaded without reading the training files).
public enum DatasetCatalog {
    public static let kinds = ["digits", "mnist", "cifar10"]

    public static func load(kind: String, path: String?, split: String) throws -> Dataset {
        guard split == "train" || split == "test" else {
            throw ReparoError.invalidArgument("split: \"\(split)\" is not \"train\" or \"test\"")
        }
        switch kind {
        case "digits":
            guard let directory = path ?? DatasetReader.locateBundledData() else {
                throw ReparoError.io("the bundled digits were not found: set REPARO_DATA to the data/ directory")
            }
            let train = try DatasetReader.readDigits(directory: directory, split: "train")
            let statistics = train.channelStatistics()
            let raw = split == "train" ? train : try DatasetReader.readDigits(directory: directory, split: "test")
            return try raw.standardized(mean: statistics.mean, std: statistics.std)
        case "mnist":
            guard let path else { throw ReparoError.invalidArgument("path: required for mnist (directory of IDX files)") }
            return try DatasetReader.readMNIST(directory: path, split: split).standardized(mean: [0.1307], std: [0.3081])
        case "cifar10":
            guard let path else { throw ReparoError.invalidArgument("path: required for cifar10 (directory of binary batches)") }
            return try DatasetReader.readCIFAR10(directory: path, split: split)
                .standardized(mean: [0.4914, 0.4822, 0.4465], std: [0.2470, 0.2435, 0.2616])
        default:
            throw ReparoError.invalidArgument("kind: \"\(kind)\" is not one of \(kinds.joined(separator: ", "))")
        }
    }
}
