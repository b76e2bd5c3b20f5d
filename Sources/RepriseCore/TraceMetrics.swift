import Foundation

// Trace analytics (spec §2.3): `traces/metrics` (QueryTraceMetrics: counts, latencies, tokens,
// costs and assessment values, grouped by dimensions and time buckets) and
// `traces/calculate-filter-correlation` (how strongly two trace filters co-occur, as NPMI).
// The store reads the rows a query selects; grouping, aggregation and the NPMI arithmetic live
// here, once, for every backend.

/// One QueryTraceMetrics request, checked.
public struct TraceMetricsQuery: Sendable {
    public enum View: String, Sendable, CaseIterable {
        case traces = "TRACES", spans = "SPANS", assessments = "ASSESSMENTS"
        /// The word a filter starts with for this view (`trace.status = 'OK'`).
        var filterWord: String {
            switch self {
            case .traces: return "trace"
            case .spans: return "span"
            case .assessments: return "assessment"
            }
        }
    }

    public enum AggregationType: String, Sendable, CaseIterable {
        case count = "COUNT", sum = "SUM", avg = "AVG", percentile = "PERCENTILE", min = "MIN", max = "MAX"
        /// The proto enum's numbers, which a client may send instead of the names.
        static let byNumber: [Int64: AggregationType] = [1: .count, 2: .sum, 3: .avg, 4: .percentile, 5: .min, 6: .max]
    }

    public struct Aggregation: Sendable, Equatable {
        public var type: AggregationType
        public var percentile: Double?
        /// The key of the value in a data point: `COUNT`, `AVG`, … or `P<value>` (`P50.0`).
        public var label: String {
            guard type == .percentile, let p = percentile else { return type.rawValue }
            return "P" + JSONValue.double(p).pythonDumps
        }
    }

    /// One `<view>.<entity>[.<key>] = '<value>'` filter.
    public enum Filter: Sendable, Equatable {
        case traceStatus(String)
        case traceTag(key: String, String)
        case traceMetadata(key: String, String)
        case spanName(String), spanStatus(String), spanType(String)
        case assessmentName(String), assessmentType(String)
    }

    /// What a metric may be aggregated by and grouped by.
    struct Metric {
        var aggregations: [AggregationType]
        var dimensions: [String]
    }

    static let valueAggregations: [AggregationType] = [.avg, .max, .min, .percentile, .sum]
    static let distributionAggregations: [AggregationType] = [.avg, .max, .min, .percentile]

    /// Every metric of every view, in the order error messages list them.
    static let catalog: [View: [(String, Metric)]] = [
        .traces: [
            ("trace_count", Metric(aggregations: [.count], dimensions: ["trace_name", "trace_status"])),
            ("session_count", Metric(aggregations: [.count], dimensions: [])),
            ("latency", Metric(aggregations: distributionAggregations, dimensions: ["trace_name"])),
        ] + TraceKeys.tokenUsageKeys.map { ($0, Metric(aggregations: valueAggregations, dimensions: ["trace_name"])) },
        .spans: [
            ("span_count", Metric(
                aggregations: [.count],
                dimensions: ["span_model_name", "span_model_provider", "span_name", "span_status", "span_type"])),
            ("latency", Metric(aggregations: distributionAggregations, dimensions: ["span_name", "span_status"])),
        ] + TraceKeys.costKeys.map { ($0, Metric(aggregations: valueAggregations, dimensions: ["span_model_name", "span_model_provider"])) },
        .assessments: [
            ("assessment_count", Metric(aggregations: [.count], dimensions: ["assessment_name", "assessment_value"])),
            ("assessment_value", Metric(aggregations: distributionAggregations, dimensions: ["assessment_name"])),
        ],
    ]

