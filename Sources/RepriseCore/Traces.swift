import Foundation

// MLflow 3 traces: a trace's info (`TraceInfoV3` on the wire), its spans (OpenTelemetry spans,
// kept as the client sent them) and its assessments (feedback and expectations).

/// A trace's state on the wire.
public enum TraceState: String, Sendable, CaseIterable {
    case ok = "OK", error = "ERROR", inProgress = "IN_PROGRESS", unspecified = "STATE_UNSPECIFIED"
}

/// Tag and metadata keys the server reads or writes.
public enum TraceKeys {
    public static let name = "mlflow.traceName"
    public static let artifactLocation = "mlflow.artifactLocation"
    public static let spansLocation = "mlflow.trace.spansLocation"
    public static let trackingStore = "TRACKING_STORE"
    public static let infoFinalized = "mlflow.trace.infoFinalized"
    public static let sourceRun = "mlflow.sourceRun"
    public static let requestID = "mlflow.traceRequestId"
    public static let spanType = "mlflow.spanType"
    /// Trace (and run) tag: the prompt versions used, `[{"name": …, "version": …}]` in Python's spelling.
    public static let linkedPrompts = "mlflow.linkedPrompts"
    /// Trace metadata: the token counts of the trace's LLM calls, a JSON object of the keys below.
    public static let tokenUsage = "mlflow.trace.tokenUsage"
    public static let tokenUsageKeys = [
        "input_tokens", "output_tokens", "total_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
    ]
    /// Trace metadata: the conversation a trace belongs to.
    public static let session = "mlflow.trace.session"
    /// Span attributes: the model an LLM span called, its provider, and what the call cost (a
    /// JSON object of `costKeys`).
    public static let spanModel = "mlflow.llm.model"
    public static let spanModelProvider = "mlflow.llm.provider"
    public static let spanCost = "mlflow.llm.cost"
    public static let costKeys = ["input_cost", "output_cost", "total_cost"]
}

/// A trace's info, as `TraceInfoV3` carries it.
public struct TraceInfo: Sendable, Equatable {
    /// `tr-` and 32 hex digits for traces the MLflow client makes; any id another OTel SDK sends.
    public var traceID: String
    public var experimentID: String
    /// Milliseconds since the epoch.
    public var requestTime: Int64
    /// Milliseconds; nil while unknown.
    public var executionDuration: Int64?
    public var state: TraceState
    public var requestPreview: String?
    public var responsePreview: String?
    public var clientRequestID: String?
    public var metadata: [KeyValue]
    public var tags: [KeyValue]
    public var assessments: [Assessment]

    public init(
        traceID: String, experimentID: String, requestTime: Int64, executionDuration: Int64?, state: TraceState,
        requestPreview: String? = nil, responsePreview: String? = nil, clientRequestID: String? = nil,
        metadata: [KeyValue] = [], tags: [KeyValue] = [], assessments: [Assessment] = []
    ) {
        self.traceID = traceID
        self.experimentID = experimentID
        self.requestTime = requestTime
        self.executionDuration = executionDuration
        self.state = state
        self.requestPreview = requestPreview
        self.responsePreview = responsePreview
        self.clientRequestID = clientRequestID
        self.metadata = metadata
        self.tags = tags
        self.assessments = assessments
    }

    public func tag(_ key: String) -> String? { tags.first { $0.key == key }?.value }
    public func metadata(_ key: String) -> String? { metadata.first { $0.key == key }?.value }

    /// `TraceInfoV3` JSON.
    public var json: JSONValue {
        var o = JSONObject()
        o["trace_id"] = .string(traceID)
        o["trace_location"] = [
            "type": "MLFLOW_EXPERIMENT", "mlflow_experiment": ["experiment_id": .string(experimentID)],
        ]
        o["request_time"] = .string(TraceTime.format(millis: requestTime))
        if let executionDuration { o["execution_duration"] = .string(TraceTime.formatDuration(millis: executionDuration)) }
        o["state"] = .string(state.rawValue)
        if let clientRequestID { o["client_request_id"] = .string(clientRequestID) }
        o["trace_metadata"] = .object(JSONObject(metadata.map { ($0.key, .string($0.value)) }))
        if !assessments.isEmpty { o["assessments"] = .array(assessments.map(\.json)) }
        o["tags"] = .object(JSONObject(tags.map { ($0.key, .string($0.value)) }))
        if let requestPreview { o["request_preview"] = .string(requestPreview) }
        if let responsePreview { o["response_preview"] = .string(responsePreview) }
        return .object(o)
    }

