#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Named datasets as the C API and the CLI load them, standardized per channel with the
/// training split's statistics (fixed values for MNIST, Fashion-MNIST and CIFAR-10, so the
/// test split can be loaded without reading the training files).
public enum DatasetCatalog {
    public static let kinds = ["digits", "mnist", "fashion-mnist", "cifar10"]

    /// Where the Debian package dataset-fashion-mnist installs the four gzipped IDX files.
    public static let fashionMNISTDebianDirectory = "/usr/share/datasets/fashion-mnist"

    /// Mean and population std of the Fashion-MNIST training pixels (divided by 255),
    /// accumulated in Double over all 47,040,000 of them as `Dataset.channelStatistics` does;
    /// `DatasetTests` recomputes them from the files when they are installed.
    static let fashionMNISTMean: Float = 0.28604060
    static let fashionMNISTStd: Float = 0.35302424

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
        case "fashion-mnist":
            let directory = path ?? fashionMNISTDirectory()
            do {
                return try DatasetReader.readMNIST(directory: directory, split: split)
                    .standardized(mean: [fashionMNISTMean], std: [fashionMNISTStd])
            } catch ReparoError.io(let message) {
                throw ReparoError.io(message + "; install the Debian package dataset-fashion-mnist "
                                     + "(apt-get install dataset-fashion-mnist) or pass the directory")
            }
        case "cifar10":
            guard let path else { throw ReparoError.invalidArgument("path: required for cifar10 (directory of binary batches)") }
            return try DatasetReader.readCIFAR10(directory: path, split: split)
                .standardized(mean: [0.4914, 0.4822, 0.4465], std: [0.2470, 0.2435, 0.2616])
        default:
            throw ReparoError.invalidArgument("kind: \"\(kind)\" is not one of \(kinds.joined(separator: ", "))")
        }
    }

    /// Fashion-MNIST's directory when none is given: `$REPARO_FASHION_MNIST` if set and
    /// non-empty, else the Debian package's `/usr/share/datasets/fashion-mnist`.
    static func fashionMNISTDirectory(
        override: String? = getenv("REPARO_FASHION_MNIST").map { String(cString: $0) }
    ) -> String {
        if let override, !override.isEmpty { return override }
        return fashionMNISTDebianDirectory
    }
}