    /// The dimension a time bucket adds to each data point.
    public static let timeBucketDimension = "time_bucket"
    public static let defaultMaxResults = 1000
    public static let maxMaxResults = 100_000
    /// The widest bucket: a year. Bounds the arithmetic on a client's number.
    public static let maxIntervalSeconds: Int64 = 366 * 86_400

    public var experimentIDs: [Int64]
    public var view: View
    public var metric: String
    public var aggregations: [Aggregation]
    public var dimensions: [String]
    public var filters: [Filter]
    public var intervalSeconds: Int64?
    public var startTimeMillis: Int64?
    public var endTimeMillis: Int64?
    public var maxResults: Int
    public var offset: Int

    /// Whether the metric counts rows (`*_count`) rather than aggregating a value.
    public var isCount: Bool { metric.hasSuffix("_count") }

    public init(
        experimentIDs: [String], view: String?, metric: String?, aggregations: [JSONValue], dimensions: [String], filters: [String],
        intervalSeconds: Int64?, startTimeMillis: Int64?, endTimeMillis: Int64?, maxResults: Int64?, pageToken: String?
    ) throws {
        self.experimentIDs = try experimentIDs.map { try Validation.validateExperimentID($0) }
        guard let view, !view.isEmpty else { throw RepriseError.missing("view_type") }
        guard let v = View(rawValue: view.uppercased()) ?? Int64(view).flatMap({ [1: View.traces, 2: .spans, 3: .assessments][$0] }) else {
            throw RepriseError.invalid("Invalid view_type '\(view)': use TRACES, SPANS or ASSESSMENTS.")
        }
        self.view = v
        guard let metric, !metric.isEmpty else { throw RepriseError.missing("metric_name") }
        let metrics = Self.catalog[v]!
        guard let spec = metrics.first(where: { $0.0 == metric })?.1 else {
            throw RepriseError.invalid(
                "metric_name must be one of \(Self.pythonList(metrics.map(\.0))), got '\(metric)'")
        }
        self.metric = metric
        // The same aggregation twice answers once (each value is keyed by its label).
        var labels = Set<String>()
        self.aggregations = try aggregations.map(Self.aggregation).filter { labels.insert($0.label).inserted }
        if self.aggregations.isEmpty {
            throw RepriseError.invalid(
                "A metrics query needs at least one aggregation. Supported aggregation types: \(Self.pythonList(spec.aggregations.map(\.rawValue)))")
        }
        let badAggregations = Self.aggregations(self.aggregations.map(\.type), notIn: spec.aggregations)
        if !badAggregations.isEmpty {
            throw RepriseError.invalid(
                "Found invalid aggregation_type(s): \(Self.pythonList(badAggregations)). Supported aggregation types: \(Self.pythonList(spec.aggregations.map(\.rawValue).sorted()))")
        }
        let badDimensions = dimensions.filter { !spec.dimensions.contains($0) }
        if !badDimensions.isEmpty {
            throw RepriseError.invalid(
                "Found invalid dimension(s): \(Self.pythonList(badDimensions)). Supported dimensions: \(Self.pythonList(spec.dimensions))")
        }
        if Set(dimensions).count != dimensions.count { throw RepriseError.invalid("A dimension is named twice in 'dimensions'.") }
        self.dimensions = dimensions
        if let interval = intervalSeconds, interval != 0 {
            guard interval > 0, interval <= Self.maxIntervalSeconds else {
                throw RepriseError.invalid("Invalid time_interval_seconds \(interval): it must be between 1 and \(Self.maxIntervalSeconds) (a year).")
            }
            guard startTimeMillis != nil, endTimeMillis != nil else {
                throw RepriseError.invalid("start_time_ms and end_time_ms are required if time_interval_seconds is set")
            }
            self.intervalSeconds = interval
        } else {
            self.intervalSeconds = nil
        }
        self.startTimeMillis = startTimeMillis
        self.endTimeMillis = endTimeMillis
        self.filters = try filters.map { try Self.filter($0, view: v) }
        let max = maxResults ?? Int64(Self.defaultMaxResults)
        guard max >= 1, max <= Int64(Self.maxMaxResults) else {
            throw RepriseError.invalid("Invalid value \(max) for parameter 'max_results' supplied. It must be between 1 and \(Self.maxMaxResults).")
        }
        self.maxResults = Int(max)
        offset = try PageToken.decode(pageToken)
    }

