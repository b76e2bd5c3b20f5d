import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import RepriseCore
import RepriseOTLP

// MLflow 3 traces: OTLP span export, the v3 trace endpoints (and the v2 paths the client still
// uses for tags, deletion and run links), and assessments.
extension RepriseAPI {
    /// The store behind the trace routes.
    func traceStore() throws -> any TraceStore {
        guard let traces else { throw RepriseError(.notImplemented, "This server's store does not keep traces.") }
        return traces
    }

    /// The experiment ids a trace request names in `locations` (only MLflow experiments exist here).
    static func traceLocations(_ p: Params) throws -> [String] {
        try p.array("locations").map { item in
            guard case .object(let o) = item else { throw RepriseError.invalid("Invalid value for 'locations': expected objects.") }
            if case .string(let type)? = o["type"], type != "MLFLOW_EXPERIMENT" {
                throw RepriseError.invalid("Unsupported trace location type '\(type)': this server keeps traces in MLflow experiments.")
            }
            guard case .string(let id)? = o["mlflow_experiment"]?["experiment_id"], !id.isEmpty else {
                throw RepriseError.missing("locations.mlflow_experiment.experiment_id")
            }
            return id
        }
    }

    /// The experiment a StartTraceV3 message names.
    static let startTraceExperiment = Locator(name: "trace.trace_info.trace_location") { _, p, _ in
        guard case .object(let trace)? = try p.raw("trace"), case .object(let info)? = trace["trace_info"],
            case .string(let id)? = info["trace_location"]?["mlflow_experiment"]?["experiment_id"]
        else { return nil }
        return id
    }

    /// Keeps the traces the caller may read (batch reads name traces, not experiments).
    func readableTraces<T>(_ items: [T], experiment: (T) -> String) async throws -> [T] {
        let canRead = try await callerPredicate(.read, .experiment)
        return items.filter { canRead(experiment($0)) }
    }

