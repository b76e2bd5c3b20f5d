import Foundation
import RepriseCore

/// Traces (MLflow 3): info rows with their tags and metadata, spans as OTLP JSON, assessments.
extension SQLTrackingStore: TraceStore {
    static let traceColumns =
        "tr.trace_id, tr.experiment_id, tr.request_time, tr.execution_duration, tr.state, tr.request_preview, tr.response_preview, tr.client_request_id"

    /// Where a trace's artifacts go: `<experiment artifact location>/traces/<id>/artifacts`.
    static func traceArtifactLocation(_ experimentLocation: String, _ id: String) -> String {
        let base = experimentLocation.hasSuffix("/") ? String(experimentLocation.dropLast()) : experimentLocation
        return "\(base)/traces/\(id)/artifacts"
    }

    /// The infos of `ids` that exist (tags, metadata and assessments included), in the order asked.
    /// A fixed number of queries per call, whatever the count: search pages read through here.
    static func loadTraceInfos(_ db: any SQLConnection, _ ids: [String]) async throws -> [TraceInfo] {
        if ids.isEmpty { return [] }
        var infos: [String: TraceInfo] = [:]
        for chunk in ids.chunked(500) {
            let list = chunk.map(SQLValue.text)
            let inList = placeholders(chunk.count)
            for row in try await db.query("SELECT \(traceColumns) FROM traces tr WHERE tr.trace_id IN (\(inList))", list) {
                infos[row.string(0)] = TraceInfo(
                    traceID: row.string(0), experimentID: row.string(1), requestTime: row.int(2), executionDuration: row.optionalInt(3),
                    state: TraceState(rawValue: row.string(4)) ?? .unspecified, requestPreview: row.optionalString(5),
                    responsePreview: row.optionalString(6), clientRequestID: row.optionalString(7))
            }
            for row in try await db.query("SELECT trace_id, key, value FROM trace_tags WHERE trace_id IN (\(inList)) ORDER BY trace_id, key", list) {
                infos[row.string(0)]?.tags.append(KeyValue(row.string(1), row.string(2)))
            }
            for row in try await db.query("SELECT trace_id, key, value FROM trace_metadata WHERE trace_id IN (\(inList)) ORDER BY trace_id, key", list) {
                infos[row.string(0)]?.metadata.append(KeyValue(row.string(1), row.string(2)))
            }
            for row in try await db.query(
                "SELECT \(assessmentColumns) FROM assessments WHERE trace_id IN (\(inList)) ORDER BY trace_id, create_time, assessment_id", list)
            {
                infos[row.string(1)]?.assessments.append(try assessment(row))
            }
        }
        return ids.compactMap { infos[$0] }
    }

    static func requireTrace(_ db: any SQLConnection, _ id: String) async throws -> TraceInfo {
        guard let info = try await loadTraceInfos(db, [id]).first else { throw traceNotFound(id) }
        return info
    }

    static func traceNotFound(_ id: String) -> RepriseError {
        RepriseError.notFound("Trace with ID \(id) is not found.")
    }

    static let assessmentColumns = "assessment_id, trace_id, name, span_id, kind, create_time, last_update_time, valid, body"

    static func assessment(_ row: SQLRow) throws -> Assessment {
        guard case .object(let body) = try JSONValue.parse(row.string(8)) else {
            throw RepriseError(.internalError, "Assessment \(row.string(0)) has a stored body that is not an object.")
        }
        return Assessment(
            assessmentID: row.string(0), traceID: row.string(1), name: row.string(2), spanID: row.optionalString(3), kind: row.string(4),
            createTime: row.int(5), lastUpdateTime: row.int(6), valid: row.int(7) != 0, body: body)
    }

    static func validateTraceKeyValue(_ kv: KeyValue, what: String, maxValue: Int) throws {
        try Validation.validateKey(kv.key, lengthLabel: "\(what) key")
        if kv.value.utf8.count > maxValue {
            throw RepriseError.invalid("The \(what) '\(kv.key)' has a value of \(kv.value.utf8.count) bytes; the most is \(maxValue).")
        }
    }

