import Foundation

// MLflow 3 GenAI evaluation: evaluation datasets (records of inputs and expectations, merged by
// their inputs) and the scorer registry (versioned scorer definitions; running them is the
// client's job: the server never executes what it stores).

/// An evaluation dataset as `/api/3.0/mlflow/datasets/*` carries it.
public struct EvalDataset: Sendable, Equatable {
    public var datasetID: String
    public var name: String
    public var tags: [KeyValue]
    /// JSON text: the field names and value types of the records' inputs, outputs, expectations.
    public var schema: String?
    /// JSON text: `{"num_records": N}`.
    public var profile: String?
    public var digest: String
    public var createdTime: Int64
    public var lastUpdateTime: Int64
    public var createdBy: String
    public var lastUpdatedBy: String
    public var experimentIDs: [String]

    public init(
        datasetID: String, name: String, tags: [KeyValue], schema: String?, profile: String?, digest: String, createdTime: Int64,
        lastUpdateTime: Int64, createdBy: String, lastUpdatedBy: String, experimentIDs: [String]
    ) {
        self.datasetID = datasetID
        self.name = name
        self.tags = tags
        self.schema = schema
        self.profile = profile
        self.digest = digest
        self.createdTime = createdTime
        self.lastUpdateTime = lastUpdateTime
        self.createdBy = createdBy
        self.lastUpdatedBy = lastUpdatedBy
        self.experimentIDs = experimentIDs
    }

    /// Tags travel as one JSON object in a string, as the reference sends them.
    public var json: JSONValue {
        var o = JSONObject()
        o["dataset_id"] = .string(datasetID)
        o["name"] = .string(name)
        o["tags"] = .string(JSONValue.object(JSONObject(tags.map { ($0.key, .string($0.value)) })).pythonDumps)
        if let schema { o["schema"] = .string(schema) }
        if let profile { o["profile"] = .string(profile) }
        o["digest"] = .string(digest)
        o["created_time"] = .int(createdTime)
        o["last_update_time"] = .int(lastUpdateTime)
        o["created_by"] = .string(createdBy)
        o["last_updated_by"] = .string(lastUpdatedBy)
        if !experimentIDs.isEmpty { o["experiment_ids"] = .array(experimentIDs.map(JSONValue.string)) }
        return .object(o)
    }

    /// Tags as the client sends them: a JSON object of strings, itself in a string (or an object).
    public static func tags(from value: JSONValue?) throws -> [KeyValue] {
        guard let value, value != .null else { return [] }
        var v = value
        if case .string(let text) = value {
            if text.isEmpty { return [] }
            guard let parsed = try? JSONValue.parse(text) else { throw RepriseError.invalid("Invalid value for 'tags': expected a JSON object.") }
            v = parsed
        }
        guard case .object(let o) = v else { throw RepriseError.invalid("Invalid value for 'tags': expected a JSON object.") }
        return try o.members.map { key, value in
            try Validation.validateKey(key, lengthLabel: "Tag key")
            switch value {
            case .string(let s): return KeyValue(key, s)
            case .null: return KeyValue(key, "")
            default: return KeyValue(key, value.pythonDumps)
            }
        }
    }
}

/// One record of an evaluation dataset.
public struct EvalRecord: Sendable, Equatable {
    public var recordID: String
    public var datasetID: String
    public var inputs: JSONObject
    public var outputs: JSONValue?
    public var expectations: JSONObject
    public var tags: JSONObject
    public var source: JSONObject?
    public var createdTime: Int64
    public var lastUpdateTime: Int64
    public var createdBy: String
    public var lastUpdatedBy: String

    public init(
        recordID: String, datasetID: String, inputs: JSONObject, outputs: JSONValue?, expectations: JSONObject, tags: JSONObject,
        source: JSONObject?, createdTime: Int64, lastUpdateTime: Int64, createdBy: String, lastUpdatedBy: String
    ) {
        self.recordID = recordID
        self.datasetID = datasetID
        self.inputs = inputs
        self.outputs = outputs
        self.expectations = expectations
        self.tags = tags
        self.source = source
        self.createdTime = createdTime
        self.lastUpdateTime = lastUpdateTime
        self.createdBy = createdBy
        self.lastUpdatedBy = lastUpdatedBy
    }

    public var json: JSONValue {
        var o = JSONObject()
        o["dataset_record_id"] = .string(recordID)
        o["dataset_id"] = .string(datasetID)
        o["inputs"] = .object(inputs)
        o["expectations"] = .object(expectations)
        o["tags"] = .object(tags)
        if let source {
            o["source"] = .object(source)
            if let type = source["source_type"] { o["source_type"] = type }
            if let id = source["source_data"]?["trace_id"] ?? source["source_data"]?["source_id"] { o["source_id"] = id }
        }
        o["created_time"] = .int(createdTime)
        o["last_update_time"] = .int(lastUpdateTime)
        o["created_by"] = .string(createdBy)
        o["last_updated_by"] = .string(lastUpdatedBy)
        o["outputs"] = outputs ?? .object(JSONObject())
        return .object(o)
    }

