extension ClosedRange {
    /// `value` if the range holds it, else `.invalidArgument("<name>: <value> is out of range
    /// <lower>...<upper>")`: the one wording of a range error, for option initializers and
    /// `JSONObject` alike.
    func validate(_ value: Bound, _ name: String) throws -> Bound {
        guard contains(value) else {
            throw ReparoError.invalidArgument("\(name): \(value) is out of range \(lowerBound)...\(upperBound)")
        }
        return value
    }
}
