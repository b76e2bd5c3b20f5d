/// Reading entities back from the wire: the inverse of each entity's `json`, for what a server
/// answers (an MLflow server being imported, a Reprise export). Lenient where servers differ:
/// 64-bit integers as numbers or strings, NaN and ±inf as MLflow's strings, absent lists as empty.
/// What a request carries is checked by the server's own parameter parsing, not here.
public struct WireDecodingError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension JSONValue {
    /// A field that must be a string.
    func wireString(_ key: String, in entity: String) throws -> String {
        guard let s = self[key]?.stringValue else { throw WireDecodingError("\(entity) without a string '\(key)': \(self.jsonString.prefix(200))") }
        return s
    }

    /// An optional string; JSON null and absence are nil.
    func wireOptionalString(_ key: String) -> String? { self[key]?.stringValue }

    /// A 64-bit integer sent as a number or a string.
    func wireInt(_ key: String) -> Int64? {
        switch self[key] {
        case .int(let i)?: return i
        case .double(let d)? where d.isFinite && d == d.rounded() && abs(d) < 9.2e18: return Int64(d)
        case .string(let s)?: return Int64(s)
        default: return nil
        }
    }

    /// A double; MLflow writes NaN and ±inf as the strings "NaN", "Infinity", "-Infinity".
    func wireDouble(_ key: String) -> Double? {
        switch self[key] {
        case .double(let d)?: return d
        case .int(let i)?: return Double(i)
        case .string(let s)?:
            switch s {
            case "NaN", "nan": return .nan
            case "Infinity", "inf": return .infinity
            case "-Infinity", "-inf": return -.infinity
            default: return Double(s)
            }
        default: return nil
        }
    }

    public func wireArray(_ key: String) -> [JSONValue] {
        if case .array(let a)? = self[key] { return a }
        return []
    }

    func wireKeyValues(_ key: String) -> [KeyValue] {
        wireArray(key).compactMap { kv in kv["key"]?.stringValue.map { KeyValue($0, kv["value"]?.stringValue ?? "") } }
    }
}

extension Experiment {
    public init(wire j: JSONValue) throws {
        self.init(
            experimentID: try j.wireString("experiment_id", in: "experiment"), name: try j.wireString("name", in: "experiment"),
            artifactLocation: j.wireOptionalString("artifact_location") ?? "",
            lifecycleStage: LifecycleStage(rawValue: j.wireOptionalString("lifecycle_stage") ?? "active") ?? .active,
            creationTime: j.wireInt("creation_time") ?? 0, lastUpdateTime: j.wireInt("last_update_time") ?? j.wireInt("creation_time") ?? 0,
            tags: j.wireKeyValues("tags"))
    }
}

extension Metric {
    public init(wire j: JSONValue) throws {
        guard let value = j.wireDouble("value") else { throw WireDecodingError("metric without a value: \(j.jsonString.prefix(200))") }
        self.init(
            key: try j.wireString("key", in: "metric"), value: value, timestamp: j.wireInt("timestamp") ?? 0, step: j.wireInt("step") ?? 0,
            modelID: j.wireOptionalString("model_id"), datasetName: j.wireOptionalString("dataset_name"),
            datasetDigest: j.wireOptionalString("dataset_digest"), runID: j.wireOptionalString("run_id"))
    }
}

extension Run {
    public init(wire j: JSONValue) throws {
        let info = j["info"] ?? [:]
        let data = j["data"] ?? [:]
        let inputs = j["inputs"] ?? [:]
        let outputs = j["outputs"] ?? [:]
        let id = info.wireOptionalString("run_id") ?? info.wireOptionalString("run_uuid") ?? ""
        if id.isEmpty { throw WireDecodingError("run without a run_id: \(j.jsonString.prefix(200))") }
        self.init(
            info: RunInfo(
                runID: id, experimentID: try info.wireString("experiment_id", in: "run"), runName: info.wireOptionalString("run_name") ?? "",
                userID: info.wireOptionalString("user_id") ?? "", status: RunStatus(rawValue: info.wireOptionalString("status") ?? "") ?? .finished,
                startTime: info.wireInt("start_time") ?? 0, endTime: info.wireInt("end_time"), artifactURI: info.wireOptionalString("artifact_uri") ?? "",
                lifecycleStage: LifecycleStage(rawValue: info.wireOptionalString("lifecycle_stage") ?? "active") ?? .active),
            metrics: try data.wireArray("metrics").map(Metric.init(wire:)),
            params: data.wireKeyValues("params"), tags: data.wireKeyValues("tags"),
            datasetInputs: try inputs.wireArray("dataset_inputs").map { d in
                let ds = d["dataset"] ?? [:]
                return DatasetInput(
                    tags: d.wireKeyValues("tags"),
                    dataset: Dataset(
                        name: try ds.wireString("name", in: "dataset"), digest: try ds.wireString("digest", in: "dataset"),
                        sourceType: ds.wireOptionalString("source_type") ?? "", source: ds.wireOptionalString("source") ?? "",
                        schema: ds.wireOptionalString("schema"), profile: ds.wireOptionalString("profile")))
            },
            modelInputs: inputs.wireArray("model_inputs").compactMap { $0["model_id"]?.stringValue },
            modelOutputs: outputs.wireArray("model_outputs").compactMap { o in
                o["model_id"]?.stringValue.map { ModelOutput(modelID: $0, step: o.wireInt("step") ?? 0) }
            })
    }
}

