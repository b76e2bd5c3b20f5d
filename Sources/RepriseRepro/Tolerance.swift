import Foundation
import RepriseCore

/// How far a rerun's metric may be from the original's: `abs:0.01` (absolute difference) or
/// `rel:0.5%` / `rel:0.005` (relative to the original's magnitude).
public struct Tolerance: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable { case abs, rel }
    public var metric: String
    public var kind: Kind
    /// For `rel`, a fraction (0.5 % is 0.005).
    public var amount: Double

    public init(metric: String, kind: Kind, amount: Double) {
        self.metric = metric
        self.kind = kind
        self.amount = amount
    }

    /// Parses `metric=abs:0.01`, `metric=rel:0.5%` or `metric=rel:0.005`. The metric name may itself
    /// contain `=`; the last one separates it.
    public init(parsing text: String) throws {
        guard let eq = text.lastIndex(of: "="), eq != text.startIndex else {
            throw RepriseError.invalid("Invalid tolerance '\(text)': write metric=abs:0.01 or metric=rel:0.5%.")
        }
        let metric = String(text[..<eq])
        let spec = String(text[text.index(after: eq)...])
        let parts = spec.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, let kind = Kind(rawValue: parts[0].lowercased()) else {
            throw RepriseError.invalid("Invalid tolerance '\(text)': the kind must be abs or rel, as in \(metric)=abs:0.01 or \(metric)=rel:0.5%.")
        }
        var number = parts[1].trimmingCharacters(in: .whitespaces)
        var scale = 1.0
        if number.hasSuffix("%") {
            number.removeLast()
            scale = 0.01
        }
        guard let v = Double(number), v.isFinite, v >= 0 else {
            throw RepriseError.invalid("Invalid tolerance '\(text)': '\(parts[1])' is not a non-negative number.")
        }
        if kind == .abs && scale != 1 {
            throw RepriseError.invalid("Invalid tolerance '\(text)': a percentage only makes sense with rel.")
        }
        self.init(metric: metric, kind: kind, amount: v * scale)
    }

    public var description: String {
        switch kind {
        case .abs: return "\(metric)=abs:\(Self.format(amount))"
        case .rel: return "\(metric)=rel:\(Self.format(amount * 100))%"
        }
    }

    static func format(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e15 { return String(Int64(v)) }
        return String(v)
    }

    /// The largest difference allowed from `expected`.
    public func allowance(expected: Double) -> Double {
        switch kind {
        case .abs: return amount
        case .rel: return amount * Swift.abs(expected)
        }
    }

    /// Whether `actual` is within tolerance of `expected`. NaN only matches NaN.
    public func accepts(expected: Double, actual: Double) -> Bool {
        if expected.isNaN || actual.isNaN { return expected.isNaN && actual.isNaN }
        if expected.isInfinite || actual.isInfinite { return expected == actual }
        // A small slack for decimal round trips of the allowance itself (0.1 + 0.2 style).
        return Swift.abs(actual - expected) <= allowance(expected: expected) * (1 + 1e-12) + Double.ulpOfOne * Swift.abs(expected)
    }

    /// Exact equality, up to the last bit of float formatting: the default when nothing is declared.
    public static func exact(_ metric: String) -> Tolerance { Tolerance(metric: metric, kind: .rel, amount: 1e-12) }
}

/// One metric of the original compared with the rerun.
public struct MetricComparison: Sendable {
    public var metric: String
    public var expected: Double
    public var actual: Double?
    public var tolerance: Tolerance
    public var within: Bool { actual.map { tolerance.accepts(expected: expected, actual: $0) } ?? false }
    public var delta: Double? { actual.map { $0 - expected } }

    public var json: JSONValue {
        [
            "metric": .string(metric), "expected": .double(expected), "actual": actual.map(JSONValue.double) ?? .null,
            "delta": delta.map(JSONValue.double) ?? .null, "tolerance": .string(tolerance.description), "within": .bool(within),
        ]
    }
}

/// Fingerprints that identify a run's inputs, for duplicate detection.
public enum Fingerprint {
    /// Over code (commit and patch), data digests, environment digest, command and seed.
    public static func inputs(commit: String, patchSHA256: String, dataDigest: String, envDigest: String, command: [String], seed: String)
        -> String
    {
        let text = [
            "commit=\(commit)", "patch=\(patchSHA256)", "data=\(dataDigest)", "env=\(envDigest)",
            "command=\(JSONValue.array(command.map(JSONValue.string)).jsonString)", "seed=\(seed)",
        ].joined(separator: "\n")
        return sha256Hex(Data(text.utf8))
    }

    /// The inputs fingerprint plus the params the run logged.
    public static func full(inputs: String, params: [String: String]) -> String {
        let text = (["inputs=\(inputs)"] + params.keys.sorted().map { "param.\($0)=\(params[$0]!)" }).joined(separator: "\n")
        return sha256Hex(Data(text.utf8))
    }

    /// A digest over several data inputs' root digests (order of declaration kept).
    public static func data(_ digests: [DataDigest]) -> String {
        digests.isEmpty ? "" : sha256Hex(Data(digests.map { "\($0.path)=\($0.root)" }.joined(separator: "\n").utf8))
    }
}
