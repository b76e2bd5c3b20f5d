import Foundation
import RepriseCore

/// Trace analytics: the rows a metrics query selects, and the four counts of a filter
/// correlation. Grouping and arithmetic are `TraceMetrics`' and `TraceFilterCorrelation`'s.
extension SQLTrackingStore {
    public func traceMetricSamples(_ q: TraceMetricsQuery) async throws -> [TraceMetricSample] {
        if q.experimentIDs.isEmpty { return [] }
        var conditions = ["tr.experiment_id IN (\(placeholders(q.experimentIDs.count)))"]
        var binds = q.experimentIDs.map(SQLValue.int)
        for filter in q.filters {
            let (fragment, b) = metricFilter(filter)
            conditions.append(fragment)
            binds += b
        }
        // The time window, on the row's own time: the trace's start, the span's start, the
        // assessment's creation. Both ends included, as the reference does.
        let (timeColumn, timeScale): (String, Int64) =
            switch q.view {
            case .traces: ("tr.request_time", 1)
            case .spans: ("s.start_time", 1_000_000)
            case .assessments: ("a.create_time", 1)
            }
        func scaled(_ ms: Int64) -> Int64 {
            let (v, overflow) = ms.multipliedReportingOverflow(by: timeScale)
            return overflow ? (ms < 0 ? .min : .max) : v
        }
        if let start = q.startTimeMillis {
            conditions.append("\(timeColumn) >= ?")
            binds.append(.int(scaled(start)))
        }
        if let end = q.endTimeMillis {
            conditions.append("\(timeColumn) <= ?")
            binds.append(.int(scaled(end)))
        }
        let wanted = Set(q.dimensions)
        switch q.view {
        case .traces: return try await traceSamples(q, wanted, conditions, binds)
        case .spans: return try await spanSamples(q, wanted, conditions, binds)
        case .assessments: return try await assessmentSamples(q, wanted, conditions, binds)
        }
    }

    func traceSamples(_ q: TraceMetricsQuery, _ wanted: Set<String>, _ conditions: [String], _ binds: [SQLValue]) async throws
        -> [TraceMetricSample]
    {
        let isTokens = TraceKeys.tokenUsageKeys.contains(q.metric)
        var columns = ["tr.request_time", "tr.execution_duration", "tr.state"]
        var selectBinds: [SQLValue] = []
        for (needed, table, key) in [
            (wanted.contains("trace_name"), "trace_tags", TraceKeys.name), (isTokens, "trace_metadata", TraceKeys.tokenUsage),
            (q.metric == "session_count", "trace_metadata", TraceKeys.session),
        ] {
            columns.append(needed ? "(SELECT x.value FROM \(table) x WHERE x.trace_id = tr.trace_id AND x.key = ?)" : "NULL")
            if needed { selectBinds.append(.text(key)) }
        }
        let sql = "SELECT \(columns.joined(separator: ", ")) FROM traces tr WHERE \(conditions.joined(separator: " AND "))"
        let metric = q.metric
        let allBinds = selectBinds + binds
        return try await read { db in
            var out: [TraceMetricSample] = []
            for row in try await db.query(sql, allBinds) {
                var dims: [String: String] = ["trace_status": row.string(2)]
                if wanted.contains("trace_name") {
                    guard let name = row.optionalString(3) else { continue }
                    dims["trace_name"] = name
                }
                var value: Double?
                switch metric {
                case "latency": value = row.optionalInt(1).map(Double.init)
                case _ where isTokens:
                    if let text = row.optionalString(4), let usage = try? JSONValue.parse(text) {
                        value = TraceMetrics.number(usage[metric])
                    }
                default: value = 1
                }
                out.append(TraceMetricSample(dimensions: dims, value: value, distinct: row.optionalString(5), timeMillis: row.int(0)))
            }
            return out
        }
    }

