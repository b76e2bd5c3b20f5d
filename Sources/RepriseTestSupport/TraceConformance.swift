import Foundation
import RepriseCore
import Testing

/// Trace behaviour every backend must show: spans before or after the info, search, tags,
/// assessments, run links and deletion.
public struct TraceConformance: Sendable {
    public typealias Store = any TrackingStore & TraceStore
    let make: @Sendable () async throws -> Store

    /// - Parameter make: returns a new, empty, migrated store each time it is called.
    public init(make: @escaping @Sendable () async throws -> Store) { self.make = make }

    static func span(_ trace: String, _ id: String, parent: String?, name: String, type: String? = nil, status: String = "OK", start: Int64, end: Int64?) -> SpanRecord {
        SpanRecord(
            traceID: trace, spanID: id, parentSpanID: parent, name: name, spanType: type, status: status, startTimeNanos: start,
            endTimeNanos: end, content: #"{"name":"\#(name)","span_id":"\#(id)","note":"content of \#(name)"}"#)
    }

    static func info(_ id: String, _ experiment: String, at time: Int64, state: TraceState = .ok) -> TraceInfo {
        TraceInfo(
            traceID: id, experimentID: experiment, requestTime: time, executionDuration: 40, state: state, requestPreview: "{\"q\": \"\(id)\"}",
            responsePreview: "answer", metadata: [KeyValue("mlflow.trace_schema.version", "3")], tags: [KeyValue("mlflow.traceName", "agent")])
    }

    public func spansAndInfoInEitherOrder() async throws {
        let s = try await make()
        let exp = try await s.createExperiment(name: "traces", artifactLocation: nil, tags: [])
        // Info first, then spans.
        let a = try await s.startTrace(Self.info("tr-a", exp, at: 1_000))
        #expect(a.tag(TraceKeys.artifactLocation) == "mlflow-artifacts:/\(exp)/traces/tr-a/artifacts")
        #expect(a.tag(TraceKeys.spansLocation) == nil && a.metadata(TraceKeys.infoFinalized) == "true")
        try await s.logSpans(experimentID: exp, [
            Self.span("tr-a", "01", parent: nil, name: "root", type: "CHAIN", start: 1_000_000_000, end: 1_040_000_000),
            Self.span("tr-a", "02", parent: "01", name: "llm", type: "LLM", start: 1_010_000_000, end: 1_020_000_000),
        ])
        let readA = try await s.getTraceInfo(id: "tr-a")
        #expect(readA.tag(TraceKeys.spansLocation) == TraceKeys.trackingStore)
        #expect(readA.requestTime == 1_000 && readA.requestPreview == "{\"q\": \"tr-a\"}", "the info's own fields stay")

        // Spans first (the info comes later, or never): the trace is made from its root span.
        try await s.logSpans(experimentID: exp, [
            Self.span("tr-b", "03", parent: nil, name: "solo", status: "ERROR", start: 5_000_000_000, end: 5_250_000_000)
        ])
        let early = try await s.getTraceInfo(id: "tr-b")
        #expect(early.requestTime == 5_000 && early.executionDuration == 250 && early.state == .error)
        #expect(early.tag(TraceKeys.name) == "solo" && early.experimentID == exp)
        var late = Self.info("tr-b", exp, at: 5_000, state: .error)
        late.tags.append(KeyValue("team", "x"))
        let finished = try await s.startTrace(late)
        #expect(finished.tag(TraceKeys.spansLocation) == TraceKeys.trackingStore, "spans already stored stay known")
        #expect(finished.tag("team") == "x" && finished.requestPreview == "{\"q\": \"tr-b\"}")

        // The same span again replaces it; spans come back oldest first.
        try await s.logSpans(experimentID: exp, [Self.span("tr-a", "02", parent: "01", name: "llm-2", start: 1_010_000_000, end: 1_020_000_000)])
        let full = try await s.getTraces(ids: ["tr-a", "tr-missing", "tr-b"])
        #expect(full.map(\.info.traceID) == ["tr-a", "tr-b"])
        #expect(full[0].spans.count == 2 && full[0].spans[1].contains("llm-2"))

        // Another experiment cannot take over a trace.
        let other = try await s.createExperiment(name: "other", artifactLocation: nil, tags: [])
        await #expect(throws: RepriseError.self) { _ = try await s.startTrace(Self.info("tr-a", other, at: 1_000)) }
        await #expect(throws: RepriseError.self) { try await s.logSpans(experimentID: "424242", [Self.span("tr-z", "09", parent: nil, name: "x", start: 1, end: 2)]) }
        await #expect(throws: RepriseError.self) { _ = try await s.getTraceInfo(id: "tr-z") }
    }

    public func searchTagsAssessmentsAndDeletion() async throws {
        let s = try await make()
        let exp = try await s.createExperiment(name: "search", artifactLocation: nil, tags: [])
        for i in 0..<6 {
            let id = "tr-\(i)"
            _ = try await s.startTrace(Self.info(id, exp, at: Int64(1_000 * (i + 1)), state: i == 4 ? .error : .ok))
            try await s.logSpans(experimentID: exp, [
                Self.span(id, "a\(i)", parent: nil, name: "root", start: Int64(i + 1) * 1_000_000_000, end: Int64(i + 1) * 1_000_000_000 + 5),
                Self.span(id, "b\(i)", parent: "a\(i)", name: i % 2 == 0 ? "retrieve" : "generate", type: i % 2 == 0 ? "RETRIEVER" : "LLM",
                          start: Int64(i + 1) * 1_000_000_000 + 1, end: Int64(i + 1) * 1_000_000_000 + 4),
            ])
        }
        try await s.setTraceTag(id: "tr-1", key: "team", value: "search")
        try await s.setTraceTag(id: "tr-3", key: "team", value: "search")
        try await s.setTraceTag(id: "tr-3", key: "team", value: "research")
        try await s.deleteTraceTag(id: "tr-1", key: "team")
        await #expect(throws: RepriseError.self) { try await s.deleteTraceTag(id: "tr-1", key: "team") }
        await #expect(throws: RepriseError.self) { try await s.setTraceTag(id: "tr-none", key: "a", value: "b") }

        func ids(_ filter: String?, order: [String] = [], max: Int? = nil, token: String? = nil) async throws -> [String] {
            try await s.searchTraces(TraceSearchQuery(experimentIDs: [exp], filter: filter, orderBy: order, maxResults: max, pageToken: token))
                .items.map(\.traceID)
        }
        #expect(try await ids(nil) == ["tr-5", "tr-4", "tr-3", "tr-2", "tr-1", "tr-0"])
        #expect(try await ids(nil, order: ["timestamp_ms ASC"]) == ["tr-0", "tr-1", "tr-2", "tr-3", "tr-4", "tr-5"])
        #expect(try await ids("tag.team LIKE '%search'") == ["tr-3"])
        #expect(try await ids("tag.team IS NULL").count == 5)
        #expect(try await ids("trace.status = 'ERROR'") == ["tr-4"])
        #expect(try await ids("status = 'error'") == ["tr-4"], "state names are matched case-insensitively")
        #expect(try await ids("span.type = 'LLM'") == ["tr-5", "tr-3", "tr-1"])
        #expect(try await ids("span.name = 'retrieve' AND timestamp_ms >= 3000") == ["tr-4", "tr-2"])
        #expect(try await ids("span.status = 'STATUS_CODE_OK'").count == 6)
        #expect(try await ids("span.content LIKE '%content of generate%'") == ["tr-5", "tr-3", "tr-1"])
        #expect(try await ids("trace.text ILIKE '%\"TR-2\"%'") == ["tr-2"])
        #expect(try await ids("trace.text LIKE '%generate%'") == ["tr-5", "tr-3", "tr-1"], "span names are searched")
        #expect(try await ids("trace.text LIKE '%span_id%'") == [], "the JSON's own words are not")
        #expect(try await ids("metadata.`mlflow.trace_schema.version` = '3'").count == 6)
        #expect(try await ids("trace.name = 'agent' AND execution_time_ms = 40").count == 6)
        #expect(try await ids("end_time_ms > 5000") == ["tr-5", "tr-4"])
        #expect(try await ids("trace.request_id IN ('tr-1', 'tr-2')") == ["tr-2", "tr-1"])
        let page = try await s.searchTraces(TraceSearchQuery(experimentIDs: [exp], filter: nil, orderBy: [], maxResults: 4, pageToken: nil))
        #expect(page.items.count == 4 && page.nextOffset == 4)
        #expect(try await ids(nil, max: 4, token: PageToken.encode(offset: 4)) == ["tr-1", "tr-0"])

        // Assessments: the filter sees the valid ones only.
        let fb = try await s.createAssessment(
            try Assessment.fromWire(["assessment_name": "correct", "feedback": ["value": true], "source": ["source_type": "HUMAN"]],
                                    traceID: "tr-2", id: "a-1", now: 10))
        #expect(fb.valid && fb.comparableValue == "true")
        #expect(try await ids("feedback.correct = 'true'") == ["tr-2"])
        let override = try await s.createAssessment(
            try Assessment.fromWire(["assessment_name": "correct", "feedback": ["value": false], "overrides": "a-1"], traceID: "tr-2", id: "a-2", now: 11))
        #expect(try await s.getAssessment(traceID: "tr-2", id: "a-1").valid == false && override.valid)
        #expect(try await ids("feedback.correct = 'true'") == [])
        #expect(try await ids("feedback.correct = 'false'") == ["tr-2"])
        let renamed = try await s.updateAssessment(traceID: "tr-2", id: "a-2") {
            try $0.updated(with: ["assessment_name": "right", "rationale": "checked"], mask: "assessmentName,rationale", now: 12)
        }
        #expect(renamed.name == "right" && renamed.body["rationale"] == "checked" && renamed.lastUpdateTime == 12 && renamed.createTime == 11)
        #expect(try await s.getTraceInfo(id: "tr-2").assessments.map(\.assessmentID) == ["a-1", "a-2"])
        try await s.deleteAssessment(traceID: "tr-2", id: "a-2")
        #expect(try await s.getAssessment(traceID: "tr-2", id: "a-1").valid, "deleting the override makes the original valid again")
        await #expect(throws: RepriseError.self) { _ = try await s.getAssessment(traceID: "tr-3", id: "a-1") }
        await #expect(throws: RepriseError.self) {
            _ = try await s.createAssessment(try Assessment.fromWire(["assessment_name": "x", "expectation": ["value": 1]], traceID: "tr-none", id: "a-9", now: 1))
        }

        // Runs: made in (metadata) or linked.
        let run = try await s.createRun(CreateRunInput(experimentID: exp, userID: "u", runName: nil, startTime: 1, tags: []))
        _ = try await s.startTrace({ var i = Self.info("tr-0", exp, at: 1_000); i.metadata.append(KeyValue(TraceKeys.sourceRun, run.info.runID)); return i }())
        try await s.linkTracesToRun(traceIDs: ["tr-5"], runID: run.info.runID)
        #expect(try await ids("run_id = '\(run.info.runID)'") == ["tr-5", "tr-0"])
        // A trace linked before it arrives (background export) is found once it does.
        try await s.linkTracesToRun(traceIDs: ["tr-late"], runID: run.info.runID)
        _ = try await s.startTrace(Self.info("tr-late", exp, at: 500))
        #expect(try await ids("run_id = '\(run.info.runID)'") == ["tr-5", "tr-0", "tr-late"])
        await #expect(throws: RepriseError.self) { try await s.linkTracesToRun(traceIDs: ["tr-1"], runID: "no-such-run") }
        let otherExp = try await s.createExperiment(name: "elsewhere", artifactLocation: nil, tags: [])
        let otherRun = try await s.createRun(CreateRunInput(experimentID: otherExp, userID: "u", runName: nil, startTime: 1, tags: []))
        await #expect(throws: RepriseError.self) { try await s.linkTracesToRun(traceIDs: ["tr-1"], runID: otherRun.info.runID) }

        // Deletion: by id, then by age (oldest first, bounded); everything of a trace goes.
        #expect(try await s.deleteTraces(experimentID: exp, maxTimestamp: nil, maxTraces: nil, ids: ["tr-2", "tr-none"]) == 1)
        await #expect(throws: RepriseError.self) { _ = try await s.getAssessment(traceID: "tr-2", id: "a-1") }
        #expect(try await s.deleteTraces(experimentID: exp, maxTimestamp: 4_000, maxTraces: 3, ids: nil) == 3)
        #expect(try await ids(nil) == ["tr-5", "tr-4", "tr-3"])
        #expect(try await s.getTraces(ids: ["tr-0"]).isEmpty)
    }
}