extension LoggedModel {
    public init(wire j: JSONValue) throws {
        let info = j["info"] ?? [:]
        let data = j["data"] ?? [:]
        self.init(
            modelID: try info.wireString("model_id", in: "logged model"), experimentID: try info.wireString("experiment_id", in: "logged model"),
            name: info.wireOptionalString("name") ?? "", creationTime: info.wireInt("creation_timestamp_ms") ?? 0,
            lastUpdatedTime: info.wireInt("last_updated_timestamp_ms") ?? info.wireInt("creation_timestamp_ms") ?? 0,
            artifactURI: info.wireOptionalString("artifact_uri") ?? "",
            status: LoggedModelStatus(wire: info.wireOptionalString("status") ?? "") ?? .unspecified,
            statusMessage: info.wireOptionalString("status_message"), modelType: info.wireOptionalString("model_type") ?? "",
            sourceRunID: info.wireOptionalString("source_run_id"), lifecycleStage: .active, tags: info.wireKeyValues("tags"),
            params: data.wireKeyValues("params"), metrics: try data.wireArray("metrics").map(Metric.init(wire:)))
    }
}

extension ModelVersion {
    public init(wire j: JSONValue) throws {
        guard let version = j.wireInt("version") else { throw WireDecodingError("model version without a version: \(j.jsonString.prefix(200))") }
        let source = j.wireOptionalString("source") ?? ""
        self.init(
            name: try j.wireString("name", in: "model version"), version: version, creationTime: j.wireInt("creation_timestamp") ?? 0,
            lastUpdatedTime: j.wireInt("last_updated_timestamp") ?? j.wireInt("creation_timestamp") ?? 0,
            description: j.wireOptionalString("description") ?? "", userID: j.wireOptionalString("user_id") ?? "",
            currentStage: j.wireOptionalString("current_stage") ?? ModelStage.none.rawValue, source: source,
            runID: j.wireOptionalString("run_id") ?? "", runLink: j.wireOptionalString("run_link") ?? "",
            status: j.wireOptionalString("status") ?? "READY", statusMessage: j.wireOptionalString("status_message") ?? "",
            modelID: j.wireOptionalString("model_id") ?? "", storageLocation: j.wireOptionalString("storage_location") ?? source,
            tags: j.wireKeyValues("tags"), aliases: j.wireArray("aliases").compactMap(\.stringValue))
    }
}

extension RegisteredModel {
    public init(wire j: JSONValue) throws {
        self.init(
            name: try j.wireString("name", in: "registered model"), creationTime: j.wireInt("creation_timestamp") ?? 0,
            lastUpdatedTime: j.wireInt("last_updated_timestamp") ?? j.wireInt("creation_timestamp") ?? 0,
            description: j.wireOptionalString("description") ?? "", userID: j.wireOptionalString("user_id") ?? "",
            latestVersions: [], tags: j.wireKeyValues("tags"),
            aliases: j.wireArray("aliases").compactMap { a in
                guard let alias = a["alias"]?.stringValue, let v = a.wireInt("version") else { return nil }
                return (alias, v)
            })
    }
}

extension Webhook {
    public init(wire j: JSONValue) throws {
        self.init(
            id: try j.wireString("webhook_id", in: "webhook"), name: j.wireOptionalString("name") ?? "",
            description: j.wireOptionalString("description") ?? "", url: j.wireOptionalString("url") ?? "",
            events: j.wireArray("events").compactMap { e in
                guard let entity = e["entity"]?.stringValue, let action = e["action"]?.stringValue else { return nil }
                return WebhookEvent(entity: entity, action: action)
            },
            status: WebhookStatus(rawValue: (j.wireOptionalString("status") ?? "ACTIVE").uppercased()) ?? .active,
            creationTime: j.wireInt("creation_timestamp") ?? 0,
            lastUpdatedTime: j.wireInt("last_updated_timestamp") ?? j.wireInt("creation_timestamp") ?? 0)
    }
}