    static func aggregations(_ asked: [AggregationType], notIn allowed: [AggregationType]) -> [String] {
        var seen = Set<String>()
        return asked.filter { !allowed.contains($0) }.map(\.rawValue).sorted().filter { seen.insert($0).inserted }
    }

    /// `['a', 'b']`: how the reference lists names in its messages.
    static func pythonList(_ items: [String]) -> String { "[" + items.map { "'\($0)'" }.joined(separator: ", ") + "]" }

    static func aggregation(_ v: JSONValue) throws -> Aggregation {
        guard case .object(let o) = v else { throw RepriseError.invalid("Invalid value for 'aggregations': expected objects.") }
        let type: AggregationType
        switch o["aggregation_type"] {
        case .string(let s)?:
            guard let t = AggregationType(rawValue: s.uppercased()) else {
                throw RepriseError.invalid("Invalid aggregation_type '\(s)': use COUNT, SUM, AVG, PERCENTILE, MIN or MAX.")
            }
            type = t
        case .int(let n)?:
            guard let t = AggregationType.byNumber[n] else { throw RepriseError.invalid("Invalid aggregation_type \(n).") }
            type = t
        default:
            throw RepriseError.missing("aggregations.aggregation_type")
        }
        var percentile: Double?
        switch o["percentile_value"] {
        case nil, .null?: percentile = nil
        case .int(let n)?: percentile = Double(n)
        case .double(let d)?: percentile = d
        default: throw RepriseError.invalid("Invalid percentile_value: expected a number between 0 and 100.")
        }
        if type == .percentile {
            guard let p = percentile else {
                throw RepriseError.invalid("A PERCENTILE aggregation needs percentile_value, a number between 0 and 100.")
            }
            guard p.isFinite, p >= 0, p <= 100 else {
                throw RepriseError.invalid("Percentile value must be between 0 and 100, got \(JSONValue.double(p).pythonDumps)")
            }
        } else if percentile != nil {
            throw RepriseError.invalid("Percentile value is only allowed for PERCENTILE aggregation type, got \(type.rawValue)")
        }
        return Aggregation(type: type, percentile: percentile)
    }

    /// Entities each filter word allows, and whether they take a key.
    static let filterEntities: [String: [String: Bool]] = [
        "trace": ["status": false, "tag": true, "metadata": true],
        "span": ["name": false, "status": false, "type": false],
        "assessment": ["name": false, "type": false],
    ]

