import Foundation
import Testing

@testable import RepriseCore

@Suite("Trace metrics")
struct TraceMetricsTests {
    func query(_ view: String = "TRACES", _ metric: String = "trace_count", _ aggs: [JSONValue] = [["aggregation_type": "COUNT"]],
               dims: [String] = [], filters: [String] = [], interval: Int64? = nil, start: Int64? = nil, end: Int64? = nil,
               max: Int64? = nil, token: String? = nil) throws -> TraceMetricsQuery {
        try TraceMetricsQuery(
            experimentIDs: ["1"], view: view, metric: metric, aggregations: aggs, dimensions: dims, filters: filters,
            intervalSeconds: interval, startTimeMillis: start, endTimeMillis: end, maxResults: max, pageToken: token)
    }

    @Test func percentilesInterpolate() {
        let v: [Double] = [0, 50, 100, 200, 300]
        #expect(TraceMetrics.percentile(v, 50) == 100)
        #expect(TraceMetrics.percentile(v, 90) == 260)
        #expect(TraceMetrics.percentile(v, 0) == 0 && TraceMetrics.percentile(v, 100) == 300)
        #expect(TraceMetrics.percentile([7], 99.5) == 7)
    }

    @Test func filtersReadOneEqualityEach() throws {
        #expect(try query(filters: ["trace.status = 'ok'"]).filters == [.traceStatus("OK")])
        #expect(try query(filters: ["trace.tag.env = 'prod'"]).filters == [.traceTag(key: "env", "prod")])
        #expect(try query(filters: ["trace.metadata.`mlflow.trace.session` = \"s1\""]).filters == [.traceMetadata(key: "mlflow.trace.session", "s1")])
        #expect(try query("SPANS", "span_count", filters: ["span.status = 'STATUS_CODE_ERROR'"]).filters == [.spanStatus("ERROR")])
        #expect(try query("ASSESSMENTS", "assessment_count", filters: ["assessment.type = 'Feedback'"]).filters == [.assessmentType("feedback")])
        for bad in ["", "trace.status = 'OK' AND trace.tag.a = 'b'", "trace.status != 'OK'", "trace.status = OK", "status = 'OK'",
                    "trace.tag = 'x'", "trace.status.x = 'y'", "trace.name = 'x'", "span.name = 'x'", "bogus.k = 'v'"] {
            #expect(throws: RepriseError.self, "\(bad)") { _ = try query(filters: [bad]) }
        }
    }

    @Test func metricAggregationAndDimensionRules() throws {
        #expect(throws: RepriseError.self) { _ = try query(metric: "bogus") }
        #expect(throws: RepriseError.self) { _ = try query(aggs: [["aggregation_type": "SUM"]]) }
        #expect(throws: RepriseError.self) { _ = try query(aggs: []) }
        #expect(throws: RepriseError.self) { _ = try query("TRACES", "latency", [["aggregation_type": "PERCENTILE"]]) }
        #expect(throws: RepriseError.self) { _ = try query("TRACES", "latency", [["aggregation_type": "PERCENTILE", "percentile_value": 101]]) }
        #expect(throws: RepriseError.self) { _ = try query("TRACES", "latency", [["aggregation_type": "AVG", "percentile_value": 5]]) }
        #expect(throws: RepriseError.self) { _ = try query(dims: ["span_type"]) }
        #expect(throws: RepriseError.self) { _ = try query(interval: 60) }
        #expect(throws: RepriseError.self) { _ = try query(interval: .max, start: 0, end: 1) }
        #expect(throws: RepriseError.self) { _ = try query(max: 0) }
        let p = try query("TRACES", "latency", [["aggregation_type": 4, "percentile_value": 99.5], ["aggregation_type": "AVG"], ["aggregation_type": "AVG"]])
        #expect(p.aggregations.map(\.label) == ["P99.5", "AVG"])
        #expect(try query(view: "2", metric: "span_count").view == .spans)
    }

    func query(view: String, metric: String) throws -> TraceMetricsQuery { try query(view, metric) }
    func query(metric: String) throws -> TraceMetricsQuery { try query("TRACES", metric) }
    func query(aggs: [JSONValue]) throws -> TraceMetricsQuery { try query("TRACES", "trace_count", aggs) }