    /// The key records are merged by: their inputs, canonical (keys sorted at every level).
    public static func mergeKey(_ inputs: JSONObject) -> String { JSONValue.object(inputs).canonicalJSON }

    /// An incoming record (`merge_records`): inputs are required; the rest is optional.
    public struct Incoming: Sendable {
        public var inputs: JSONObject
        public var outputs: JSONValue?
        public var expectations: JSONObject
        public var tags: JSONObject
        public var source: JSONObject?

        public init(
            inputs: JSONObject, outputs: JSONValue? = nil, expectations: JSONObject = [:], tags: JSONObject = [:], source: JSONObject? = nil
        ) {
            self.inputs = inputs
            self.outputs = outputs
            self.expectations = expectations
            self.tags = tags
            self.source = source
        }
    }

    /// Reads the `records` field: a JSON array (in a string, as the client sends it) of records.
    public static func incoming(_ value: JSONValue?) throws -> [Incoming] {
        guard let value else { throw RepriseError.missing("records") }
        var v = value
        if case .string(let text) = value {
            guard let parsed = try? JSONValue.parse(text) else { throw RepriseError.invalid("Invalid value for 'records': expected a JSON list of records.") }
            v = parsed
        }
        guard case .array(let items) = v else { throw RepriseError.invalid("Invalid value for 'records': expected a JSON list of records.") }
        if items.count > maxRecordsPerCall {
            throw RepriseError.invalid("A merge carries at most \(maxRecordsPerCall) records; it carried \(items.count). Send them in batches.")
        }
        return try items.enumerated().map { i, item in
            guard case .object(let o) = item else { throw RepriseError.invalid("Record \(i) is not a JSON object.") }
            guard case .object(let inputs)? = o["inputs"], !inputs.members.isEmpty else {
                throw RepriseError.invalid("Record \(i) has no 'inputs': each record needs a non-empty inputs object.")
            }
            func object(_ key: String) throws -> JSONObject {
                switch o[key] {
                case nil, .null?: return JSONObject()
                case .object(let x)?: return x
                default: throw RepriseError.invalid("Record \(i): '\(key)' must be a JSON object.")
                }
            }
            var source: JSONObject? = nil
            if case .object(let s)? = o["source"] { source = s }
            let outputs = o["outputs"].flatMap { $0 == .null ? nil : $0 }
            return Incoming(inputs: inputs, outputs: outputs, expectations: try object("expectations"), tags: try object("tags"), source: source)
        }
    }

    public static let maxRecordsPerCall = 10_000
}

/// The schema text a dataset's records imply: each field of inputs, outputs and expectations with
/// the type of its value (`string`, `integer`, `float`, `boolean`, `array`, `object`).
public enum EvalSchema {
    public static func describe(_ records: [EvalRecord]) -> String {
        func typeName(_ v: JSONValue) -> String {
            switch v {
            case .string: return "string"
            case .int: return "integer"
            case .double: return "float"
            case .bool: return "boolean"
            case .array: return "array"
            case .object: return "object"
            case .null: return "null"
            }
        }
        func fields(_ objects: [JSONObject]) -> JSONValue {
            var out = JSONObject()
            for o in objects {
                for (k, v) in o.members where out[k] == nil { out[k] = .string(typeName(v)) }
            }
            return .object(out)
        }
        let outputs = records.compactMap { r -> JSONObject? in if case .object(let o)? = r.outputs { return o } else { return nil } }
        return JSONValue.object([
            "inputs": fields(records.map(\.inputs)), "outputs": fields(outputs), "expectations": fields(records.map(\.expectations)),
            "version": "1.0",
        ]).pythonDumps
    }
}

extension JSONValue {
    /// Compact JSON with object keys sorted at every level: equal values, equal text.
    public var canonicalJSON: String {
        switch self {
        case .object(let o):
            let members = o.members.sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
            return "{" + members.map { JSONValue.string($0.0).jsonString + ":" + $0.1.canonicalJSON }.joined(separator: ",") + "}"
        case .array(let items): return "[" + items.map(\.canonicalJSON).joined(separator: ",") + "]"
        default: return jsonString
        }
    }
}

/// `datasets/search`: experiments, filter, order and paging.
public struct EvalDatasetSearchQuery: Sendable {
    public var experimentIDs: [Int64]
    public var filter: [FilterClause]
    public var orderBy: [(column: String, ascending: Bool)]
    public var maxResults: Int
    public var offset: Int

    static func column(_ key: String) -> String? {
        switch key {
        case "name", "created_by", "last_updated_by", "dataset_id", "digest": return key
        case "created_time", "creation_time": return "created_time"
        case "last_update_time", "last_updated_time": return "last_update_time"
        default: return nil
        }
    }