    /// The v2 `TraceInfo` old clients read (`request_id`, `timestamp_ms`, `status`, key/value lists).
    public var v2JSON: JSONValue {
        func list(_ items: [KeyValue]) -> JSONValue {
            .array(items.map { .object(JSONObject([("key", .string($0.key)), ("value", .string($0.value))])) })
        }
        return .object(JSONObject([
            ("request_id", .string(traceID)), ("experiment_id", .string(experimentID)), ("timestamp_ms", .int(requestTime)),
            ("execution_time_ms", .int(executionDuration ?? 0)),
            ("status", .string(state == .unspecified ? "TRACE_STATUS_UNSPECIFIED" : state.rawValue)),
            ("request_metadata", list(metadata)), ("tags", list(tags)),
        ]))
    }

    /// Reads `TraceInfoV3` JSON as the client sends it (`StartTraceV3`).
    public init(wire o: JSONObject) throws {
        guard case .string(let id)? = o["trace_id"], !id.isEmpty else { throw RepriseError.missing("trace_id") }
        try TraceInfo.validateID(id)
        traceID = id
        guard case .object(let location)? = o["trace_location"] else { throw RepriseError.missing("trace_location") }
        if case .string(let type)? = location["type"], type != "MLFLOW_EXPERIMENT" {
            throw RepriseError.invalid("Unsupported trace location type '\(type)': this server stores traces in MLflow experiments.")
        }
        guard case .string(let experiment)? = location["mlflow_experiment"]?["experiment_id"], !experiment.isEmpty else {
            throw RepriseError.missing("trace_location.mlflow_experiment.experiment_id")
        }
        experimentID = experiment
        guard case .string(let time)? = o["request_time"] else { throw RepriseError.missing("request_time") }
        requestTime = try TraceTime.parse(time)
        if case .string(let d)? = o["execution_duration"] { executionDuration = try TraceTime.parseDuration(d) } else { executionDuration = nil }
        if case .string(let s)? = o["state"] {
            guard let state = TraceState(rawValue: s) else { throw RepriseError.invalid("Invalid trace state '\(s)'.") }
            self.state = state
        } else {
            state = .unspecified
        }
        requestPreview = o["request_preview"]?.stringValue
        responsePreview = o["response_preview"]?.stringValue
        clientRequestID = o["client_request_id"]?.stringValue
        metadata = try TraceInfo.stringMap(o["trace_metadata"], field: "trace_metadata")
        tags = try TraceInfo.stringMap(o["tags"], field: "tags")
        assessments = []
    }

    static func stringMap(_ v: JSONValue?, field: String) throws -> [KeyValue] {
        guard let v, v != .null else { return [] }
        guard case .object(let o) = v else { throw RepriseError.invalid("Invalid value for '\(field)': expected an object of strings.") }
        return try o.members.map { key, value in
            guard case .string(let s) = value else {
                throw RepriseError.invalid("Invalid value for '\(field).\(key)': expected a string, got \(value.pythonTypeName).")
            }
            return KeyValue(key, s)
        }
    }

    /// A trace id is printable, at most 256 characters, with no path separators: it names a folder
    /// (`traces/<id>/artifacts`) under the experiment's artifact root.
    public static func validateID(_ id: String) throws {
        guard !id.isEmpty, id.utf8.count <= 256,
            id.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "\\") }),
            id != ".", id != ".."
        else {
            throw RepriseError.invalid("Invalid trace id '\(id)'.")
        }
    }

    /// Bounds on what one trace carries, so a client cannot grow a row without limit.
    public static let maxPreviewBytes = 1_000_000
    public static let maxTagValueBytes = 8_000
    public static let maxMetadataValueBytes = 1_000_000
}

/// The two time spellings of trace messages: RFC 3339 timestamps and protobuf `Duration` strings.
public enum TraceTime {
    /// `2026-11-25T17:58:14.071Z` (milliseconds, UTC).
    public static func format(millis: Int64) -> String {
        let seconds = millis >= 0 ? millis / 1000 : (millis - 999) / 1000
        return rfc3339(seconds: seconds, fraction: millis - seconds * 1000, digits: 3, zone: "Z")
    }

