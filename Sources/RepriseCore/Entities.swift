/// A key/value pair: run tags, experiment tags, params, input tags.
public struct KeyValue: Sendable, Equatable, Hashable {
    public var key: String
    public var value: String
    public init(_ key: String, _ value: String) {
        self.key = key
        self.value = value
    }
    public var json: JSONValue { ["key": .string(key), "value": .string(value)] }

    /// The same object as `json`, written straight into a response: a search page holds thousands
    /// (`WireDecodingTests.runBytesAreMLflowsShape` holds the two to the same bytes).
    public func writeJSON(to out: inout [UInt8]) {
        JSONValue.writeLiteral(#"{"key":"#, to: &out)
        JSONValue.writeString(key, to: &out)
        JSONValue.writeLiteral(#","value":"#, to: &out)
        JSONValue.writeString(value, to: &out)
        out.append(UInt8(ascii: "}"))
    }
}

public enum LifecycleStage: String, Sendable {
    case active, deleted
}

/// Which lifecycle stages a search covers.
public enum ViewType: String, Sendable {
    case activeOnly = "ACTIVE_ONLY"
    case deletedOnly = "DELETED_ONLY"
    case all = "ALL"

    /// Parses the enum by name or by number, as protobuf JSON allows.
    public init?(wire: String) {
        switch wire.uppercased() {
        case "ACTIVE_ONLY", "1": self = .activeOnly
        case "DELETED_ONLY", "2": self = .deletedOnly
        case "ALL", "3": self = .all
        default: return nil
        }
    }

    public var stages: [LifecycleStage] {
        switch self {
        case .activeOnly: return [.active]
        case .deletedOnly: return [.deleted]
        case .all: return [.active, .deleted]
        }
    }
}

public enum RunStatus: String, Sendable, CaseIterable {
    case running = "RUNNING", scheduled = "SCHEDULED", finished = "FINISHED", failed = "FAILED", killed = "KILLED"

    /// Finished, failed or killed.
    public var isTerminal: Bool { self == .finished || self == .failed || self == .killed }

    public init?(wire: String) {
        switch wire.uppercased() {
        case "RUNNING", "1": self = .running
        case "SCHEDULED", "2": self = .scheduled
        case "FINISHED", "3": self = .finished
        case "FAILED", "4": self = .failed
        case "KILLED", "5": self = .killed
        default: return nil
        }
    }
}

public struct Experiment: Sendable, Equatable {
    public var experimentID: String
    public var name: String
    public var artifactLocation: String
    public var lifecycleStage: LifecycleStage
    public var creationTime: Int64
    public var lastUpdateTime: Int64
    public var tags: [KeyValue]

    public init(
        experimentID: String, name: String, artifactLocation: String, lifecycleStage: LifecycleStage,
        creationTime: Int64, lastUpdateTime: Int64, tags: [KeyValue]
    ) {
        self.experimentID = experimentID
        self.name = name
        self.artifactLocation = artifactLocation
        self.lifecycleStage = lifecycleStage
        self.creationTime = creationTime
        self.lastUpdateTime = lastUpdateTime
        self.tags = tags
    }

    public var json: JSONValue {
        var o = JSONObject([
            ("experiment_id", .string(experimentID)), ("name", .string(name)),
            ("artifact_location", .string(artifactLocation)), ("lifecycle_stage", .string(lifecycleStage.rawValue)),
            ("last_update_time", .int(lastUpdateTime)), ("creation_time", .int(creationTime)),
        ])
        if !tags.isEmpty { o["tags"] = .array(tags.map(\.json)) }
        return .object(o)
    }
}

public struct RunInfo: Sendable, Equatable {
    public var runID: String
    public var experimentID: String
    public var runName: String
    public var userID: String
    public var status: RunStatus
    public var startTime: Int64
    public var endTime: Int64?
    public var artifactURI: String
    public var lifecycleStage: LifecycleStage

    public init(
        runID: String, experimentID: String, runName: String, userID: String, status: RunStatus,
        startTime: Int64, endTime: Int64?, artifactURI: String, lifecycleStage: LifecycleStage
    ) {
        self.runID = runID
        self.experimentID = experimentID
        self.runName = runName
        self.userID = userID
        self.status = status
        self.startTime = startTime
        self.endTime = endTime
        self.artifactURI = artifactURI
        self.lifecycleStage = lifecycleStage
    }

    /// MLflow's `RunInfo` object. Runs are written as bytes, never as a `JSONValue` tree: a search
    /// page of 100 runs is ~2,600 objects, and building then serializing the tree was a third of
    /// the search's server CPU.
    public func writeJSON(to out: inout [UInt8]) {
        JSONValue.writeLiteral(#"{"run_uuid":"#, to: &out)
        JSONValue.writeString(runID, to: &out)
        JSONValue.writeLiteral(#","run_id":"#, to: &out)
        JSONValue.writeString(runID, to: &out)
        JSONValue.writeLiteral(#","experiment_id":"#, to: &out)
        JSONValue.writeString(experimentID, to: &out)
        JSONValue.writeLiteral(#","run_name":"#, to: &out)
        JSONValue.writeString(runName, to: &out)
        JSONValue.writeLiteral(#","user_id":"#, to: &out)
        JSONValue.writeString(userID, to: &out)
        JSONValue.writeLiteral(#","status":"#, to: &out)
        JSONValue.writeString(status.rawValue, to: &out)
        JSONValue.writeLiteral(#","start_time":"#, to: &out)
        JSONValue.writeInt(startTime, to: &out)
        if let endTime {
            JSONValue.writeLiteral(#","end_time":"#, to: &out)
            JSONValue.writeInt(endTime, to: &out)
        }
        JSONValue.writeLiteral(#","artifact_uri":"#, to: &out)
        JSONValue.writeString(artifactURI, to: &out)
        JSONValue.writeLiteral(#","lifecycle_stage":"#, to: &out)
        JSONValue.writeString(lifecycleStage.rawValue, to: &out)
        out.append(UInt8(ascii: "}"))
    }
}

/// One metric point.
public struct Metric: Sendable, Equatable {
    public var key: String
    public var value: Double
    public var timestamp: Int64
    public var step: Int64
    public var modelID: String?
    public var datasetName: String?
    public var datasetDigest: String?
    public var runID: String?

    public init(
        key: String, value: Double, timestamp: Int64, step: Int64 = 0, modelID: String? = nil,
        datasetName: String? = nil, datasetDigest: String? = nil, runID: String? = nil
    ) {
        self.key = key
        self.value = value
        self.timestamp = timestamp
        self.step = step
        self.modelID = modelID
        self.datasetName = datasetName
        self.datasetDigest = datasetDigest
        self.runID = runID
    }

    public static func == (a: Metric, b: Metric) -> Bool {
        a.key == b.key && (a.value == b.value || (a.value.isNaN && b.value.isNaN)) && a.timestamp == b.timestamp
            && a.step == b.step && a.modelID == b.modelID && a.datasetName == b.datasetName
            && a.datasetDigest == b.datasetDigest && a.runID == b.runID
    }

    /// Writes the same object as `json` directly: metric histories can hold 100k points.
    public func writeJSON(to out: inout [UInt8]) {
        Self.writeHead(key: key, to: &out)
        Self.writeTail(
            value: value, timestamp: timestamp, step: step, modelID: modelID, datasetName: datasetName, datasetDigest: datasetDigest,
            runID: runID, to: &out)
    }

    /// `{"key":"<key>","value":` — the start of every point; a history of one key writes it once and
    /// copies it per point.
    public static func writeHead(key: String, to out: inout [UInt8]) {
        JSONValue.writeLiteral(#"{"key":"#, to: &out)
        JSONValue.writeString(key, to: &out)
        JSONValue.writeLiteral(#","value":"#, to: &out)
    }

    /// The rest of a point after `writeHead`: the value, then the other fields, then `}`.
    public static func writeTail(
        value: Double, timestamp: Int64, step: Int64, modelID: String?, datasetName: String?, datasetDigest: String?, runID: String?,
        to out: inout [UInt8]
    ) {
        JSONValue.writeDouble(value, to: &out)
        JSONValue.writeLiteral(#","timestamp":"#, to: &out)
        JSONValue.writeInt(timestamp, to: &out)
        JSONValue.writeLiteral(#","step":"#, to: &out)
        JSONValue.writeInt(step, to: &out)
        func optional(_ name: StaticString, _ v: String?) {
            guard let v, !v.isEmpty else { return }
            JSONValue.writeLiteral(name, to: &out)
            JSONValue.writeString(v, to: &out)
        }
        optional(#","dataset_name":"#, datasetName)
        optional(#","dataset_digest":"#, datasetDigest)
        optional(#","model_id":"#, modelID)
        optional(#","run_id":"#, runID)
        out.append(UInt8(ascii: "}"))
    }

    public var json: JSONValue {
        var o = JSONObject([
            ("key", .string(key)), ("value", .double(value)), ("timestamp", .int(timestamp)), ("step", .int(step)),
        ])
        if let datasetName, !datasetName.isEmpty { o["dataset_name"] = .string(datasetName) }
        if let datasetDigest, !datasetDigest.isEmpty { o["dataset_digest"] = .string(datasetDigest) }
        if let modelID, !modelID.isEmpty { o["model_id"] = .string(modelID) }
        if let runID, !runID.isEmpty { o["run_id"] = .string(runID) }
        return .object(o)
    }
}

/// Metric points already written as MLflow's JSON objects (`Metric.writeJSON`), comma separated:
/// the inside of a response's `metrics` array. A 100,000-point history goes from the database to
/// these bytes without a value per point in between.
///
/// The bytes are kept in pieces of 1 MiB (after a first one of 64 KiB) rather than one growing array: an 8 MB history in one array
/// was copied at every doubling (each copy page-faulted in afresh, a fifth of a get-history's server
/// CPU). Each piece is allocated once at its full size, which is the server's mmap threshold
/// (`ServerCommand.tuneAllocator`), so it goes back to the system when the response is sent rather
/// than staying in an arena; the response streams the pieces as they are.
public struct EncodedMetrics: Sendable {
    /// The filled pieces, then the one being written.
    public private(set) var pieces: [[UInt8]] = []
    private var current: [UInt8] = []
    public private(set) var count = 0
    public private(set) var byteCount = 0
    /// Where the next page starts, when there is one.
    public var nextOffset: Int? = nil

    /// The first piece is small, so a short page costs one small allocation; the rest are 1 MiB.
    static let firstPieceSize = 64 * 1024
    static let pieceSize = 1 << 20

    public init() {}

    public init(_ metrics: [Metric], nextOffset: Int?) {
        for m in metrics { append(m) }
        self.nextOffset = nextOffset
    }

    public mutating func append(_ m: Metric) {
        append { m.writeJSON(to: &$0) }
    }

    /// Appends one point that `write` writes as a whole JSON object (`Metric.writeHead` +
    /// `writeTail`, or `Metric.writeJSON`).
    public mutating func append(_ write: (inout [UInt8]) -> Void) {
        let limit = pieces.isEmpty ? Self.firstPieceSize : Self.pieceSize
        if current.capacity == 0 { current.reserveCapacity(limit + 4096) }
        let before = current.count
        if count > 0 { current.append(UInt8(ascii: ",")) }
        write(&current)
        count += 1
        byteCount += current.count - before
        if current.count >= limit {
            pieces.append(current)
            current = []
        }
    }

    /// Every piece in order, the last (partly filled) one included; none when empty.
    public var allPieces: [[UInt8]] { current.isEmpty ? pieces : pieces + [current] }

    /// All the bytes in one array (small pages, tests).
    public var json: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(byteCount)
        for p in pieces { out += p }
        out += current
        return out
    }
}

public struct Dataset: Sendable, Equatable {
    public var name: String
    public var digest: String
    public var sourceType: String
    public var source: String
    public var schema: String?
    public var profile: String?

    public init(name: String, digest: String, sourceType: String, source: String, schema: String?, profile: String?) {
        self.name = name
        self.digest = digest
        self.sourceType = sourceType
        self.source = source
        self.schema = schema
        self.profile = profile
    }

    public var json: JSONValue {
        var o = JSONObject([
            ("name", .string(name)), ("digest", .string(digest)), ("source_type", .string(sourceType)),
            ("source", .string(source)),
        ])
        if let schema, !schema.isEmpty { o["schema"] = .string(schema) }
        if let profile, !profile.isEmpty { o["profile"] = .string(profile) }
        return .object(o)
    }
}

public struct DatasetInput: Sendable, Equatable {
    public var tags: [KeyValue]
    public var dataset: Dataset
    public init(tags: [KeyValue], dataset: Dataset) {
        self.tags = tags
        self.dataset = dataset
    }
    public var json: JSONValue {
        var o = JSONObject()
        if !tags.isEmpty { o["tags"] = .array(tags.map(\.json)) }
        o["dataset"] = dataset.json
        return .object(o)
    }
}

public struct ModelOutput: Sendable, Equatable {
    public var modelID: String
    public var step: Int64
    public init(modelID: String, step: Int64) {
        self.modelID = modelID
        self.step = step
    }
}

public struct Run: Sendable, Equatable {
    public var info: RunInfo
    public var metrics: [Metric]
    public var params: [KeyValue]
    public var tags: [KeyValue]
    public var datasetInputs: [DatasetInput]
    public var modelInputs: [String]
    public var modelOutputs: [ModelOutput]

    public init(
        info: RunInfo, metrics: [Metric] = [], params: [KeyValue] = [], tags: [KeyValue] = [],
        datasetInputs: [DatasetInput] = [], modelInputs: [String] = [], modelOutputs: [ModelOutput] = []
    ) {
        self.info = info
        self.metrics = metrics
        self.params = params
        self.tags = tags
        self.datasetInputs = datasetInputs
        self.modelInputs = modelInputs
        self.modelOutputs = modelOutputs
    }

    /// MLflow's `Run` object: `info`, then `data` (metrics, params, tags), `inputs` and `outputs`,
    /// each list only when it has members. This is the one encoder of a run (see `RunInfo`); the
    /// decoder is `Run(wire:)`.
    public func writeJSON(to out: inout [UInt8]) {
        JSONValue.writeLiteral(#"{"info":"#, to: &out)
        info.writeJSON(to: &out)
        JSONValue.writeLiteral(#","data":{"#, to: &out)
        var first = true
        func list<T>(_ name: StaticString, _ items: [T], _ write: (T, inout [UInt8]) -> Void) {
            guard !items.isEmpty else { return }
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            JSONValue.writeLiteral(name, to: &out)
            JSONValue.writeArray(items, to: &out, write)
        }
        list(#""metrics":"#, metrics) { m, o in m.writeJSON(to: &o) }
        list(#""params":"#, params) { p, o in p.writeJSON(to: &o) }
        list(#""tags":"#, tags) { t, o in t.writeJSON(to: &o) }
        JSONValue.writeLiteral(#"},"inputs":{"#, to: &out)
        first = true
        list(#""dataset_inputs":"#, datasetInputs) { d, o in d.json.write(to: &o) }
        list(#""model_inputs":"#, modelInputs) { id, o in
            JSONValue.writeLiteral(#"{"model_id":"#, to: &o)
            JSONValue.writeString(id, to: &o)
            o.append(UInt8(ascii: "}"))
        }
        JSONValue.writeLiteral(#"},"outputs":{"#, to: &out)
        first = true
        list(#""model_outputs":"#, modelOutputs) { m, o in
            JSONValue.writeLiteral(#"{"model_id":"#, to: &o)
            JSONValue.writeString(m.modelID, to: &o)
            JSONValue.writeLiteral(#","step":"#, to: &o)
            JSONValue.writeInt(m.step, to: &o)
            o.append(UInt8(ascii: "}"))
        }
        JSONValue.writeLiteral("}}", to: &out)
    }

    /// The run as JSON text (tests, the CLI's output).
    public var jsonBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        writeJSON(to: &out)
        return out
    }
}

public enum LoggedModelStatus: String, Sendable {
    case unspecified = "LOGGED_MODEL_STATUS_UNSPECIFIED"
    case pending = "LOGGED_MODEL_PENDING"
    case ready = "LOGGED_MODEL_READY"
    case uploadFailed = "LOGGED_MODEL_UPLOAD_FAILED"

    public init?(wire: String) {
        switch wire.uppercased() {
        case "LOGGED_MODEL_STATUS_UNSPECIFIED", "0": self = .unspecified
        case "LOGGED_MODEL_PENDING", "1": self = .pending
        case "LOGGED_MODEL_READY", "2": self = .ready
        case "LOGGED_MODEL_UPLOAD_FAILED", "3": self = .uploadFailed
        default: return nil
        }
    }
}

/// An MLflow 3 logged model (`m-…`).
public struct LoggedModel: Sendable, Equatable {
    public var modelID: String
    public var experimentID: String
    public var name: String
    public var creationTime: Int64
    public var lastUpdatedTime: Int64
    public var artifactURI: String
    public var status: LoggedModelStatus
    public var statusMessage: String?
    public var modelType: String
    public var sourceRunID: String?
    public var lifecycleStage: LifecycleStage
    public var tags: [KeyValue]
    public var params: [KeyValue]
    public var metrics: [Metric]

    public init(
        modelID: String, experimentID: String, name: String, creationTime: Int64, lastUpdatedTime: Int64,
        artifactURI: String, status: LoggedModelStatus, statusMessage: String?, modelType: String,
        sourceRunID: String?, lifecycleStage: LifecycleStage, tags: [KeyValue], params: [KeyValue],
        metrics: [Metric]
    ) {
        self.modelID = modelID
        self.experimentID = experimentID
        self.name = name
        self.creationTime = creationTime
        self.lastUpdatedTime = lastUpdatedTime
        self.artifactURI = artifactURI
        self.status = status
        self.statusMessage = statusMessage
        self.modelType = modelType
        self.sourceRunID = sourceRunID
        self.lifecycleStage = lifecycleStage
        self.tags = tags
        self.params = params
        self.metrics = metrics
    }

    public var json: JSONValue {
        var info = JSONObject([
            ("model_id", .string(modelID)), ("experiment_id", .string(experimentID)), ("name", .string(name)),
            ("creation_timestamp_ms", .int(creationTime)), ("last_updated_timestamp_ms", .int(lastUpdatedTime)),
            ("artifact_uri", .string(artifactURI)), ("status", .string(status.rawValue)),
            ("model_type", .string(modelType)),
        ])
        if let sourceRunID, !sourceRunID.isEmpty { info["source_run_id"] = .string(sourceRunID) }
        if let statusMessage, !statusMessage.isEmpty { info["status_message"] = .string(statusMessage) }
        if !tags.isEmpty { info["tags"] = .array(tags.map(\.json)) }
        var data = JSONObject()
        if !params.isEmpty { data["params"] = .array(params.map(\.json)) }
        if !metrics.isEmpty { data["metrics"] = .array(metrics.map(\.json)) }
        return ["info": .object(info), "data": .object(data)]
    }
}

/// A page of search results; `nextOffset` is set when more results exist.
public struct Page<T: Sendable>: Sendable {
    public var items: [T]
    public var nextOffset: Int?
    public init(items: [T], nextOffset: Int?) {
        self.items = items
        self.nextOffset = nextOffset
    }
}