    /// Keeps the last of each key (or id): one multi-row `ON CONFLICT DO UPDATE` may not touch a row
    /// twice on PostgreSQL, and the last value is the one a client means.
    static func lastOfEach<T>(_ items: [T], by key: (T) -> String) -> [T] {
        var seen = Set<String>()
        return items.reversed().filter { seen.insert(key($0)).inserted }.reversed()
    }

    static func upsert(_ db: any SQLConnection, _ table: String, _ traceID: String, _ items: [KeyValue]) async throws {
        for chunk in lastOfEach(items, by: \.key).chunked(300) {
            try await db.execute(
                "INSERT INTO \(table) (trace_id, key, value) VALUES \(Array(repeating: "(?, ?, ?)", count: chunk.count).joined(separator: ", ")) ON CONFLICT (trace_id, key) DO UPDATE SET value = excluded.value",
                chunk.flatMap { [SQLValue.text(traceID), .text($0.key), .text($0.value)] })
        }
    }

    public func startTrace(_ info: TraceInfo, finalized: Bool) async throws -> TraceInfo {
        _ = try Validation.validateExperimentID(info.experimentID)
        for t in info.tags { try Self.validateTraceKeyValue(t, what: "tag", maxValue: TraceInfo.maxTagValueBytes) }
        for m in info.metadata { try Self.validateTraceKeyValue(m, what: "metadata", maxValue: TraceInfo.maxMetadataValueBytes) }
        for preview in [info.requestPreview, info.responsePreview] where (preview?.utf8.count ?? 0) > TraceInfo.maxPreviewBytes {
            throw RepriseError.invalid("A trace preview is larger than \(TraceInfo.maxPreviewBytes) bytes.")
        }
        return try await write { db, _ in
            let stored = try await db.queryOne("SELECT experiment_id FROM traces WHERE trace_id = ?", [.text(info.traceID)])
            if let stored, stored.string(0) != info.experimentID {
                throw RepriseError.invalid("Trace \(info.traceID) belongs to experiment \(stored.string(0)), not \(info.experimentID).")
            }
            let experiment = try await Self.requireActiveExperiment(db, id: info.experimentID)
            let state = info.state == .unspecified ? TraceState.ok : info.state
            let values: [SQLValue] = [
                .int(info.requestTime), SQLValue(info.executionDuration), .text(state.rawValue), SQLValue(info.requestPreview),
                SQLValue(info.responsePreview), SQLValue(info.clientRequestID),
            ]
            if stored == nil {
                try await db.execute(
                    "INSERT INTO traces (trace_id, experiment_id, request_time, execution_duration, state, request_preview, response_preview, client_request_id, finalized) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [.text(info.traceID), .int(Int64(info.experimentID)!)] + values + [.int(finalized ? 1 : 0)])
            } else {
                try await db.execute(
                    "UPDATE traces SET request_time = ?, execution_duration = ?, state = ?, request_preview = ?, response_preview = ?, client_request_id = ?, finalized = ? WHERE trace_id = ?",
                    values + [.int(finalized ? 1 : 0), .text(info.traceID)])
            }
            var tags = info.tags.filter { $0.key != TraceKeys.spansLocation }
            tags.append(KeyValue(TraceKeys.artifactLocation, Self.traceArtifactLocation(experiment.artifactLocation, info.traceID)))
            try await Self.upsert(db, "trace_tags", info.traceID, tags)
            try await Self.upsert(db, "trace_metadata", info.traceID, info.metadata + (finalized ? [KeyValue(TraceKeys.infoFinalized, "true")] : []))
            return try await Self.requireTrace(db, info.traceID)
        }
    }

    public func logSpans(experimentID: String, _ spans: [SpanRecord]) async throws {
        if spans.isEmpty { return }
        _ = try Validation.validateExperimentID(experimentID)
        for s in spans { try TraceInfo.validateID(s.traceID) }
        var byTrace: [String: [SpanRecord]] = [:]
        var order: [String] = []
        for s in spans {
            if byTrace[s.traceID] == nil { order.append(s.traceID) }
            byTrace[s.traceID, default: []].append(s)
        }
        let groups = order.map { ($0, byTrace[$0]!) }
        try await write { db, _ in
            let experiment = try await Self.requireActiveExperiment(db, id: experimentID)
            for (traceID, group) in groups {
                let root = group.first { $0.parentSpanID == nil }
                let start = (root ?? group.min { $0.startTimeNanos < $1.startTimeNanos }!).startTimeNanos / 1_000_000
                let duration = root.flatMap { r in r.endTimeNanos.map { ($0 - r.startTimeNanos) / 1_000_000 } }
                let state: TraceState = root.map { r in r.endTimeNanos == nil ? .inProgress : (r.status == "ERROR" ? .error : .ok) } ?? .inProgress
                let stored = try await db.queryOne("SELECT finalized FROM traces WHERE trace_id = ?", [.text(traceID)])
                if stored == nil {
                    try await db.execute(
                        "INSERT INTO traces (trace_id, experiment_id, request_time, execution_duration, state, finalized) VALUES (?, ?, ?, ?, ?, 0)",
                        [.text(traceID), .int(Int64(experimentID)!), .int(start), SQLValue(duration), .text(state.rawValue)])
                    var tags = [KeyValue(TraceKeys.artifactLocation, Self.traceArtifactLocation(experiment.artifactLocation, traceID))]
                    if let root { tags.append(KeyValue(TraceKeys.name, root.name)) }
                    try await Self.upsert(db, "trace_tags", traceID, tags)
                } else if stored!.int(0) == 0, root != nil {
                    // Not finalized yet: the root span says when it started, how long it took, how it ended.
                    try await db.execute(
                        "UPDATE traces SET request_time = ?, execution_duration = ?, state = ? WHERE trace_id = ?",
                        [.int(start), SQLValue(duration), .text(state.rawValue), .text(traceID)])
                    try await Self.upsert(db, "trace_tags", traceID, [KeyValue(TraceKeys.name, root!.name)])
                }
                try await Self.upsert(db, "trace_tags", traceID, [KeyValue(TraceKeys.spansLocation, TraceKeys.trackingStore)])
                for chunk in Self.lastOfEach(group, by: \.spanID).chunked(200) {
                    try await db.execute(
                        "INSERT INTO spans (trace_id, span_id, parent_span_id, name, span_type, status, start_time, end_time, content, search_text) VALUES \(Array(repeating: "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", count: chunk.count).joined(separator: ", ")) ON CONFLICT (trace_id, span_id) DO UPDATE SET parent_span_id = excluded.parent_span_id, name = excluded.name, span_type = excluded.span_type, status = excluded.status, start_time = excluded.start_time, end_time = excluded.end_time, content = excluded.content, search_text = excluded.search_text",
                        chunk.flatMap { s -> [SQLValue] in
                            [.text(s.traceID), .text(s.spanID), SQLValue(s.parentSpanID), .text(s.name), SQLValue(s.spanType), .text(s.status),
                             .int(s.startTimeNanos), SQLValue(s.endTimeNanos), .text(s.content), .text(s.searchText)]
                        })
                }
            }
        }
    }

    public func getTraceInfo(id: String) async throws -> TraceInfo {
        try await read { db in try await Self.requireTrace(db, id) }
    }

    public func traceInfos(ids: [String]) async throws -> [TraceInfo] {
        try await read { db in try await Self.loadTraceInfos(db, ids) }
    }

    public func getTraces(ids: [String]) async throws -> [TraceRecord] {
        try await read { db in
            let infos = try await Self.loadTraceInfos(db, ids)
            var spans: [String: [String]] = [:]
            for chunk in infos.map(\.traceID).chunked(500) {
                for row in try await db.query(
                    "SELECT trace_id, content FROM spans WHERE trace_id IN (\(placeholders(chunk.count))) ORDER BY trace_id, start_time, span_id",
                    chunk.map(SQLValue.text))
                {
                    spans[row.string(0), default: []].append(row.string(1))
                }
            }
            return infos.map { TraceRecord(info: $0, spans: spans[$0.traceID] ?? []) }
        }
    }

    public func searchTraces(_ query: TraceSearchQuery) async throws -> Page<TraceInfo> {
        if query.experimentIDs.isEmpty { return Page(items: [], nextOffset: nil) }
        var sql = "SELECT tr.trace_id FROM traces tr WHERE tr.experiment_id IN (\(placeholders(query.experimentIDs.count)))"
        var binds = query.experimentIDs.map(SQLValue.int)
        for clause in query.clauses {
            let (fragment, b) = traceClause(clause)
            sql += " AND " + fragment
            binds += b
        }
        var order: [String] = []
        for term in query.orderBy {
            let dir = term.ascending ? "ASC" : "DESC"
            switch term.column {
            case "name":
                order.append("(SELECT n.value FROM trace_tags n WHERE n.trace_id = tr.trace_id AND n.key = '\(TraceKeys.name)') \(dir)")
            default:
                order.append("tr.\(term.column) \(dir)")
            }
        }
        order += ["tr.request_time DESC", "tr.trace_id ASC"]
        return try await page(sql: sql, binds: binds, order: order, maxResults: query.maxResults, offset: query.offset, load: Self.loadTraceInfos)
    }

    func traceClause(_ clause: TraceSearchQuery.Clause) -> (String, [SQLValue]) {
        func filter(_ key: String, _ c: RepriseCore.Comparator, _ v: FilterValue) -> FilterClause {
            FilterClause(entity: .tag, key: key, comparator: c, value: v)
        }
        switch clause {
        case .attribute(let column, let c, let v):
            switch (column, v) {
            case ("end_time", .number(let d, _)):
                return ("(tr.request_time + COALESCE(tr.execution_duration, 0)) \(c.rawValue) ?", [.double(d)])
            case (_, .number(let d, _)) where column == "request_time" || column == "execution_duration":
                return ("tr.\(column) \(c.rawValue) ?", [.double(d)])
            case ("state", .string(let s)):
                return stringComparison("tr.state", filter("", c, .string(c == .eq || c == .ne ? s.uppercased() : s)))
            default:
                return stringComparison("tr.\(column)", filter("", c, v))
            }
        case .tag(let key, let c, let v):
            return tagLikeClause(table: "trace_tags", idColumn: "trace_id", outer: "tr.trace_id", filter(key, c, v))
        case .metadata(let key, let c, let v):
            return tagLikeClause(table: "trace_metadata", idColumn: "trace_id", outer: "tr.trace_id", filter(key, c, v))
        case .run(let c, let v):
            let (m, mb) = stringComparison("m.value", filter("", c, v))
            let (l, lb) = stringComparison("l.run_id", filter("", c, v))
            return (
                "(EXISTS (SELECT 1 FROM trace_metadata m WHERE m.trace_id = tr.trace_id AND m.key = ? AND \(m)) OR EXISTS (SELECT 1 FROM trace_runs l WHERE l.trace_id = tr.trace_id AND \(l)))",
                [SQLValue.text(TraceKeys.sourceRun)] + mb + lb)
        case .text(let c, let v):
            // `text = 'x'` reads as "contains x", like the other spellings.
            let comparator = c == .eq ? RepriseCore.Comparator.like : c
            var value = v
            if c == .eq, case .string(let s) = v { value = .string("%\(s)%") }
            let (a, ab) = stringComparison("tr.request_preview", filter("", comparator, value))
            let (b, bb) = stringComparison("tr.response_preview", filter("", comparator, value))
            let (s, sb) = stringComparison("s.search_text", filter("", comparator, value))
            return ("(\(a) OR \(b) OR EXISTS (SELECT 1 FROM spans s WHERE s.trace_id = tr.trace_id AND \(s)))", ab + bb + sb)
        case .span(let field, let c, let v):
            let column = ["name": "s.name", "type": "s.span_type", "status": "s.status", "content": "s.content"][field]!
            var value = v
            if field == "status", c == .eq || c == .ne, case .string(let s) = v {
                // `STATUS_CODE_OK` and `OK` name the same status.
                value = .string(s.uppercased().hasPrefix("STATUS_CODE_") ? String(s.uppercased().dropFirst("STATUS_CODE_".count)) : s.uppercased())
            }
            let (f, b) = stringComparison(column, filter("", c, value))
            return ("EXISTS (SELECT 1 FROM spans s WHERE s.trace_id = tr.trace_id AND \(f))", b)
        case .spanAttribute(let key, let c, let v):
            // Spans are stored as canonical OTLP JSON (swift-protobuf's printer, proto field names),
            // so an attribute reads `{"key":"<k>","value":{"string_value":"<v>"}}` there.
            guard case .string(let text) = v else { return ("1 = 0", []) }
            let keyPart = #"{"key":"# + JSONValue.string(key).jsonString + #","value":{"#
            func escaped(_ s: String) -> String { Self.likeEscape(s) }
            let likeBinds: (String) -> [SQLValue] = { value in [.text("%" + escaped(keyPart) + value + escaped("}}") + "%")] }
            var equal = [#""string_value":"# + escaped(JSONValue.string(text).jsonString)]
            if let n = Int64(text) { equal.append(#""int_value":""# + String(n) + #"""#) }
            if let d = Double(text), d.isFinite { equal.append(#""double_value":"# + escaped(JSONValue.double(d).jsonString)) }
            if text == "true" || text == "false" { equal.append(#""bool_value":"# + text) }
            let any = equal.map { _ in "s.content LIKE ? ESCAPE '\\'" }.joined(separator: " OR ")
            let equalBinds = equal.flatMap { likeBinds($0) }
            switch c {
            case .eq:
                return ("EXISTS (SELECT 1 FROM spans s WHERE s.trace_id = tr.trace_id AND (\(any)))", equalBinds)
            case .ne:
                return (
                    "EXISTS (SELECT 1 FROM spans s WHERE s.trace_id = tr.trace_id AND s.content LIKE ? ESCAPE '\\' AND NOT (\(any)))",
                    [.text("%" + escaped(keyPart) + "%")] + equalBinds)
            default:
                // LIKE and ILIKE read the pattern against string values (its wildcards kept).
                let prefix = escaped(keyPart + #""string_value":""#)
                let pattern = "%" + prefix + text + escaped(#""}}"#) + "%"
                let column = c == .ilike ? "LOWER(s.content)" : "s.content"
                return (
                    "EXISTS (SELECT 1 FROM spans s WHERE s.trace_id = tr.trace_id AND \(column) LIKE ? ESCAPE '\\')",
                    [.text(c == .ilike ? pattern.lowercased() : pattern)])
            }
        case .prompt(let name, let version):
            // The tag is written in Python's spelling by the client and by link-prompts alike.
            let entry = #"{"name": "# + JSONValue.string(name).jsonString + #", "version": "# + JSONValue.string(version).jsonString + "}"
            return (
                "EXISTS (SELECT 1 FROM trace_tags p WHERE p.trace_id = tr.trace_id AND p.key = ? AND p.value LIKE ? ESCAPE '\\')",
                [.text(TraceKeys.linkedPrompts), .text("%" + Self.likeEscape(entry) + "%")])
        case .assessment(let kind, let name, let c, let v):
            let (f, b) = stringComparison("a.value", filter("", c, v))
            return (
                "EXISTS (SELECT 1 FROM assessments a WHERE a.trace_id = tr.trace_id AND a.kind = ? AND a.name = ? AND a.valid = 1 AND \(f))",
                [SQLValue.text(kind), .text(name)] + b)
        }
    }

    public func setTraceTag(id: String, key: String, value: String) async throws {
        let tag = KeyValue(key, value)
        try Self.validateTraceKeyValue(tag, what: "tag", maxValue: TraceInfo.maxTagValueBytes)
        try await write { db, _ in
            guard try await db.queryOne("SELECT 1 FROM traces WHERE trace_id = ?", [.text(id)]) != nil else { throw Self.traceNotFound(id) }
            try await Self.upsert(db, "trace_tags", id, [tag])
        }
    }

    public func linkPrompts(traceID: String, prompts: [(name: String, version: String)]) async throws {
        try TraceInfo.validateID(traceID)
        for p in prompts where p.name.isEmpty || p.version.isEmpty {
            throw RepriseError.invalid("Each prompt version to link needs a name and a version.")
        }
        try await write { db, _ in
            guard try await db.queryOne("SELECT 1 FROM traces WHERE trace_id = ?", [.text(traceID)]) != nil else { throw Self.traceNotFound(traceID) }
            if prompts.isEmpty { return }
            var entries: [JSONValue] = []
            if let row = try await db.queryOne("SELECT value FROM trace_tags WHERE trace_id = ? AND key = ?", [.text(traceID), .text(TraceKeys.linkedPrompts)]),
                case .array(let items)? = try? JSONValue.parse(row.string(0))
            {
                entries = items
            }
            for p in prompts where !entries.contains(where: { $0["name"]?.stringValue == p.name && $0["version"]?.stringValue == p.version }) {
                entries.append(.object(JSONObject([("name", .string(p.name)), ("version", .string(p.version))])))
            }
            let tag = KeyValue(TraceKeys.linkedPrompts, JSONValue.array(entries).pythonDumps)
            try Self.validateTraceKeyValue(tag, what: "tag", maxValue: TraceInfo.maxTagValueBytes)
            try await Self.upsert(db, "trace_tags", traceID, [tag])
        }
    }

    public func deleteTraceTag(id: String, key: String) async throws {
        try await write { db, _ in
            guard try await db.queryOne("SELECT 1 FROM traces WHERE trace_id = ?", [.text(id)]) != nil else { throw Self.traceNotFound(id) }
            let n = try await db.execute("DELETE FROM trace_tags WHERE trace_id = ? AND key = ?", [.text(id), .text(key)])
            if n == 0 { throw RepriseError.notFound("No trace tag with key '\(key)' for trace with ID '\(id)'") }
        }
    }

    public func deleteTraces(experimentID: String, maxTimestamp: Int64?, maxTraces: Int?, ids: [String]?) async throws -> Int {
        let experiment = try Validation.validateExperimentID(experimentID)
        if let maxTraces, maxTraces <= 0 {
            throw RepriseError.invalid("'max_traces' must be a positive integer, got \(maxTraces).")
        }
        return try await write { db, audit in
            var victims: [String]
            if let ids {
                victims = []
                for chunk in ids.chunked(500) {
                    victims += try await db.query(
                        "SELECT trace_id FROM traces WHERE experiment_id = ? AND trace_id IN (\(placeholders(chunk.count)))",
                        [.int(experiment)] + chunk.map(SQLValue.text)
                    ).map { $0.string(0) }
                }
            } else {
                var sql = "SELECT trace_id FROM traces WHERE experiment_id = ? AND request_time <= ? ORDER BY request_time, trace_id"
                if let maxTraces { sql += " LIMIT \(maxTraces)" }
                victims = try await db.query(sql, [.int(experiment), .int(maxTimestamp ?? .max)]).map { $0.string(0) }
            }
            for chunk in victims.chunked(500) {
                let binds = chunk.map(SQLValue.text)
                for table in ["spans", "trace_tags", "trace_metadata", "assessments", "trace_runs", "traces"] {
                    try await db.execute("DELETE FROM \(table) WHERE trace_id IN (\(placeholders(chunk.count)))", binds)
                }
            }
            if !victims.isEmpty {
                try await audit.record(db, "trace.delete", "experiment", experimentID, ["traces": .int(Int64(victims.count))])
            }
            return victims.count
        }
    }

    public func linkTracesToRun(traceIDs: [String], runID: String) async throws {
        if traceIDs.isEmpty { return }
        for id in traceIDs { try TraceInfo.validateID(id) }
        try await write { db, _ in
            guard let run = try await db.queryOne("SELECT experiment_id FROM runs WHERE run_uuid = ?", [.text(runID)]) else {
                throw RepriseError.notFound("Run with id=\(runID) not found")
            }
            // A trace may be linked before it arrives (the client exports in the background);
            // one already stored must be in the run's experiment.
            let found = try await db.query(
                "SELECT trace_id, experiment_id FROM traces WHERE trace_id IN (\(placeholders(traceIDs.count)))", traceIDs.map(SQLValue.text))
            if let other = found.first(where: { $0.int(1) != run.int(0) }) {
                throw RepriseError.invalid("Trace \(other.string(0)) is in experiment \(other.int(1)); run \(runID) is in experiment \(run.int(0)).")
            }
            for id in Set(traceIDs).sorted() {
                try await db.execute(
                    "INSERT INTO trace_runs (trace_id, run_id) VALUES (?, ?) ON CONFLICT (trace_id, run_id) DO NOTHING", [.text(id), .text(runID)])
            }
        }
    }

    static func storeAssessment(_ db: any SQLConnection, _ a: Assessment, insert: Bool) async throws {
        let values: [SQLValue] = [
            .text(a.name), SQLValue(a.spanID), .text(a.kind), .int(a.createTime), .int(a.lastUpdateTime), .int(a.valid ? 1 : 0),
            SQLValue(a.comparableValue), .text(JSONValue.object(a.body).jsonString),
        ]
        if insert {
            try await db.execute(
                "INSERT INTO assessments (assessment_id, trace_id, name, span_id, kind, create_time, last_update_time, valid, value, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [.text(a.assessmentID), .text(a.traceID)] + values)
        } else {
            try await db.execute(
                "UPDATE assessments SET name = ?, span_id = ?, kind = ?, create_time = ?, last_update_time = ?, valid = ?, value = ?, body = ? WHERE assessment_id = ?",
                values + [.text(a.assessmentID)])
        }
    }

    static func requireAssessment(_ db: any SQLConnection, traceID: String, id: String) async throws -> Assessment {
        guard let row = try await db.queryOne(
            "SELECT \(assessmentColumns) FROM assessments WHERE assessment_id = ? AND trace_id = ?", [.text(id), .text(traceID)])
        else {
            throw RepriseError.notFound("Assessment with ID '\(id)' not found for trace '\(traceID)'")
        }
        return try assessment(row)
    }

    public func createAssessment(_ assessment: Assessment) async throws -> Assessment {
        if assessment.name.utf8.count > Validation.maxEntityKeyLength {
            throw RepriseError.invalid("An assessment name has at most \(Validation.maxEntityKeyLength) bytes.")
        }
        let bodyBytes = JSONValue.object(assessment.body).serialized().count
        if bodyBytes > TraceInfo.maxMetadataValueBytes {
            throw RepriseError.invalid("The assessment is \(bodyBytes) bytes; the most is \(TraceInfo.maxMetadataValueBytes).")
        }
        return try await write { db, _ in
            guard try await db.queryOne("SELECT 1 FROM traces WHERE trace_id = ?", [.text(assessment.traceID)]) != nil else {
                throw Self.traceNotFound(assessment.traceID)
            }
            if case .string(let overridden)? = assessment.body["overrides"], !overridden.isEmpty {
                // The assessment it replaces stays, marked no longer valid.
                let n = try await db.execute(
                    "UPDATE assessments SET valid = 0 WHERE assessment_id = ? AND trace_id = ?", [.text(overridden), .text(assessment.traceID)])
                if n == 0 { throw RepriseError.notFound("Assessment with ID '\(overridden)' not found for trace '\(assessment.traceID)'") }
            }
            try await Self.storeAssessment(db, assessment, insert: true)
            return try await Self.requireAssessment(db, traceID: assessment.traceID, id: assessment.assessmentID)
        }
    }

    public func getAssessment(traceID: String, id: String) async throws -> Assessment {
        try await read { db in try await Self.requireAssessment(db, traceID: traceID, id: id) }
    }

    public func updateAssessment(
        traceID: String, id: String, _ update: @escaping @Sendable (Assessment) throws -> Assessment
    ) async throws -> Assessment {
        try await write { db, _ in
            let current = try await Self.requireAssessment(db, traceID: traceID, id: id)
            let next = try update(current)
            try await Self.storeAssessment(db, next, insert: false)
            return try await Self.requireAssessment(db, traceID: traceID, id: id)
        }
    }

    public func deleteAssessment(traceID: String, id: String) async throws {
        try await write { db, _ in
            let current = try await Self.requireAssessment(db, traceID: traceID, id: id)
            try await db.execute("DELETE FROM assessments WHERE assessment_id = ?", [.text(id)])
            // The assessment it had replaced is valid again.
            if case .string(let overridden)? = current.body["overrides"], !overridden.isEmpty {
                try await db.execute("UPDATE assessments SET valid = 1 WHERE assessment_id = ? AND trace_id = ?", [.text(overridden), .text(traceID)])
            }
        }
    }

    public func experimentID(ofTrace id: String) async throws -> String {
        try await read { db in
            guard let row = try await db.queryOne("SELECT experiment_id FROM traces WHERE trace_id = ?", [.text(id)]) else {
                throw Self.traceNotFound(id)
            }
            return row.string(0)
        }
    }
}

extension Array {
    /// Consecutive slices of at most `size` elements.
    func chunked(_ size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}