extension TraceConformance {
    /// `traces/metrics` rows and `calculate-filter-correlation` counts read the same on every
    /// backend: filters, time windows, span attributes and assessments.
    public func metricsAndCorrelation() async throws {
        let s = try await make()
        let exp = try await s.createExperiment(name: "analytics", artifactLocation: nil, tags: [])
        let ms: Int64 = 1_000_000
        for (i, (state, env)) in [(TraceState.ok, "prod"), (.ok, "prod"), (.error, "dev")].enumerated() {
            var info = Self.info("tr-m\(i)", exp, at: Int64(i) * 1_000, state: state)
            info.tags.append(KeyValue("env", env))
            info.metadata.append(KeyValue(TraceKeys.tokenUsage, #"{"input_tokens": \#(10 * (i + 1)), "output_tokens": 1}"#))
            _ = try await s.startTrace(info)
            let attrs = #"[{"key":"mlflow.llm.model","value":{"string_value":"\"m-\#(i % 2)\""}},{"key":"mlflow.llm.cost","value":{"string_value":"{\"total_cost\": \#(i + 1).5}"}}]"#
            try await s.logSpans(experimentID: exp, [
                SpanRecord(traceID: "tr-m\(i)", spanID: "r\(i)", parentSpanID: nil, name: "root", spanType: nil, status: state.rawValue,
                           startTimeNanos: Int64(i) * 1_000 * ms, endTimeNanos: (Int64(i) * 1_000 + 40) * ms, content: "{}"),
                SpanRecord(traceID: "tr-m\(i)", spanID: "c\(i)", parentSpanID: "r\(i)", name: "llm", spanType: "LLM", status: "OK",
                           startTimeNanos: (Int64(i) * 1_000 + 5) * ms, endTimeNanos: (Int64(i) * 1_000 + 25) * ms,
                           content: #"{"name":"llm","attributes":\#(attrs)}"#),
            ])
        }
        _ = try await s.createAssessment(try Assessment.fromWire(
            ["assessment_name": "ok", "feedback": ["value": true], "source": ["source_type": "HUMAN"]], traceID: "tr-m0", id: "a-1", now: 5))
        _ = try await s.createAssessment(try Assessment.fromWire(
            ["assessment_name": "ok", "feedback": ["value": "no"], "source": ["source_type": "HUMAN"]], traceID: "tr-m2", id: "a-2", now: 6))

        func run(_ view: String, _ metric: String, _ agg: String, dims: [String] = [], filters: [String] = [], start: Int64? = nil, end: Int64? = nil)
            async throws -> [[String]]
        {
            let q = try TraceMetricsQuery(
                experimentIDs: [exp], view: view, metric: metric, aggregations: [["aggregation_type": .string(agg)]], dimensions: dims,
                filters: filters, intervalSeconds: nil, startTimeMillis: start, endTimeMillis: end, maxResults: nil, pageToken: nil)
            return TraceMetrics.aggregate(try await s.traceMetricSamples(q), q).items.map { $0.dimensions.map(\.1) + $0.values.map { "\($0.1)" } }
        }
        #expect(try await run("TRACES", "trace_count", "COUNT", dims: ["trace_status"]) == [["ERROR", "1.0"], ["OK", "2.0"]])
        #expect(try await run("TRACES", "trace_count", "COUNT", filters: ["trace.tag.env = 'prod'", "trace.status = 'OK'"]) == [["2.0"]])
        #expect(try await run("TRACES", "trace_count", "COUNT", start: 1_000, end: 2_000) == [["2.0"]])
        #expect(try await run("TRACES", "input_tokens", "SUM", dims: ["trace_name"]) == [["agent", "60.0"]])
        #expect(try await run("TRACES", "latency", "MAX") == [["40.0"]])
        #expect(try await run("SPANS", "span_count", "COUNT", dims: ["span_type"]) == [["LLM", "3.0"], ["UNKNOWN", "3.0"]])
        #expect(try await run("SPANS", "total_cost", "SUM", dims: ["span_model_name"]) == [["m-0", "5.0"], ["m-1", "2.5"]])
        #expect(try await run("SPANS", "latency", "AVG", filters: ["span.type = 'LLM'"]) == [["20.0"]])
        #expect(try await run("ASSESSMENTS", "assessment_value", "AVG", dims: ["assessment_name"]) == [["ok", "0.5"]])
        #expect(try await run("ASSESSMENTS", "assessment_count", "COUNT", filters: ["trace.status = 'ERROR'"]) == [["1.0"]])

        let clauses = { (f: String) in try TraceSearchQuery.clauses(f) }
        let c = try await s.traceFilterCorrelation(
            experimentIDs: [Int64(exp)!], base: [], filter1: try clauses("tag.env = 'prod'"), filter2: try clauses("span.type = 'LLM' AND trace.status = 'OK'"))
        #expect(c == TraceFilterCorrelation(total: 3, filter1: 2, filter2: 2, joint: 2))
        let based = try await s.traceFilterCorrelation(
            experimentIDs: [Int64(exp)!], base: try clauses("trace.status = 'OK'"), filter1: try clauses("tag.env = 'prod'"), filter2: [])
        #expect(based == TraceFilterCorrelation(total: 2, filter1: 2, filter2: 2, joint: 2))
    }
}

extension TraceConformance {
    /// One write naming a key (or span id) twice keeps the last, on every backend (PostgreSQL refuses
    /// a multi-row upsert that touches a row twice: found by the fuzz test).
    public func duplicateKeysInOneWrite() async throws {
        let s = try await make()
        let exp = try await s.createExperiment(name: "dups", artifactLocation: nil, tags: [])
        var info = Self.info("tr-dup", exp, at: 1_000)
        info.metadata += [KeyValue("k", "first"), KeyValue("k", "second")]
        info.tags += [KeyValue("t", "a"), KeyValue("t", "b")]
        _ = try await s.startTrace(info)
        let stored = try await s.getTraceInfo(id: "tr-dup")
        #expect(stored.metadata("k") == "second" && stored.tag("t") == "b")
        try await s.logSpans(experimentID: exp, [
            Self.span("tr-dup", "aaaaaaaaaaaaaaaa", parent: nil, name: "first", start: 1, end: 2),
            Self.span("tr-dup", "aaaaaaaaaaaaaaaa", parent: nil, name: "second", start: 1, end: 3),
        ])
        let spans = try await s.getTraces(ids: ["tr-dup"]).first?.spans ?? []
        #expect(spans.count == 1 && spans[0].contains("second"))
    }
}