    /// `YYYY-MM-DDThh:mm:ss.<fraction><zone>` in UTC (no fraction when `digits` is 0): the one
    /// formatter of such timestamps (trace times here, webhook timestamps with microseconds and
    /// `+00:00`, metric time buckets in whole seconds).
    public static func rfc3339(seconds: Int64, fraction: Int64, digits: Int, zone: String) -> String {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        func pad(_ v: Int64, _ n: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, n - s.count)) + s
        }
        let date = "\(pad(Int64(parts.tm_year) + 1900, 4))-\(pad(Int64(parts.tm_mon) + 1, 2))-\(pad(Int64(parts.tm_mday), 2))"
        let time = "\(pad(Int64(parts.tm_hour), 2)):\(pad(Int64(parts.tm_min), 2)):\(pad(Int64(parts.tm_sec), 2))"
        return digits > 0 ? "\(date)T\(time).\(pad(fraction, digits))\(zone)" : "\(date)T\(time)\(zone)"
    }

    /// Milliseconds since the epoch from an RFC 3339 timestamp (`Z` or an offset; any fraction).
    public static func parse(_ text: String) throws -> Int64 {
        let bad = RepriseError.invalid("Invalid timestamp '\(text)': expected RFC 3339, such as 2026-11-25T17:58:14.071Z.")
        let u = Array(text.utf8)
        func digits(_ from: Int, _ n: Int) throws -> Int {
            guard from + n <= u.count else { throw bad }
            var v = 0
            for c in u[from..<from + n] {
                guard c >= 48, c <= 57 else { throw bad }
                v = v * 10 + Int(c - 48)
            }
            return v
        }
        guard u.count >= 20, u[4] == UInt8(ascii: "-"), u[7] == UInt8(ascii: "-"), u[10] == UInt8(ascii: "T") || u[10] == UInt8(ascii: "t"),
            u[13] == UInt8(ascii: ":"), u[16] == UInt8(ascii: ":")
        else { throw bad }
        let year = try digits(0, 4), month = try digits(5, 2), day = try digits(8, 2)
        let hour = try digits(11, 2), minute = try digits(14, 2), second = try digits(17, 2)
        guard (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { throw bad }
        var i = 19
        var millis = 0
        if i < u.count, u[i] == UInt8(ascii: ".") {
            i += 1
            var n = 0
            while i < u.count, u[i] >= 48, u[i] <= 57 {
                if n < 3 { millis = millis * 10 + Int(u[i] - 48) }
                n += 1
                i += 1
            }
            guard n > 0 else { throw bad }
            var digitsRead = n
            while digitsRead < 3 {
                millis *= 10
                digitsRead += 1
            }
        }
        var offset = 0
        guard i < u.count else { throw bad }
        if u[i] == UInt8(ascii: "Z") || u[i] == UInt8(ascii: "z") {
            i += 1
        } else if u[i] == UInt8(ascii: "+") || u[i] == UInt8(ascii: "-") {
            let sign = u[i] == UInt8(ascii: "-") ? -1 : 1
            guard i + 6 == u.count, u[i + 3] == UInt8(ascii: ":") else { throw bad }
            offset = sign * (try digits(i + 1, 2) * 60 + digits(i + 4, 2))
            i += 6
        } else {
            throw bad
        }
        guard i == u.count else { throw bad }
        // Days from the civil date (proleptic Gregorian), without Foundation's calendars.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offset * 60)
        return seconds * 1000 + Int64(millis)
    }

    /// `0.021s`: a protobuf `Duration` in its JSON form.
    public static func formatDuration(millis: Int64) -> String {
        let negative = millis < 0
        let m = millis.magnitude
        let whole = m / 1000, frac = m % 1000
        var s = negative ? "-" : ""
        s += String(whole)
        if frac != 0 {
            let f = String(frac)
            s += "." + String(repeating: "0", count: 3 - f.count) + f
        }
        return s + "s"
    }

    /// Milliseconds from a `Duration` string (`1.5s`, `0.000021s`, `3s`).
    public static func parseDuration(_ text: String) throws -> Int64 {
        guard text.hasSuffix("s"), let seconds = Double(text.dropLast()), seconds.isFinite, abs(seconds) < 1e12 else {
            throw RepriseError.invalid("Invalid duration '\(text)': expected seconds such as 0.021s.")
        }
        return Int64((seconds * 1000).rounded())
    }
}

/// One span as stored: what search and the tree need, and the span itself as OTLP JSON (proto
/// field names, ids in base64), which is what the client reads back.
public struct SpanRecord: Sendable, Equatable {
    /// The MLflow trace id the span belongs to.
    public var traceID: String
    /// Lowercase hex.
    public var spanID: String
    public var parentSpanID: String?
    public var name: String
    public var spanType: String?
    /// `OK`, `ERROR` or `UNSET`.
    public var status: String
    /// Nanoseconds since the epoch.
    public var startTimeNanos: Int64
    public var endTimeNanos: Int64?
    /// The span as OTLP JSON.
    public var content: String
    /// What full-text search reads: the name, attribute keys and values, event names and
    /// attributes and the status message, as plain text (not the JSON's own words).
    public var searchText: String

