import Foundation


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

    public init(metric: String, expected: Double, actual: Double?, tolerance: Tolerance) {
        self.metric = metric
        self.expected = expected
        self.actual = actual
        self.tolerance = tolerance
    }

    public var json: JSONValue {
        [
            "metric": .string(metric), "expected": .double(expected), "actual": actual.map(JSONValue.double) ?? .null,
            "delta": delta.map(JSONValue.double) ?? .null, "tolerance": .string(tolerance.description), "within": .bool(within),
        ]
    }
}

/// The server's judgement of a rerun: the one place a reproduction verdict is decided. A client
/// names the runs; it never sends the verdict, so the `reproduced` approval check cannot be
/// satisfied by a request that merely claims success.
public enum ReproductionJudge {
    public struct Judgement: Sendable {
        public var verdict: ReproductionVerdict
        public var summary: String
        public var details: JSONValue
    }

    /// Judges `rerun` against `original`.
    ///
    /// - The rerun must carry a passport naming the original (`reprise.reproduces`) and have ended.
    ///   A rerun that ended FAILED or KILLED diverged.
    /// - Metrics are compared under the tolerances declared on the original run (`reprise.tolerances`);
    ///   `requested` tolerances apply only to metrics the original declared none for, so a caller
    ///   cannot loosen a declared bound. Without any tolerance, every metric of the original must
    ///   match exactly.
    public static func judge(original: Run, rerun: Run, requested: [Tolerance]) throws -> Judgement {
        let rerunTags = Dictionary(rerun.tags.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
        let originalTags = Dictionary(original.tags.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
        guard rerun.info.runID != original.info.runID else { throw RepriseError.invalid("A run cannot be its own reproduction.") }
        guard rerunTags[PassportTag.reproduces] == original.info.runID else {
            throw RepriseError.invalid(
                "Run \(rerun.info.runID) is not a reproduction of \(original.info.runID): its passport does not name it (tag \(PassportTag.reproduces)). Reruns made by `reprise reproduce` carry it."
            )
        }
        switch rerun.info.status {
        case .running, .scheduled:
            throw RepriseError.invalid("Run \(rerun.info.runID) has not finished (status \(rerun.info.status.rawValue)); judge it once it has ended.")
        case .failed, .killed:
            return Judgement(
                verdict: .diverged, summary: "the rerun ended \(rerun.info.status.rawValue)",
                details: ["judged_by": "server", "rerun_status": .string(rerun.info.status.rawValue)])
        case .finished:
            break
        }
        var byMetric: [String: (Tolerance, String)] = [:]
        for t in (originalTags[PassportTag.tolerances] ?? "").split(separator: " ").compactMap({ try? Tolerance(parsing: String($0)) })
        where byMetric[t.metric] == nil {
            byMetric[t.metric] = (t, "declared")
        }
        // The original's declaration decides which metrics count; with none declared, every metric of
        // the original counts, so a caller's tolerance can widen the bound of one metric it names but
        // never narrow the comparison to it.
        let declaredOnly = !byMetric.isEmpty
        for t in requested where byMetric[t.metric] == nil { byMetric[t.metric] = (t, "requested") }
        func values(_ run: Run) -> [String: Double] {
            var out: [String: Double] = [:]
            for m in run.metrics where !m.key.hasPrefix("system/") { out[m.key] = m.value }
            return out
        }
        let expected = values(original)
        let actual = values(rerun)
        let names = declaredOnly ? byMetric.keys.sorted() : Set(expected.keys).union(byMetric.keys).sorted()
        var comparisons: [MetricComparison] = []
        var sources: [JSONValue] = []
        for name in names {
            guard let e = expected[name] else { continue }
            let (tolerance, source) = byMetric[name] ?? (.exact(name), "exact")
            comparisons.append(MetricComparison(metric: name, expected: e, actual: actual[name], tolerance: tolerance))
            sources.append(.string(source))
        }
        var metricsJSON: [JSONValue] = []
        for (c, source) in zip(comparisons, sources) {
            var o = c.json
            if case .object(var obj) = o {
                obj["tolerance_source"] = source
                o = .object(obj)
            }
            metricsJSON.append(o)
        }
        let details: JSONValue = ["judged_by": "server", "metrics": .array(metricsJSON)]
        if comparisons.isEmpty {
            return Judgement(verdict: .incomplete, summary: "the original run has no metrics to compare", details: details)
        }
        let failed = comparisons.filter { !$0.within }
        if failed.isEmpty {
            return Judgement(verdict: .reproduced, summary: "\(comparisons.count) metric(s) within tolerance", details: details)
        }
        let summary = failed.map { c in
            c.actual == nil
                ? "\(c.metric) missing" : "\(c.metric) \(c.expected) -> \(c.actual!) (delta \(String(format: "%+.6g", c.delta!)), allowed \(c.tolerance))"
        }.joined(separator: "; ")
        return Judgement(verdict: .diverged, summary: summary, details: details)
    }
}