    /// One metrics filter: a single `=` comparison with a quoted value (the search grammar's
    /// tokenizer, so quoting and backticks read the same as everywhere else).
    static func filter(_ text: String, view: View) throws -> Filter {
        let clauses = try FilterParser.parse(text)
        guard clauses.count == 1, let raw = clauses.first else {
            if clauses.isEmpty { throw RepriseError.invalid("Invalid filter: '\(text)'. Expected one filter clause.") }
            throw RepriseError.invalid(
                "Invalid filter '\(text)': a metrics filter is one comparison. Send several filters to require them all.")
        }
        // `trace.tag.env` reads as entity `trace`, key `tag.env`; `trace.metadata.`k`` as
        // entity `trace.metadata`, key `k`.
        var word: String
        var entity: String
        var key: String?
        guard let e = raw.entity else {
            throw RepriseError.invalid(
                "Invalid identifier '\(raw.key)'. Columns should be specified as 'trace.<key>', 'span.<key>', 'assessment.<key>'.")
        }
        if let dot = e.firstIndex(of: ".") {
            word = String(e[..<dot])
            entity = String(e[e.index(after: dot)...])
            key = raw.key
        } else {
            word = e
            if let dot = raw.key.firstIndex(of: ".") {
                entity = String(raw.key[..<dot])
                key = String(raw.key[raw.key.index(after: dot)...])
            } else {
                entity = raw.key
            }
        }
        word = word.lowercased()
        entity = entity.lowercased()
        guard let entities = filterEntities[word] else {
            throw RepriseError.invalid(
                "Invalid identifier '\(e).\(raw.key)'. Columns should be specified as 'trace.<key>', 'span.<key>', 'assessment.<key>'.")
        }
        if word != "trace", word != view.filterWord {
            throw RepriseError.invalid(
                "Filtering by \(word) is only supported for \(word.uppercased())S view type, got \(view.rawValue)")
        }
        guard let needsKey = entities[entity] else {
            throw RepriseError.invalid(
                "Invalid entity '\(entity)' specified for view type '\(word)'. Valid entities are \(pythonList(entities.keys.sorted { order($0, word) < order($1, word) }))")
        }
        if needsKey, key == nil || key!.isEmpty {
            throw RepriseError.invalid("Filtering by \(entity) requires a key, e.g. '\(word).\(entity).<key> = <value>'")
        }
        if !needsKey, key != nil {
            throw RepriseError.invalid("Filtering by \(entity) does not require a key, use '\(word).\(entity)' instead")
        }
        guard raw.comparator == .eq else {
            throw RepriseError.invalid("Invalid comparator: '\(raw.comparator.rawValue)', only '=' operator is supported")
        }
        guard raw.quoted, case .string(let value) = raw.value else {
            throw RepriseError.invalid(
                "Parameter value is either not quoted or unidentified quote types used for string value \(raw.value.display). Use either single or double quotes.")
        }
        switch (word, entity) {
        case ("trace", "status"): return .traceStatus(value.uppercased())
        case ("trace", "tag"): return .traceTag(key: key!, value)
        case ("trace", "metadata"): return .traceMetadata(key: key!, value)
        case ("span", "name"): return .spanName(value)
        case ("span", "status"):
            let s = value.uppercased()
            return .spanStatus(s.hasPrefix("STATUS_CODE_") ? String(s.dropFirst("STATUS_CODE_".count)) : s)
        case ("span", "type"): return .spanType(value)
        case ("assessment", "name"): return .assessmentName(value)
        default: return .assessmentType(value.lowercased())
        }
    }

    /// The order the reference lists a word's entities in.
    static func order(_ entity: String, _ word: String) -> Int {
        ["status", "tag", "metadata", "name", "type"].firstIndex(of: entity) ?? 99
    }
}

/// One row a metrics query selected: its dimension values, its value for the metric (nil when
/// the row lacks it: a trace without token usage), what it counts distinctly (a session) and
/// its time in milliseconds.
public struct TraceMetricSample: Sendable {
    public var dimensions: [String: String]
    public var value: Double?
    public var distinct: String?
    public var timeMillis: Int64

    public init(dimensions: [String: String], value: Double?, distinct: String? = nil, timeMillis: Int64) {
        self.dimensions = dimensions
        self.value = value
        self.distinct = distinct
        self.timeMillis = timeMillis
    }
}

public struct TraceMetricDataPoint: Sendable, Equatable {
    public var metric: String
    public var dimensions: [(String, String)]
    public var values: [(String, Double)]

    public static func == (a: Self, b: Self) -> Bool {
        a.metric == b.metric && a.dimensions.elementsEqual(b.dimensions, by: ==) && a.values.elementsEqual(b.values, by: ==)
    }

    public var json: JSONValue {
        var o = JSONObject()
        o["metric_name"] = .string(metric)
        if !dimensions.isEmpty { o["dimensions"] = .object(JSONObject(dimensions.map { ($0.0, .string($0.1)) })) }
        o["values"] = .object(JSONObject(values.map { ($0.0, .double($0.1)) }))
        return .object(o)
    }
}