    public init(
        traceID: String, spanID: String, parentSpanID: String?, name: String, spanType: String?, status: String,
        startTimeNanos: Int64, endTimeNanos: Int64?, content: String, searchText: String? = nil
    ) {
        self.searchText = searchText ?? name
        self.traceID = traceID
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.name = name
        self.spanType = spanType
        self.status = status
        self.startTimeNanos = startTimeNanos
        self.endTimeNanos = endTimeNanos
        self.content = content
    }
}

/// MLflow's own span dictionary (`traces.json`, `get-trace-artifact`), made from a stored span's
/// OTLP JSON: attribute values JSON-encoded as strings, event attributes plain, times as numbers.
public enum MLflowSpanDict {
    public static func from(otlpJSON text: String) -> JSONValue { from(otlp: (try? JSONValue.parse(text)) ?? .null) }

    public static func from(otlp value: JSONValue) -> JSONValue {
        guard case .object(let o) = value else { return .null }
        func field(_ snake: String, _ camel: String) -> JSONValue? { o[snake] ?? o[camel] }
        func nanos(_ v: JSONValue?) -> JSONValue {
            switch v {
            case .string(let s)?: return Int64(s).map(JSONValue.int) ?? .int(0)
            case .int(let i)?: return .int(i)
            default: return .int(0)
            }
        }
        var out = JSONObject()
        out["trace_id"] = field("trace_id", "traceId") ?? .null
        out["span_id"] = field("span_id", "spanId") ?? .null
        let parent = field("parent_span_id", "parentSpanId")
        out["parent_span_id"] = (parent?.stringValue?.isEmpty ?? true) ? .null : parent!
        out["name"] = o["name"] ?? ""
        out["start_time_unix_nano"] = nanos(field("start_time_unix_nano", "startTimeUnixNano"))
        out["end_time_unix_nano"] = nanos(field("end_time_unix_nano", "endTimeUnixNano"))
        var events: [JSONValue] = []
        if case .array(let items)? = o["events"] {
            for case .object(let e) in items {
                events.append(.object([
                    "name": e["name"] ?? "", "time_unix_nano": nanos(e["time_unix_nano"] ?? e["timeUnixNano"]),
                    "attributes": .object(JSONObject(attributes(e["attributes"]).map { ($0.0, $0.1) })),
                ]))
            }
        }
        out["events"] = .array(events)
        let status = o["status"]
        var code = status?["code"]?.stringValue ?? "STATUS_CODE_UNSET"
        if !code.hasPrefix("STATUS_CODE_") { code = "STATUS_CODE_" + code }
        out["status"] = ["code": .string(code), "message": status?["message"] ?? ""]
        out["attributes"] = .object(JSONObject(attributes(o["attributes"]).map { ($0.0, .string($0.1.pythonDumps)) }))
        out["links"] = []
        return .object(out)
    }

    /// `[{key, value: AnyValue}]` as (key, plain value) pairs.
    public static func attributes(_ v: JSONValue?) -> [(String, JSONValue)] {
        guard case .array(let items)? = v else { return [] }
        return items.compactMap { item in
            guard case .string(let key)? = item["key"] else { return nil }
            return (key, plain(item["value"], depth: 0))
        }
    }

    /// An OTLP `AnyValue` (protobuf's JSON mapping, either field spelling) as a plain JSON value.
    static func plain(_ v: JSONValue?, depth: Int) -> JSONValue {
        guard depth < 64, case .object(let o)? = v, let (key, inner) = o.members.first else { return .null }
        switch key {
        case "string_value", "stringValue": return inner
        case "bool_value", "boolValue": return inner
        case "int_value", "intValue":
            if case .string(let s) = inner, let i = Int64(s) { return .int(i) }
            return inner
        case "double_value", "doubleValue": return inner
        case "bytes_value", "bytesValue": return inner
        case "array_value", "arrayValue":
            guard case .array(let items)? = inner["values"] else { return [] }
            return .array(items.map { plain($0, depth: depth + 1) })
        case "kvlist_value", "kvlistValue":
            guard case .array(let items)? = inner["values"] else { return .object(JSONObject()) }
            return .object(JSONObject(items.compactMap { item in
                guard case .string(let k)? = item["key"] else { return nil }
                return (k, plain(item["value"], depth: depth + 1))
            }))
        default: return .null
        }
    }
}

/// A trace with its spans (their OTLP JSON).
public struct TraceRecord: Sendable {
    public var info: TraceInfo
    public var spans: [String]
    public init(info: TraceInfo, spans: [String]) {
        self.info = info
        self.spans = spans
    }