    func registerTraces() {
        // OTLP/HTTP: the spans of finished traces, protobuf or JSON.
        route(.post, "/v1/traces", access: .experiment(.update, .experimentHeader)) { [self] call in
            let traces = try traceStore()
            guard let encoding = OTLPTraces.Encoding(contentType: call.request.headers[.contentType]) else {
                throw RepriseError.invalid(
                    "Invalid Content-Type '\(call.request.headers[.contentType] ?? "")' for an OTLP export: send application/x-protobuf or application/json.")
            }
            guard let experiment = call.request.headers[HTTPField.Name("x-mlflow-experiment-id")!], !experiment.isEmpty else {
                throw RepriseError.invalid("An OTLP export needs the header x-mlflow-experiment-id naming the experiment the traces belong to.")
            }
            let body = try OTLPTraces.body(
                try await call.body(limit: config.maxJSONBodyBytes), contentEncoding: call.request.headers[.contentEncoding], limit: config.maxJSONBodyBytes)
            let spans = try OTLPTraces.decode(body, encoding: encoding)
            try await traces.logSpans(experimentID: experiment, spans)
            return Response(
                status: .ok, headers: [.contentType: encoding.contentType],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: OTLPTraces.response(encoding))))
        }
        // StartTraceV3: sent once, when the trace ends, with its info.
        route(.post, "/api/3.0/mlflow/traces", access: .experiment(.update, Self.startTraceExperiment)) { [self] call in
            let p = try await call.params()
            guard case .object(let trace)? = try p.raw("trace") else { throw RepriseError.missing("trace") }
            guard case .object(let info)? = trace["trace_info"] else { throw RepriseError.missing("trace.trace_info") }
            let stored = try await traceStore().startTrace(try TraceInfo(wire: info))
            return Self.json(["trace": ["trace_info": stored.json]])
        }
        let v3 = "/api/3.0/mlflow/traces"
        route(.get, v3 + "/{trace_id}", access: .experiment(.read, .pathTrace("trace_id"))) { [self] call in
            let info = try await traceStore().getTraceInfo(id: try call.pathParameter("trace_id"))
            return Self.json(["trace": ["trace_info": info.json]])
        }
        route(.get, v3 + "/get", access: .experiment(.read, .traceField("trace_id"))) { [self] call in
            let id = try await call.params().requiredString("trace_id")
            guard let trace = try await traceStore().getTraces(ids: [id]).first else {
                throw RepriseError.notFound("Trace with ID \(id) is not found.")
            }
            return Self.json(["trace": trace.json])
        }
        route(.get, v3 + "/batchGet", access: .authenticated) { [self] call in
            let ids = try await call.params().stringList("trace_ids")
            try Self.requireBatch(ids)
            let found = try await readableTraces(try await traceStore().getTraces(ids: ids)) { $0.info.experimentID }
            return Self.json(["traces": .array(found.map(\.json))])
        }
        route(.post, v3 + "/batchGetInfos", access: .authenticated) { [self] call in
            let ids = try await call.params().stringList("trace_ids")
            try Self.requireBatch(ids)
            let found = try await readableTraces(try await traceStore().traceInfos(ids: ids)) { $0.experimentID }
            return Self.json(["trace_infos": .array(found.map(\.json))])
        }
        route(.post, v3 + "/search", access: .authenticated) { [self] call in
            let p = try await call.params()
            var experiments = try Self.traceLocations(p)
            experiments += try p.stringList("experiment_ids")
            if experiments.isEmpty { throw RepriseError.invalid("A trace search needs at least one location (an experiment).") }
            return try await searchTraces(p, experiments: experiments, as: \.json)
        }
        // Trace analytics: counts, latencies, tokens, costs and assessment values by dimension
        // and time bucket; and how two filters co-occur.
        route(.post, v3 + "/metrics", access: .authenticated) { [self] call in
            let p = try await call.params()
            let experiments = try p.stringList("experiment_ids")
            try await requireReadableExperiments(experiments, what: "trace metrics")
            let query = try TraceMetricsQuery(
                experimentIDs: experiments, view: try Self.enumName(p, "view_type"), metric: try p.string("metric_name"),
                aggregations: try p.array("aggregations"), dimensions: try p.stringList("dimensions"), filters: try p.stringList("filters"),
                intervalSeconds: try p.int64("time_interval_seconds"), startTimeMillis: try p.int64("start_time_ms"),
                endTimeMillis: try p.int64("end_time_ms"), maxResults: try p.int64("max_results"), pageToken: try p.string("page_token"))
            let page = TraceMetrics.aggregate(try await traceStore().traceMetricSamples(query), query)
            var o = JSONObject()
            if !page.items.isEmpty { o["data_points"] = .array(page.items.map(\.json)) }
            if let next = page.nextOffset { o["next_page_token"] = .string(PageToken.encode(offset: next)) }
            return Self.json(.object(o))
        }
        route(.post, v3 + "/calculate-filter-correlation", access: .authenticated) { [self] call in
            let p = try await call.params()
            let experiments = try p.stringList("experiment_ids")
            try await requireReadableExperiments(experiments, what: "traces")
            guard let f1 = try p.string("filter_string1"), !f1.isEmpty else { throw RepriseError.missing("filter_string1") }
            guard let f2 = try p.string("filter_string2"), !f2.isEmpty else { throw RepriseError.missing("filter_string2") }
            let counts = try await traceStore().traceFilterCorrelation(
                experimentIDs: try experiments.map { try Validation.validateExperimentID($0) },
                base: try TraceSearchQuery.clauses(try p.string("base_filter")),
                filter1: try TraceSearchQuery.clauses(f1), filter2: try TraceSearchQuery.clauses(f2))
            return Self.json(counts.json)
        }
        for base in ["/api/2.0/mlflow/traces", v3] {
            route(.patch, base + "/{trace_id}/tags", access: .experiment(.update, .pathTrace("trace_id"))) { [self] call in
                let p = try await call.params()
                try await traceStore().setTraceTag(
                    id: try call.pathParameter("trace_id"), key: try p.requiredString("key"), value: try p.string("value") ?? "")
                return Self.json(Self.empty)
            }
            route(.delete, base + "/{trace_id}/tags", access: .experiment(.update, .pathTrace("trace_id"))) { [self] call in
                let p = try await call.params()
                let key = try p.string("key") ?? call.query["key"]?.first
                guard let key, !key.isEmpty else { throw RepriseError.missing("key") }
                try await traceStore().deleteTraceTag(id: try call.pathParameter("trace_id"), key: key)
                return Self.json(Self.empty)
            }
            route(.post, base + "/delete-traces", access: .experiment(.delete, .field("experiment_id"))) { [self] call in
                let p = try await call.params()
                let experiment = try p.requiredString("experiment_id")
                let maxTimestamp = try p.int64("max_timestamp_millis")
                var ids = try p.stringList("request_ids")
                ids += try p.stringList("trace_ids")
                let maxTraces = try p.int64("max_traces")
                if maxTimestamp == nil && ids.isEmpty {
                    throw RepriseError.invalid("Either `max_timestamp_millis` or `request_ids` must be specified.")
                }
                if maxTimestamp != nil && !ids.isEmpty {
                    throw RepriseError.invalid("Only one of `max_timestamp_millis` and `request_ids` can be specified.")
                }
                if maxTraces != nil && !ids.isEmpty {
                    throw RepriseError.invalid("`max_traces` can't be specified if `request_ids` is specified.")
                }
                let n = try await traceStore().deleteTraces(
                    experimentID: experiment, maxTimestamp: maxTimestamp, maxTraces: maxTraces.map { Int(clamping: $0) },
                    ids: ids.isEmpty ? nil : ids)
                return Self.json(["traces_deleted": .int(Int64(n))])
            }
        }
        route(.post, "/api/2.0/mlflow/traces/link-to-run", access: .experiment(.update, .runField("run_id"))) { [self] call in
            let p = try await call.params()
            let ids = try p.stringList("trace_ids")
            if ids.count > 100 {
                throw RepriseError.invalid("Cannot link more than 100 traces to a run in a single request. Provided \(ids.count) traces.")
            }
            try await traceStore().linkTracesToRun(traceIDs: ids, runID: try p.requiredString("run_id"))
            return Self.json(Self.empty)
        }
        route(.post, "/api/2.0/mlflow/traces/link-prompts", access: .experiment(.update, .traceField("trace_id"))) { [self] call in
            let p = try await call.params()
            let id = try p.requiredString("trace_id")
            let versions = try p.array("prompt_versions").map { item -> (name: String, version: String) in
                guard case .object(let o) = item, case .string(let name)? = o["name"], !name.isEmpty else {
                    throw RepriseError.missing("prompt_versions.name")
                }
                switch o["version"] {
                case .string(let v)? where !v.isEmpty: return (name, v)
                case .int(let v)?: return (name, String(v))
                default: throw RepriseError.missing("prompt_versions.version")
                }
            }
            if versions.count > 100 { throw RepriseError.invalid("Link at most 100 prompt versions to a trace in one request; got \(versions.count).") }
            try await traceStore().linkPrompts(traceID: id, prompts: versions)
            return Self.json(Self.empty)
        }
        // The v2 trace API older clients fall back to: start, end, info, search.
        let v2 = "/api/2.0/mlflow/traces"
        route(.post, v2, access: .experiment(.update, .field("experiment_id"))) { [self] call in
            let p = try await call.params()
            // v2 request ids are 32 hex digits, without v3's `tr-`.
            let id = RandomID.hex()
            let info = TraceInfo(
                traceID: id, experimentID: try p.requiredString("experiment_id"),
                requestTime: try p.int64("timestamp_ms") ?? Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)), executionDuration: 0,
                state: .inProgress, metadata: try p.keyValues("request_metadata"), tags: try p.keyValues("tags"))
            return Self.json(["trace_info": try await traceStore().startTrace(info, finalized: false).v2JSON])
        }
        route(.patch, v2 + "/{trace_id}", access: .experiment(.update, .pathTrace("trace_id"))) { [self] call in
            let p = try await call.params()
            let store = try traceStore()
            var info = try await store.getTraceInfo(id: try call.pathParameter("trace_id"))
            if let end = try p.int64("timestamp_ms") { info.executionDuration = max(0, end - info.requestTime) }
            if let status = try p.string("status") {
                guard let state = TraceState(rawValue: status) else { throw RepriseError.invalid("Invalid trace status '\(status)'.") }
                info.state = state
            }
            info.metadata = try p.keyValues("request_metadata")
            info.tags = try p.keyValues("tags")
            // The v2 API never marks an info finalized (its end can be followed by more).
            return Self.json(["trace_info": try await store.startTrace(info, finalized: false).v2JSON])
        }
        route(.get, v2 + "/{trace_id}/info", access: .experiment(.read, .pathTrace("trace_id"))) { [self] call in
            Self.json(["trace_info": try await traceStore().getTraceInfo(id: try call.pathParameter("trace_id")).v2JSON])
        }
        route(.get, v2, access: .authenticated) { [self] call in
            let p = try await call.params()
            let experiments = try p.stringList("experiment_ids")
            if experiments.isEmpty { throw RepriseError.missing("experiment_ids") }
            return try await searchTraces(p, experiments: experiments, as: \.v2JSON)
        }
        // The UI's download of a trace's spans, in MLflow's `traces.json` form.
        route(.get, "/api/2.0/mlflow/get-trace-artifact", access: .experiment(.read, .traceField("request_id"))) { [self] call in
            let id = try await call.params().requiredString("request_id")
            guard let trace = try await traceStore().getTraces(ids: [id]).first else {
                throw RepriseError.notFound("Trace with ID \(id) is not found.")
            }
            let body = JSONValue.object(["spans": .array(trace.spans.map(MLflowSpanDict.from(otlpJSON:)))])
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; charset=utf-8", .contentDisposition: "attachment; filename=traces.json"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: body.serialized())))
        }
        // Assessments: feedback and expectations on a trace or one of its spans.
        let assessments = v3 + "/{trace_id}/assessments"
        route(.post, assessments, access: .experiment(.update, .pathTrace("trace_id"))) { [self] call in
            let traceID = try call.pathParameter("trace_id")
            guard case .object(let o)? = try await call.params().raw("assessment") else { throw RepriseError.missing("assessment") }
            let now = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
            let id = "a-" + RandomID.hex()
            let created = try await traceStore().createAssessment(try Assessment.fromWire(o, traceID: traceID, id: id, now: now))
            return Self.json(["assessment": created.json])
        }
        route(.get, assessments + "/{assessment_id}", access: .experiment(.read, .pathTrace("trace_id"))) { [self] call in
            let a = try await traceStore().getAssessment(traceID: try call.pathParameter("trace_id"), id: try call.pathParameter("assessment_id"))
            return Self.json(["assessment": a.json])
        }
        route(.patch, assessments + "/{assessment_id}", access: .experiment(.update, .pathTrace("trace_id"))) { [self] call in
            let p = try await call.params()
            guard case .object(let o)? = try p.raw("assessment") else { throw RepriseError.missing("assessment") }
            let mask = try p.string("update_mask")
            let now = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
            let updated = try await traceStore().updateAssessment(
                traceID: try call.pathParameter("trace_id"), id: try call.pathParameter("assessment_id")
            ) { try $0.updated(with: o, mask: mask, now: now) }
            return Self.json(["assessment": updated.json])
        }
        route(.delete, assessments + "/{assessment_id}", access: .experiment(.update, .pathTrace("trace_id"))) { [self] call in
            try await traceStore().deleteAssessment(traceID: try call.pathParameter("trace_id"), id: try call.pathParameter("assessment_id"))
            return Self.json(Self.empty)
        }
    }

    /// One trace search (v3, and v2 for older clients): the experiments must all be readable; the
    /// filter, order and paging come from the request.
    func searchTraces(_ p: Params, experiments: [String], as render: (TraceInfo) -> JSONValue) async throws -> Response {
        try await requireReadableExperiments(experiments, what: "traces")
        let query = try TraceSearchQuery(
            experimentIDs: experiments, filter: try p.string("filter"), orderBy: try p.stringList("order_by"),
            maxResults: try p.int64("max_results").map { Int(clamping: $0) }, pageToken: try p.string("page_token"))
        let page = try await traceStore().searchTraces(query)
        var o = JSONObject([("traces", .array(page.items.map(render)))])
        if let next = page.nextOffset { o["next_page_token"] = .string(PageToken.encode(offset: next)) }
        return Self.json(.object(o))
    }

    /// Refuses a request over experiments the caller may not read (trace searches and analytics
    /// name experiments in the body).
    func requireReadableExperiments(_ experiments: [String], what: String) async throws {
        let canRead = try await callerPredicate(.read, .experiment)
        if let denied = experiments.first(where: { !canRead(Authorizer.canonicalExperimentID($0) ?? $0) }) {
            throw RepriseError(.permissionDenied, "Permission denied: you may not read the \(what) of experiment \(denied).")
        }
    }

    /// A proto enum field, sent by name or by number.
    static func enumName(_ p: Params, _ name: String) throws -> String? {
        switch try p.raw(name) {
        case .string(let s)?: return s
        case .int(let n)?: return String(n)
        case nil, .null?: return nil
        default: throw RepriseError.invalid("Invalid value for '\(name)': expected an enum name.")
        }
    }

    /// Batch reads name at most this many traces.
    static func requireBatch(_ ids: [String]) throws {
        if ids.count > 1000 { throw RepriseError.invalid("A batch read names at most 1000 traces; it named \(ids.count).") }
    }
}