    @Test func groupsBucketsAndPages() throws {
        let hour: Int64 = 3_600_000
        let samples = [
            TraceMetricSample(dimensions: ["trace_status": "OK"], value: 1, timeMillis: 10 * hour + 5),
            TraceMetricSample(dimensions: ["trace_status": "ERROR"], value: 1, timeMillis: 10 * hour + 9),
            TraceMetricSample(dimensions: ["trace_status": "OK"], value: 1, timeMillis: 11 * hour),
            TraceMetricSample(dimensions: ["trace_status": "OK"], value: 1, timeMillis: -1),
        ]
        let q = try query(dims: ["trace_status"], interval: 3600, start: 0, end: 12 * hour)
        let page = TraceMetrics.aggregate(samples, q)
        #expect(page.items.map { $0.dimensions.map(\.1) } == [
            ["OK", "1969-12-31T23:00:00+00:00"], ["ERROR", "1970-01-01T10:00:00+00:00"], ["OK", "1970-01-01T10:00:00+00:00"],
            ["OK", "1970-01-01T11:00:00+00:00"],
        ])
        // Extreme client timestamps bucket without trapping.
        let extreme = [TraceMetricSample(dimensions: [:], value: 1, timeMillis: .min), TraceMetricSample(dimensions: [:], value: 1, timeMillis: .max)]
        #expect(TraceMetrics.aggregate(extreme, try query(interval: 3600, start: .min, end: .max)).items.count == 2)
        let first = TraceMetrics.aggregate(samples, try query(dims: ["trace_status"], max: 1))
        #expect(first.items.count == 1 && first.items[0].dimensions.map(\.1) == ["ERROR"] && first.nextOffset == 1)
        // No rows: a plain count answers 0, a value metric answers nothing.
        #expect(TraceMetrics.aggregate([], try query()).items.map(\.values.first!.1) == [0])
        #expect(TraceMetrics.aggregate([], try query("TRACES", "input_tokens", [["aggregation_type": "SUM"]])).items.isEmpty)
        let sessions = [
            TraceMetricSample(dimensions: [:], value: 1, distinct: "a", timeMillis: 0),
            TraceMetricSample(dimensions: [:], value: 1, distinct: "a", timeMillis: 0),
            TraceMetricSample(dimensions: [:], value: 1, distinct: nil, timeMillis: 0),
            TraceMetricSample(dimensions: [:], value: 1, distinct: "b", timeMillis: 0),
        ]
        #expect(TraceMetrics.aggregate(sessions, try query(metric: "session_count")).items.map(\.values.first!.1) == [2])
    }

    @Test func assessmentValues() {
        #expect(TraceMetrics.numericAssessmentValue(.bool(true)) == 1 && TraceMetrics.numericAssessmentValue(.string("No")) == 0)
        #expect(TraceMetrics.numericAssessmentValue(.string("good")) == nil && TraceMetrics.numericAssessmentValue(.string("1")) == nil)
        #expect(TraceMetrics.numericAssessmentValue(.int(3)) == 3)
        #expect(TraceMetrics.assessmentValueDimension(.int(3)) == "3.0")
        #expect(TraceMetrics.assessmentValueDimension(["a": .int(1)]) == #"{"a": 1.0}"#)
        #expect(TraceMetrics.assessmentValueDimension(.string("yes")) == #""yes""#)
    }

    @Test func npmi() {
        let c = TraceFilterCorrelation(total: 10, filter1: 6, filter2: 7, joint: 6)
        #expect(abs(c.npmi! - log(0.6 / 0.42) / -log(0.6)) < 1e-12)
        #expect(abs(c.npmiSmoothed! - log((6.5 / 12) / ((7.0 / 12) * (8.0 / 12))) / -log(6.5 / 12)) < 1e-12)
        #expect(TraceFilterCorrelation(total: 7, filter1: 4, filter2: 3, joint: 0).npmi == -1)
        #expect(TraceFilterCorrelation(total: 6, filter1: 6, filter2: 6, joint: 6).npmi == 1)
        #expect(TraceFilterCorrelation(total: 6, filter1: 6, filter2: 6, joint: 6).npmiSmoothed == 1)
        let none = TraceFilterCorrelation(total: 10, filter1: 0, filter2: 7, joint: 0)
        #expect(none.npmi == nil && none.npmiSmoothed == nil && none.json["npmi"] == nil)
        #expect(TraceFilterCorrelation(total: 0, filter1: 0, filter2: 0, joint: 0).npmi == nil)
    }
}