    public var json: JSONValue {
        .object(JSONObject([
            ("trace_info", info.json),
            ("spans", .array(spans.map { (try? JSONValue.parse($0)) ?? .null })),
        ]))
    }
}

/// Feedback or an expectation on a trace (or one of its spans).
///
/// Kept as the client sent it (every field of MLflow's `Assessment` message survives a round
/// trip); the server owns the id, the trace id, the times and `valid`.
public struct Assessment: Sendable, Equatable {
    public var assessmentID: String
    public var traceID: String
    public var name: String
    public var spanID: String?
    /// `feedback` or `expectation`.
    public var kind: String
    public var createTime: Int64
    public var lastUpdateTime: Int64
    public var valid: Bool
    /// The message's other fields (`source`, `feedback`/`expectation`, `rationale`, `metadata`,
    /// `overrides`, `run_id`, …).
    public var body: JSONObject

    public init(
        assessmentID: String, traceID: String, name: String, spanID: String?, kind: String, createTime: Int64,
        lastUpdateTime: Int64, valid: Bool, body: JSONObject
    ) {
        self.assessmentID = assessmentID
        self.traceID = traceID
        self.name = name
        self.spanID = spanID
        self.kind = kind
        self.createTime = createTime
        self.lastUpdateTime = lastUpdateTime
        self.valid = valid
        self.body = body
    }

    /// The fields the server owns; the rest of the body is the client's.
    static let ownFields: Set<String> = [
        "assessment_id", "assessment_name", "trace_id", "span_id", "create_time", "last_update_time", "valid",
    ]

    public var json: JSONValue {
        var o = JSONObject()
        o["assessment_id"] = .string(assessmentID)
        o["assessment_name"] = .string(name)
        o["trace_id"] = .string(traceID)
        if let spanID { o["span_id"] = .string(spanID) }
        if let source = body["source"] { o["source"] = source }
        o["create_time"] = .string(TraceTime.format(millis: createTime))
        o["last_update_time"] = .string(TraceTime.format(millis: lastUpdateTime))
        for (k, v) in body.members where k != "source" && !Self.ownFields.contains(k) { o[k] = v }
        o["valid"] = .bool(valid)
        return .object(o)
    }

    /// The value a filter compares (`feedback.<name> = '…'`): a string as is, anything else as JSON.
    public var comparableValue: String? {
        guard let v = body[kind]?["value"] else { return body[kind]?["serialized_value"]?["value"]?.stringValue }
        if case .string(let s) = v { return s }
        return v.jsonString
    }

    /// Reads an `Assessment` message a client sent to create one.
    public static func fromWire(_ o: JSONObject, traceID: String, id: String, now: Int64) throws -> Assessment {
        guard case .string(let name)? = o["assessment_name"], !name.isEmpty else { throw RepriseError.missing("assessment_name") }
        let kind: String
        if o["feedback"] != nil && o["feedback"] != .null {
            kind = "feedback"
        } else if o["expectation"] != nil && o["expectation"] != .null {
            kind = "expectation"
        } else {
            throw RepriseError.invalid("An assessment needs a 'feedback' or an 'expectation'.")
        }
        if let sent = o["trace_id"]?.stringValue, !sent.isEmpty, sent != traceID {
            throw RepriseError.invalid("The assessment's trace_id '\(sent)' does not match the trace in the path, '\(traceID)'.")
        }
        var body = JSONObject()
        for (k, v) in o.members where !ownFields.contains(k) { body[k] = v }
        serializeStructuredExpectation(&body)
        let created = try o["create_time"]?.stringValue.map(TraceTime.parse) ?? now
        return Assessment(
            assessmentID: id, traceID: traceID, name: name, spanID: o["span_id"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 },
            kind: kind, createTime: created, lastUpdateTime: now, valid: true, body: body)
    }

    /// Applies an update: the fields `mask` names (camelCase or snake_case, comma separated) are
    /// taken from `o`; an empty mask takes every field `o` has.
    public func updated(with o: JSONObject, mask: String?, now: Int64) throws -> Assessment {
        var next = self
        let fields: [String]
        if let mask, !mask.trimmingCharacters(in: .whitespaces).isEmpty {
            fields = mask.split(separator: ",").map { Self.snake(String($0).trimmingCharacters(in: .whitespaces)) }
        } else {
            fields = o.keys.filter { !["assessment_id", "trace_id", "create_time", "last_update_time"].contains($0) }
        }
        for f in fields {
            switch f {
            case "assessment_name":
                guard case .string(let n)? = o["assessment_name"], !n.isEmpty else { throw RepriseError.missing("assessment_name") }
                next.name = n
            case "feedback", "expectation":
                guard let v = o[f], v != .null else {
                    throw RepriseError.invalid("The update mask names '\(f)' but the assessment has none.")
                }
                if f != kind {
                    throw RepriseError.invalid("An assessment's kind cannot change: this one is a \(kind).")
                }
                next.body[f] = v
                Self.serializeStructuredExpectation(&next.body)
            case "valid":
                if case .bool(let b)? = o["valid"] { next.valid = b }
            case "assessment_id", "trace_id", "create_time", "last_update_time", "span_id":
                throw RepriseError.invalid("The field '\(f)' of an assessment cannot be updated.")
            default:
                if let v = o[f] { next.body[f] = v } else { next.body[f] = nil }
            }
        }
        next.lastUpdateTime = now
        return next
    }