public enum TraceMetrics {
    /// Groups the samples by time bucket and dimensions (in that order, ascending), aggregates
    /// each group, and returns one page of data points. A query without groups over no rows
    /// still answers a count of 0; a value metric with no values answers no point.
    public static func aggregate(_ samples: [TraceMetricSample], _ q: TraceMetricsQuery) -> Page<TraceMetricDataPoint> {
        let usable = q.isCount ? samples.filter { q.metric != "session_count" || $0.distinct != nil } : samples.filter { $0.value != nil }
        let intervalMillis = q.intervalSeconds.map { $0 * 1000 }
        func bucket(_ t: Int64) -> Int64? {
            guard let w = intervalMillis else { return nil }
            // Floor division: buckets line up with the epoch, before it too.
            // No trapping arithmetic on a client's timestamp (a v2 trace may start at Int64.min).
            let (quotient, remainder) = t.quotientAndRemainder(dividingBy: w)
            let (start, overflow) = (remainder < 0 ? quotient - 1 : quotient).multipliedReportingOverflow(by: w)
            return overflow ? quotient * w : start
        }
        struct Key: Hashable, Comparable {
            var bucket: Int64?
            var dims: [String]
            static func < (a: Key, b: Key) -> Bool {
                if a.bucket != b.bucket { return (a.bucket ?? .min) < (b.bucket ?? .min) }
                return a.dims.lexicographicallyPrecedes(b.dims)
            }
        }
        var groups: [Key: [TraceMetricSample]] = [:]
        for s in usable {
            groups[Key(bucket: bucket(s.timeMillis), dims: q.dimensions.map { s.dimensions[$0] ?? "" }), default: []].append(s)
        }
        if groups.isEmpty, q.isCount, q.dimensions.isEmpty, q.intervalSeconds == nil {
            groups[Key(bucket: nil, dims: [])] = []
        }
        let keys = groups.keys.sorted()
        let pageKeys = keys.dropFirst(q.offset).prefix(q.maxResults)
        let points = pageKeys.map { key -> TraceMetricDataPoint in
            let rows = groups[key]!
            var dims = Array(zip(q.dimensions, key.dims))
            if let b = key.bucket { dims.append((TraceMetricsQuery.timeBucketDimension, TraceTime.rfc3339(seconds: b / 1000, fraction: 0, digits: 0, zone: "+00:00"))) }
            let values: [(String, Double)] = q.aggregations.map { a in
                if a.type == .count {
                    if q.metric == "session_count" { return (a.label, Double(Set(rows.compactMap(\.distinct)).count)) }
                    return (a.label, Double(rows.count))
                }
                return (a.label, aggregate(rows.compactMap(\.value), a))
            }
            return TraceMetricDataPoint(metric: q.metric, dimensions: dims, values: values)
        }
        let next = q.offset + pageKeys.count < keys.count ? q.offset + pageKeys.count : nil
        return Page(items: Array(points), nextOffset: next)
    }

    static func aggregate(_ values: [Double], _ a: TraceMetricsQuery.Aggregation) -> Double {
        guard !values.isEmpty else { return 0 }
        switch a.type {
        case .count: return Double(values.count)
        case .sum: return values.reduce(0, +)
        case .avg: return values.reduce(0, +) / Double(values.count)
        case .min: return values.min()!
        case .max: return values.max()!
        case .percentile: return percentile(values.sorted(), a.percentile ?? 50)
        }
    }

