import Foundation
import ReparoCore

/// Trained dense teachers kept in the output directory, keyed by every setting that shapes
/// them: `teacher-<dataset>-<16 hex digits>.safetensors`, beside a `.json` that lists the
/// settings (so a person can see what a file is) and the teacher's accuracy. The key is the
/// FNV-1a hash of those settings' canonical JSON; a file is reused only when its sidecar's
/// settings equal the requested ones, so a hash collision retrains instead of misleading.
struct TeacherCache {
    let directory: String
    /// The settings, canonical (sorted keys) JSON: the library version, data set and its
    /// location, the resolved spec, epochs, learning rate, batch size, seed and the split.
    let settings: JSONValue
    let dataset: String

    var key: String {
        var hash = FNV1a()
        hash.mix(bytes: JSONWriter.text(settings).utf8)
        let digits = String(hash.value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    var modelPath: String { "\(directory)/teacher-\(dataset)-\(key).safetensors" }
    var settingsPath: String { "\(directory)/teacher-\(dataset)-\(key).json" }

    /// The cached teacher, or nil when there is none for these settings (or it is unreadable:
    /// then it is trained again and the file replaced).
    func load() -> (model: Model, accuracy: Double)? {
        guard FileManager.default.fileExists(atPath: modelPath),
              let data = FileManager.default.contents(atPath: settingsPath),
              let text = String(data: data, encoding: .utf8),
              let record = try? JSONObject.parseValue(text, context: "teacher cache").members,
              let stored = record.first(where: { $0.key == "settings" })?.value,
              JSONWriter.text(stored) == JSONWriter.text(settings),
              case .number(let accuracy, _)? = record.first(where: { $0.key == "accuracy" })?.value,
              let model = try? Model.load(path: modelPath) else { return nil }
        return (model, accuracy)
    }

    /// Saves the teacher (atomically, as `Model.save` does) and then its sidecar.
    func store(_ model: Model, accuracy: Double, seconds: Double) throws {
        try model.save(path: modelPath)
        let record: JSONValue = ["settings": settings, "accuracy": .double(accuracy), "seconds": .double(seconds)]
        try JSONWriter.text(record).write(toFile: settingsPath, atomically: true, encoding: .utf8)
    }
}