    /// An expectation whose value is a list or an object is kept serialized, as the reference
    /// answers it (`serialized_value` in JSON_FORMAT).
    static func serializeStructuredExpectation(_ body: inout JSONObject) {
        guard let value = body["expectation"]?["value"] else { return }
        switch value {
        case .object, .array:
            body["expectation"] = ["serialized_value": ["serialization_format": "JSON_FORMAT", "value": .string(value.pythonDumps)]]
        default: break
        }
    }

    static func snake(_ camel: String) -> String {
        var out = ""
        for c in camel {
            if c.isUppercase {
                out.append("_")
                out.append(contentsOf: c.lowercased())
            } else {
                out.append(c)
            }
        }
        return out
    }
}

// MARK: - Search

/// `traces/search`: which experiments, the filter (spec §5.7), order and paging.
public struct TraceSearchQuery: Sendable {
    public enum Clause: Sendable, Equatable {
        /// A column of the trace: `request_time`, `execution_duration`, `end_time` (numeric), or
        /// `state`, `trace_id`, `client_request_id` (text).
        case attribute(column: String, Comparator, FilterValue)
        case tag(key: String, Comparator, FilterValue)
        case metadata(key: String, Comparator, FilterValue)
        /// The run a trace was made in (`mlflow.sourceRun`) or linked to.
        case run(Comparator, FilterValue)
        /// Full text: the request and response previews and every span's content.
        case text(Comparator, FilterValue)
        /// Some span of the trace: `name`, `type`, `status` or `content`.
        case span(field: String, Comparator, FilterValue)
        /// An assessment: `feedback` or `expectation`, by name.
        case assessment(kind: String, name: String, Comparator, FilterValue)
        /// Some span carries attribute `key` with this value (`span.attributes.<key>`).
        case spanAttribute(key: String, Comparator, FilterValue)
        /// The trace is linked to a prompt version (`prompt = 'name/version'`).
        case prompt(name: String, version: String)
    }

    public var experimentIDs: [Int64]
    public var clauses: [Clause]
    /// (column, ascending): `request_time`, `execution_duration`, `state`, `trace_id`, `name`.
    public var orderBy: [(column: String, ascending: Bool)]
    public var maxResults: Int
    public var offset: Int

    public static let defaultMaxResults = 100
    public static let maxMaxResults = 50_000

    public init(experimentIDs: [String], filter: String?, orderBy: [String], maxResults: Int?, pageToken: String?) throws {
        self.experimentIDs = try experimentIDs.map { try Validation.validateExperimentID($0) }
        let max = maxResults ?? Self.defaultMaxResults
        guard max >= 1, max <= Self.maxMaxResults else {
            throw RepriseError.invalid("Invalid value \(max) for parameter 'max_results' supplied. It must be between 1 and \(Self.maxMaxResults).")
        }
        self.maxResults = max
        offset = try PageToken.decode(pageToken)
        clauses = try Self.clauses(filter)
        self.orderBy = try orderBy.map { text in
            let (entity, key, ascending) = try FilterParser.parseOrderBy(text)
            guard entity == nil || ["trace", "attribute", "attributes"].contains(entity!), let column = Self.orderColumn(key) else {
                throw RepriseError.invalid("Invalid order_by clause '\(text)': traces order by timestamp_ms, execution_time_ms, status, name or request_id.")
            }
            return (column, ascending)
        }
    }

    static func orderColumn(_ key: String) -> String? {
        switch key {
        case "timestamp_ms", "timestamp", "request_time": return "request_time"
        case "execution_time_ms", "execution_time", "execution_duration": return "execution_duration"
        case "status", "state": return "state"
        case "request_id", "trace_id": return "trace_id"
        case "name": return "name"
        default: return nil
        }
    }

    static let stringComparators: Set<Comparator> = [.eq, .ne, .like, .ilike]