    public init(experimentIDs: [String], filter: String?, orderBy: [String], maxResults: Int?, pageToken: String?) throws {
        self.experimentIDs = try experimentIDs.map { try Validation.validateExperimentID($0) }
        let max = maxResults ?? 1000
        guard max >= 1, max <= 50_000 else { throw RepriseError.invalid("Invalid value \(max) for parameter 'max_results' supplied.") }
        self.maxResults = max
        offset = try PageToken.decode(pageToken)
        self.filter = try FilterParser.parse(filter).map { raw in
            switch raw.entity?.lowercased() {
            case "tag", "tags":
                guard Comparator.string.contains(raw.comparator) || raw.comparator == .isNull || raw.comparator == .isNotNull else {
                    throw RepriseError.invalid("Invalid comparator '\(raw.comparator.rawValue)' for tag '\(raw.key)'.")
                }
                return FilterClause(entity: .tag, key: raw.key, comparator: raw.comparator, value: raw.value)
            case nil, "attribute", "attributes", "dataset":
                guard let column = Self.column(raw.key) else {
                    throw RepriseError.invalid("Invalid attribute '\(raw.key)' in a dataset filter: use name, created_time, last_update_time, created_by, last_updated_by or tags.<key>.")
                }
                if column.hasSuffix("_time") {
                    guard Comparator.numeric.contains(raw.comparator), case .number = raw.value else {
                        throw RepriseError.invalid("Invalid filter on '\(raw.key)': it compares numbers with a number.")
                    }
                } else if !(Comparator.string.contains(raw.comparator) || raw.comparator == .in || raw.comparator == .notIn) {
                    throw RepriseError.invalid("Invalid comparator '\(raw.comparator.rawValue)' for '\(raw.key)'.")
                }
                return FilterClause(entity: .attribute, key: column, comparator: raw.comparator, value: raw.value)
            default:
                throw RepriseError.invalid("Invalid entity '\(raw.entity!)' in a dataset filter.")
            }
        }
        self.orderBy = try orderBy.map { text in
            let (entity, key, ascending) = try FilterParser.parseOrderBy(text)
            guard entity == nil, let column = Self.column(key) else { throw RepriseError.invalid("Invalid order_by clause '\(text)'.") }
            return (column, ascending)
        }
    }
}

/// One version of a registered scorer.
public struct ScorerVersion: Sendable, Equatable {
    public var scorerID: String
    public var experimentID: String
    public var name: String
    public var version: Int64
    /// The client's serialized scorer (JSON text), kept verbatim; never executed here.
    public var serialized: String
    public var creationTime: Int64

    public init(scorerID: String, experimentID: String, name: String, version: Int64, serialized: String, creationTime: Int64) {
        self.scorerID = scorerID
        self.experimentID = experimentID
        self.name = name
        self.version = version
        self.serialized = serialized
        self.creationTime = creationTime
    }

    /// The shape `list`, `versions` and `get` answer with (`register` answers with its own).
    public var json: JSONValue {
        .object([
            "experiment_id": .int(Int64(experimentID) ?? 0), "scorer_name": .string(name), "scorer_version": .int(version),
            "serialized_scorer": .string(serialized), "creation_time": .int(creationTime), "scorer_id": .string(scorerID),
        ])
    }

    public var registeredJSON: JSONValue {
        .object([
            "version": .int(version), "scorer_id": .string(scorerID), "experiment_id": .string(experimentID), "name": .string(name),
            "serialized_scorer": .string(serialized), "creation_time": .int(creationTime),
        ])
    }
}

/// Evaluation datasets and scorers. Every method is atomic and durable once it returns.
public protocol EvaluationStore: Sendable {
    func createEvalDataset(name: String, experimentIDs: [String], tags: [KeyValue], user: String) async throws -> EvalDataset
    func getEvalDataset(id: String) async throws -> EvalDataset
    func deleteEvalDataset(id: String) async throws
    func searchEvalDatasets(_ query: EvalDatasetSearchQuery) async throws -> Page<EvalDataset>
    func setEvalDatasetTags(id: String, tags: [KeyValue], user: String) async throws
    func deleteEvalDatasetTag(id: String, key: String) async throws
    /// Adds records; one with the inputs of a stored record updates it (expectations and tags are
    /// merged key by key; outputs and source replaced when given). Returns (inserted, updated).
    func mergeEvalRecords(datasetID: String, _ records: [EvalRecord.Incoming], user: String) async throws -> (inserted: Int, updated: Int)
    func evalRecords(datasetID: String, offset: Int, limit: Int) async throws -> Page<EvalRecord>
    func deleteEvalRecords(datasetID: String, ids: [String]) async throws -> Int
    func setEvalDatasetExperiments(id: String, add: [String], remove: [String], user: String) async throws -> EvalDataset

    func registerScorer(experimentID: String, name: String, serialized: String) async throws -> ScorerVersion
    /// The latest version of each scorer of the experiment, by name.
    func listScorers(experimentID: String) async throws -> [ScorerVersion]
    func scorerVersions(experimentID: String, name: String) async throws -> [ScorerVersion]
    /// The given version, or the latest.
    func getScorer(experimentID: String, name: String, version: Int64?) async throws -> ScorerVersion
    /// Deletes one version, or every version (and the scorer) when `version` is nil.
    func deleteScorer(experimentID: String, name: String, version: Int64?) async throws
    /// The experiment a dataset is linked to first (permission checks), or nil when it has none.
    func experimentIDs(ofEvalDataset id: String) async throws -> [String]
}