    /// The continuous percentile: linear interpolation between the two nearest ranks.
    public static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let rank = p / 100 * Double(sorted.count - 1)
        let lower = Int(rank.rounded(.down))
        let upper = Swift.min(lower + 1, sorted.count - 1)
        let fraction = rank - Double(lower)
        return sorted[lower] + (sorted[upper] - sorted[lower]) * fraction
    }

    /// A JSON number as a Double; nothing else is one.
    public static func number(_ v: JSONValue?) -> Double? {
        switch v {
        case .int(let n)?: return Double(n)
        case .double(let d)?: return d.isFinite ? d : nil
        default: return nil
        }
    }

    /// An assessment value as a number, where it is one: numbers, booleans (1 and 0), and the
    /// strings `yes` and `no` in any case. Other values take no part in `assessment_value`.
    public static func numericAssessmentValue(_ v: JSONValue?) -> Double? {
        if let n = number(v) { return n }
        switch v {
        case .bool(let b)?: return b ? 1 : 0
        case .string(let s)?:
            switch s.lowercased() {
            case "yes": return 1
            case "no": return 0
            default: return nil
            }
        default: return nil
        }
    }

    /// An assessment value as the `assessment_value` dimension spells it: JSON the way Python
    /// dumps a protobuf `Value` (every number a float).
    public static func assessmentValueDimension(_ v: JSONValue?) -> String {
        func floats(_ v: JSONValue) -> JSONValue {
            switch v {
            case .int(let n): return .double(Double(n))
            case .array(let items): return .array(items.map(floats))
            case .object(let o): return .object(JSONObject(o.members.map { ($0.0, floats($0.1)) }))
            default: return v
            }
        }
        return floats(v ?? .null).pythonDumps
    }

    /// A span attribute as the client meant it: MLflow's SDK writes each value JSON-encoded into
    /// a string; other OTel SDKs write plain strings.
    public static func attributeValue(_ v: JSONValue) -> JSONValue {
        if case .string(let s) = v, let decoded = try? JSONValue.parse(s) { return decoded }
        return v
    }
}

/// `calculate-filter-correlation`: how often two filters match the same traces, as normalized
/// pointwise mutual information, raw and smoothed.
public struct TraceFilterCorrelation: Sendable, Equatable {
    public var total: Int
    public var filter1: Int
    public var filter2: Int
    public var joint: Int

    public init(total: Int, filter1: Int, filter2: Int, joint: Int) {
        self.total = total
        self.filter1 = filter1
        self.filter2 = filter2
        self.joint = joint
    }

    /// NPMI from the observed frequencies: −1 when the filters never meet, 1 when they always
    /// do; nil (no answer) when either filter matches nothing.
    public var npmi: Double? {
        guard total > 0, filter1 > 0, filter2 > 0 else { return nil }
        if joint == 0 { return -1 }
        if joint == total { return 1 }
        let n = Double(total)
        return Self.npmi(joint: Double(joint) / n, p1: Double(filter1) / n, p2: Double(filter2) / n)
    }

    /// NPMI with add-one smoothing of each filter's count and add-one-half of the joint count
    /// over n + 2 traces, so small samples do not read as certainty.
    public var npmiSmoothed: Double? {
        guard total > 0, filter1 > 0, filter2 > 0 else { return nil }
        if joint == total { return 1 }
        let n = Double(total) + 2
        return Self.npmi(joint: (Double(joint) + 0.5) / n, p1: (Double(filter1) + 1) / n, p2: (Double(filter2) + 1) / n)
    }

    static func npmi(joint: Double, p1: Double, p2: Double) -> Double {
        let pmi = Foundation.log(joint / (p1 * p2))
        return pmi / -Foundation.log(joint)
    }

    public var json: JSONValue {
        var o = JSONObject()
        if let v = npmi { o["npmi"] = .double(v) }
        if let v = npmiSmoothed { o["npmi_smoothed"] = .double(v) }
        o["filter1_count"] = .int(Int64(filter1))
        o["filter2_count"] = .int(Int64(filter2))
        o["joint_count"] = .int(Int64(joint))
        o["total_count"] = .int(Int64(total))
        return .object(o)
    }
}