    /// A filter string's clauses, checked (the correlation endpoint's filters use this grammar).
    public static func clauses(_ filter: String?) throws -> [Clause] {
        try FilterParser.parse(filter).map(clause)
    }

    static func clause(_ raw: RawClause) throws -> Clause {
        func requireString(_ what: String) throws {
            guard stringComparators.contains(raw.comparator) || (raw.comparator == .in || raw.comparator == .notIn) else {
                throw RepriseError.invalid("Invalid comparator '\(raw.comparator.rawValue)' for \(what): use =, !=, LIKE or ILIKE.")
            }
            guard raw.quoted else {
                throw RepriseError.invalid("Invalid filter: the value compared with \(what) must be a quoted string, such as '\(raw.value.display)'.")
            }
        }
        let entity = raw.entity?.lowercased()
        switch entity {
        case "tag", "tags":
            if raw.comparator == .isNull || raw.comparator == .isNotNull { return .tag(key: raw.key, raw.comparator, .none) }
            try requireString("tag '\(raw.key)'")
            return .tag(key: raw.key, raw.comparator, raw.value)
        case "metadata", "request_metadata":
            if raw.comparator == .isNull || raw.comparator == .isNotNull { return .metadata(key: raw.key, raw.comparator, .none) }
            try requireString("metadata '\(raw.key)'")
            return .metadata(key: raw.key, raw.comparator, raw.value)
        case "span.attributes", "span.attribute":
            return try spanAttribute(raw, key: raw.key)
        case "span" where raw.key.lowercased().hasPrefix("attributes.") || raw.key.lowercased().hasPrefix("attribute."):
            return try spanAttribute(raw, key: String(raw.key[raw.key.index(after: raw.key.firstIndex(of: ".")!)...]))
        case "span":
            let field = raw.key.lowercased()
            guard ["name", "type", "status", "content"].contains(field) else {
                throw RepriseError.invalid("Invalid span field '\(raw.key)': use span.name, span.type, span.status, span.content or span.attributes.<key>.")
            }
            try requireString("span.\(field)")
            return .span(field: field, raw.comparator, raw.value)
        case "feedback", "expectation":
            try requireString("\(entity!) '\(raw.key)'")
            return .assessment(kind: entity!, name: raw.key, raw.comparator, raw.value)
        case nil, "trace", "attribute", "attributes":
            return try attributeClause(raw)
        default:
            throw RepriseError.invalid(
                "Invalid entity '\(raw.entity!)' in a trace filter: use trace., tag., metadata., span., feedback. or expectation.")
        }
    }

    static func spanAttribute(_ raw: RawClause, key: String) throws -> Clause {
        guard !key.isEmpty else { throw RepriseError.invalid("Invalid filter: span.attributes needs an attribute name, such as span.attributes.model.") }
        guard [.eq, .ne, .like, .ilike].contains(raw.comparator) else {
            throw RepriseError.invalid("Invalid comparator '\(raw.comparator.rawValue)' for span.attributes.\(key): use =, !=, LIKE or ILIKE.")
        }
        guard raw.quoted, case .string = raw.value else {
            throw RepriseError.invalid("Expected a quoted string value for span.attributes.\(key) (e.g. 'my-value'). Got value \(raw.value.display)")
        }
        return .spanAttribute(key: key, raw.comparator, raw.value)
    }