    func spanSamples(_ q: TraceMetricsQuery, _ wanted: Set<String>, _ conditions: [String], _ binds: [SQLValue]) async throws
        -> [TraceMetricSample]
    {
        let isCost = TraceKeys.costKeys.contains(q.metric)
        let needsAttributes = isCost || wanted.contains("span_model_name") || wanted.contains("span_model_provider")
        let sql =
            "SELECT s.name, s.span_type, s.status, s.start_time, s.end_time, \(needsAttributes ? "s.content" : "NULL") FROM spans s JOIN traces tr ON tr.trace_id = s.trace_id WHERE \(conditions.joined(separator: " AND "))"
        let metric = q.metric
        return try await read { db in
            var out: [TraceMetricSample] = []
            for row in try await db.query(sql, binds) {
                var dims = ["span_name": row.string(0), "span_type": row.optionalString(1) ?? "UNKNOWN", "span_status": row.string(2)]
                let start = row.int(3)
                var value: Double? = 1
                if needsAttributes {
                    var attributes: [String: JSONValue] = [:]
                    if let content = row.optionalString(5), let span = try? JSONValue.parse(content) {
                        for (k, v) in MLflowSpanDict.attributes(span["attributes"])
                        where k == TraceKeys.spanModel || k == TraceKeys.spanModelProvider || k == TraceKeys.spanCost {
                            attributes[k] = TraceMetrics.attributeValue(v)
                        }
                    }
                    // A span that lacks a dimension asked for takes no part (it called no model).
                    if wanted.contains("span_model_name") {
                        guard case .string(let model)? = attributes[TraceKeys.spanModel] else { continue }
                        dims["span_model_name"] = model
                    }
                    if wanted.contains("span_model_provider") {
                        guard case .string(let provider)? = attributes[TraceKeys.spanModelProvider] else { continue }
                        dims["span_model_provider"] = provider
                    }
                    if isCost {
                        value = TraceMetrics.number(attributes[TraceKeys.spanCost]?[metric])
                    }
                }
                if metric == "latency" {
                    // Whole milliseconds, as the span's own clock measured them.
                    value = row.optionalInt(4).map { end in Double(end.subtractingReportingOverflow(start).partialValue / 1_000_000) }
                }
                let ms = start / 1_000_000
                out.append(TraceMetricSample(dimensions: dims, value: value, timeMillis: ms))
            }
            return out
        }
    }

    func assessmentSamples(_ q: TraceMetricsQuery, _ wanted: Set<String>, _ conditions: [String], _ binds: [SQLValue]) async throws
        -> [TraceMetricSample]
    {
        let sql =
            "SELECT a.name, a.kind, a.body, a.create_time FROM assessments a JOIN traces tr ON tr.trace_id = a.trace_id WHERE a.valid = 1 AND \(conditions.joined(separator: " AND "))"
        let metric = q.metric
        return try await read { db in
            var out: [TraceMetricSample] = []
            for row in try await db.query(sql, binds) {
                let kind = row.string(1)
                let raw = (try? JSONValue.parse(row.string(2)))?[kind]?["value"]
                var dims = ["assessment_name": row.string(0)]
                if wanted.contains("assessment_value") { dims["assessment_value"] = TraceMetrics.assessmentValueDimension(raw) }
                let value = metric == "assessment_value" ? TraceMetrics.numericAssessmentValue(raw) : 1
                out.append(TraceMetricSample(dimensions: dims, value: value, timeMillis: row.int(3)))
            }
            return out
        }
    }

    /// One metrics filter as SQL over `tr` (the trace), `s` (a span) or `a` (an assessment).
    func metricFilter(_ f: TraceMetricsQuery.Filter) -> (String, [SQLValue]) {
        switch f {
        case .traceStatus(let v): return ("tr.state = ?", [.text(v)])
        case .traceTag(let k, let v): return traceClause(.tag(key: k, .eq, .string(v)))
        case .traceMetadata(let k, let v): return traceClause(.metadata(key: k, .eq, .string(v)))
        case .spanName(let v): return ("s.name = ?", [.text(v)])
        case .spanStatus(let v): return ("s.status = ?", [.text(v)])
        case .spanType(let v): return ("s.span_type = ?", [.text(v)])
        case .assessmentName(let v): return ("a.name = ?", [.text(v)])
        case .assessmentType(let v): return ("a.kind = ?", [.text(v)])
        }
    }

    public func traceFilterCorrelation(
        experimentIDs: [Int64], base: [TraceSearchQuery.Clause], filter1: [TraceSearchQuery.Clause], filter2: [TraceSearchQuery.Clause]
    ) async throws -> TraceFilterCorrelation {
        if experimentIDs.isEmpty { return TraceFilterCorrelation(total: 0, filter1: 0, filter2: 0, joint: 0) }
        func condition(_ clauses: [TraceSearchQuery.Clause]) -> (String, [SQLValue]) {
            if clauses.isEmpty { return ("1 = 1", []) }
            let parts = clauses.map(traceClause)
            return (parts.map { "(\($0.0))" }.joined(separator: " AND "), parts.flatMap(\.1))
        }
        let (c1, b1) = condition(filter1)
        let (c2, b2) = condition(filter2)
        let (cb, bb) = condition(base)
        let sql = """
            SELECT COUNT(*), COALESCE(SUM(CASE WHEN \(c1) THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN \(c2) THEN 1 ELSE 0 END), 0),
              COALESCE(SUM(CASE WHEN (\(c1)) AND (\(c2)) THEN 1 ELSE 0 END), 0)
            FROM traces tr WHERE tr.experiment_id IN (\(placeholders(experimentIDs.count))) AND \(cb)
            """
        let binds = b1 + b2 + b1 + b2 + experimentIDs.map(SQLValue.int) + bb
        return try await read { db in
            guard let row = try await db.queryOne(sql, binds) else { return TraceFilterCorrelation(total: 0, filter1: 0, filter2: 0, joint: 0) }
            return TraceFilterCorrelation(
                total: Int(row.int(0)), filter1: Int(row.int(1)), filter2: Int(row.int(2)), joint: Int(row.int(3)))
        }
    }
}