// Reprise's own entities, as its extension endpoints answer them (the CLI reads these).

extension ExperimentPolicy {
    public init(wire j: JSONValue) throws {
        let mode = try j.wireString("mode", in: "policy")
        guard let m = PolicyMode(rawValue: mode) else { throw WireDecodingError("policy with an unknown mode '\(mode)'") }
        self.init(
            experimentID: try j.wireString("experiment_id", in: "policy"), mode: m,
            required: j.wireArray("required").compactMap { $0.stringValue.flatMap(PassportField.init(rawValue:)) },
            refuseDirty: j["refuse_dirty"] == .bool(true), refuseDuplicates: j["refuse_duplicates"] == .bool(true),
            updatedTime: j.wireInt("updated_timestamp") ?? 0, updatedBy: j.wireOptionalString("updated_by") ?? "")
    }
}

extension Reproduction {
    public init(wire j: JSONValue) throws {
        let verdict = try j.wireString("verdict", in: "reproduction")
        self.init(
            id: try j.wireString("id", in: "reproduction"), originalRunID: try j.wireString("original_run_id", in: "reproduction"),
            rerunRunID: j.wireOptionalString("rerun_run_id") ?? "",
            verdict: try ReproductionVerdict(parsing: verdict), summary: j.wireOptionalString("summary") ?? "",
            details: Self.detailsText(j["details"]), time: j.wireInt("timestamp") ?? 0, actor: j.wireOptionalString("actor") ?? "")
    }

    /// `details` travels as a JSON object (or, when it was not JSON, as the text itself).
    static func detailsText(_ v: JSONValue?) -> String {
        switch v {
        case .string(let s)?: return s
        case nil, .null?: return ""
        case let other?: return other.jsonString
        }
    }

    /// The details as JSON (an empty object when there are none).
    public var detailsJSON: JSONValue { (try? JSONValue.parse(details)) ?? [:] }
}

extension ApprovalRequest.Vote {
    public init(wire j: JSONValue) throws {
        self.init(
            approver: try j.wireString("approver", in: "vote"), decision: try j.wireString("decision", in: "vote"),
            rationale: j.wireOptionalString("rationale") ?? "", time: j.wireInt("time") ?? 0)
    }
}

extension ApprovalRequest {
    public init(wire j: JSONValue) throws {
        let state = try j.wireString("state", in: "approval request")
        guard let s = ApprovalState(rawValue: state) else { throw WireDecodingError("approval request with an unknown state '\(state)'") }
        guard let target = j.wireInt("target_version") else { throw WireDecodingError("approval request without a target_version") }
        self.init(
            id: try j.wireString("id", in: "approval request"), model: try j.wireString("model", in: "approval request"),
            alias: try j.wireString("alias", in: "approval request"), targetVersion: target, previousVersion: j.wireInt("previous_version"),
            kind: j.wireOptionalString("kind") ?? "move", requester: j.wireOptionalString("requester") ?? "",
            rationale: j.wireOptionalString("rationale") ?? "", state: s, requiredApprovals: Int(clamping: j.wireInt("required_approvals") ?? 1),
            approvers: j.wireArray("approvers").compactMap(\.stringValue),
            checks: try j.wireArray("checks").map { try ApprovalCheck(json: $0) },
            votes: try j.wireArray("votes").map(Vote.init(wire:)), createdTime: j.wireInt("created_time") ?? 0,
            updatedTime: j.wireInt("updated_time") ?? j.wireInt("created_time") ?? 0, resolution: j.wireOptionalString("resolution") ?? "")
    }
}

extension AuditEvent {
    public init(wire j: JSONValue) throws {
        guard let seq = j.wireInt("seq") else { throw WireDecodingError("audit event without a seq") }
        var auth = JSONObject()
        if let m = j["auth_method"] { auth["method"] = m }
        if let t = j["token_id"] { auth["token_id"] = t }
        if let v = j["via"] { auth["via"] = v }
        self.init(
            seq: seq, time: j.wireInt("time") ?? 0, actor: j.wireOptionalString("actor") ?? "", authenticated: j["authenticated"] == .bool(true),
            action: try j.wireString("action", in: "audit event"), entityType: j.wireOptionalString("entity_type") ?? "",
            entityID: j.wireOptionalString("entity_id") ?? "", summary: Reproduction.detailsText(j["summary"]),
            requestID: j.wireOptionalString("request_id") ?? "", prevHash: j.wireOptionalString("prev_hash") ?? "",
            hash: j.wireOptionalString("hash") ?? "", auth: auth.members.isEmpty ? "" : JSONValue.object(auth).jsonString)
    }
}