    static func attributeClause(_ raw: RawClause) throws -> Clause {
        func numeric(_ column: String) throws -> Clause {
            guard Comparator.numeric.contains(raw.comparator), case .number = raw.value else {
                throw RepriseError.invalid("Invalid filter on '\(raw.key)': it compares numbers (=, !=, <, <=, >, >=) with a number.")
            }
            return .attribute(column: column, raw.comparator, raw.value)
        }
        func text(_ column: String) throws -> Clause {
            guard stringComparators.contains(raw.comparator) || raw.comparator == .in || raw.comparator == .notIn else {
                throw RepriseError.invalid("Invalid comparator '\(raw.comparator.rawValue)' for '\(raw.key)': use =, !=, LIKE, ILIKE, IN or NOT IN.")
            }
            return .attribute(column: column, raw.comparator, raw.value)
        }
        switch raw.key.lowercased() {
        case "timestamp_ms", "timestamp", "request_time": return try numeric("request_time")
        case "execution_time_ms", "execution_time", "execution_duration": return try numeric("execution_duration")
        case "end_time_ms", "end_time": return try numeric("end_time")
        case "status", "state": return try text("state")
        case "request_id", "trace_id": return try text("trace_id")
        case "client_request_id": return try text("client_request_id")
        case "name":
            guard stringComparators.contains(raw.comparator) || raw.comparator == .in || raw.comparator == .notIn else {
                throw RepriseError.invalid("Invalid comparator '\(raw.comparator.rawValue)' for 'name'.")
            }
            return .tag(key: TraceKeys.name, raw.comparator, raw.value)
        case "run_id":
            guard raw.comparator == .eq || raw.comparator == .in else {
                throw RepriseError.invalid("Invalid comparator '\(raw.comparator.rawValue)' for 'run_id': use = or IN.")
            }
            return .run(raw.comparator, raw.value)
        case "prompt", "prompts":
            guard raw.comparator == .eq, raw.quoted, case .string(let text) = raw.value, let slash = text.lastIndex(of: "/"),
                !text[..<slash].isEmpty, !text[text.index(after: slash)...].isEmpty
            else {
                throw RepriseError.invalid("Invalid prompts filter value '\(raw.value.display)'. Expected format: prompt = \"name/version\"")
            }
            return .prompt(name: String(text[..<slash]), version: String(text[text.index(after: slash)...]))
        case "text":
            guard raw.comparator == .like || raw.comparator == .ilike || raw.comparator == .eq else {
                throw RepriseError.invalid("Invalid comparator '\(raw.comparator.rawValue)' for 'text': use LIKE or ILIKE.")
            }
            return .text(raw.comparator, raw.value)
        default:
            throw RepriseError.invalid(
                "Invalid attribute '\(raw.key)' in a trace filter: use timestamp_ms, execution_time_ms, end_time_ms, status, name, run_id, request_id, client_request_id, prompt or text.")
        }
    }
}

// MARK: - Store

/// Traces, spans and assessments. Every method is atomic and durable once it returns.
public protocol TraceStore: Sendable {
    /// Records a trace's info (`StartTraceV3`, sent when the trace ends). A trace whose spans came
    /// first is completed: the info's fields replace the ones derived from the spans, its tags and
    /// metadata are merged in. Returns the stored info, server tags included. `finalized` marks the
    /// info complete (metadata `mlflow.trace.infoFinalized`); the v2 API's start is not.
    func startTrace(_ info: TraceInfo, finalized: Bool) async throws -> TraceInfo
    /// Stores spans (OTLP), creating the traces they belong to in `experimentID` when new. A span
    /// already stored (same trace and span id) is replaced.
    func logSpans(experimentID: String, _ spans: [SpanRecord]) async throws
    func getTraceInfo(id: String) async throws -> TraceInfo
    /// The traces with these ids that exist, with their spans, in the order asked.
    func getTraces(ids: [String]) async throws -> [TraceRecord]
    func traceInfos(ids: [String]) async throws -> [TraceInfo]
    func searchTraces(_ query: TraceSearchQuery) async throws -> Page<TraceInfo>
    func setTraceTag(id: String, key: String, value: String) async throws
    func deleteTraceTag(id: String, key: String) async throws
    /// Deletes the traces named (`ids`) or, without ids, those older than `maxTimestamp` (up to
    /// `maxTraces`, oldest first). Returns how many were deleted.
    func deleteTraces(experimentID: String, maxTimestamp: Int64?, maxTraces: Int?, ids: [String]?) async throws -> Int
    func linkTracesToRun(traceIDs: [String], runID: String) async throws
    func createAssessment(_ assessment: Assessment) async throws -> Assessment
    func getAssessment(traceID: String, id: String) async throws -> Assessment
    func updateAssessment(traceID: String, id: String, _ update: @escaping @Sendable (Assessment) throws -> Assessment) async throws -> Assessment
    func deleteAssessment(traceID: String, id: String) async throws
    /// The experiment a trace belongs to (permission checks).
    func experimentID(ofTrace id: String) async throws -> String
    /// Links prompt versions to a trace (its `mlflow.linkedPrompts` tag, which the client also
    /// writes when a prompt is loaded inside a trace).
    func linkPrompts(traceID: String, prompts: [(name: String, version: String)]) async throws
    /// The rows a `traces/metrics` query selects, one sample each (see `TraceMetrics.aggregate`).
    func traceMetricSamples(_ query: TraceMetricsQuery) async throws -> [TraceMetricSample]
    /// How many traces of the experiments match `base`, and of those `filter1`, `filter2` and both.
    func traceFilterCorrelation(
        experimentIDs: [Int64], base: [TraceSearchQuery.Clause], filter1: [TraceSearchQuery.Clause], filter2: [TraceSearchQuery.Clause]
    ) async throws -> TraceFilterCorrelation
}

extension TraceStore {
    /// StartTraceV3: the info of a finished trace.
    public func startTrace(_ info: TraceInfo) async throws -> TraceInfo { try await startTrace(info, finalized: true) }
}
