/// Model stages (strings on the wire, not an enum).
public enum ModelStage: String, Sendable, CaseIterable {
    case none = "None", staging = "Staging", production = "Production", archived = "Archived"

    /// Case-insensitive, as the reference accepts them.
    public init(wire: String) throws {
        guard let s = ModelStage.allCases.first(where: { $0.rawValue.lowercased() == wire.lowercased() }) else {
            throw RepriseError.invalid(
                "Invalid Model Version stage: \(wire). Value must be one of None, Staging, Production, Archived.")
        }
        self = s
    }

    /// The internal stage of a deleted version: it never appears through the API.
    public static let deletedInternal = "Deleted_Internal"
}

public struct ModelVersion: Sendable, Equatable {
    public var name: String
    public var version: Int64
    public var creationTime: Int64
    public var lastUpdatedTime: Int64
    public var description: String
    public var userID: String
    public var currentStage: String
    public var source: String
    public var runID: String
    public var runLink: String
    public var status: String
    public var statusMessage: String
    public var modelID: String
    public var storageLocation: String
    public var tags: [KeyValue]
    public var aliases: [String]

    public init(
        name: String, version: Int64, creationTime: Int64, lastUpdatedTime: Int64, description: String, userID: String,
        currentStage: String, source: String, runID: String, runLink: String, status: String, statusMessage: String,
        modelID: String, storageLocation: String, tags: [KeyValue], aliases: [String]
    ) {
        self.name = name
        self.version = version
        self.creationTime = creationTime
        self.lastUpdatedTime = lastUpdatedTime
        self.description = description
        self.userID = userID
        self.currentStage = currentStage
        self.source = source
        self.runID = runID
        self.runLink = runLink
        self.status = status
        self.statusMessage = statusMessage
        self.modelID = modelID
        self.storageLocation = storageLocation
        self.tags = tags
        self.aliases = aliases
    }

    /// - Parameter withAliases: `latest_versions` entries carry no aliases.
    public func json(withAliases: Bool = true) -> JSONValue {
        var o = JSONObject([
            ("name", .string(name)), ("version", .string(String(version))), ("creation_timestamp", .int(creationTime)),
            ("last_updated_timestamp", .int(lastUpdatedTime)), ("current_stage", .string(currentStage)),
            ("description", .string(description)), ("source", .string(source)), ("run_id", .string(runID)),
            ("status", .string(status)), ("run_link", .string(runLink)),
        ])
        if !userID.isEmpty { o["user_id"] = .string(userID) }
        if !statusMessage.isEmpty { o["status_message"] = .string(statusMessage) }
        if !modelID.isEmpty { o["model_id"] = .string(modelID) }
        if !tags.isEmpty { o["tags"] = .array(tags.map(\.json)) }
        if withAliases && !aliases.isEmpty { o["aliases"] = .array(aliases.map(JSONValue.string)) }
        return .object(o)
    }
}

public struct RegisteredModel: Sendable, Equatable {
    public var name: String
    public var creationTime: Int64
    public var lastUpdatedTime: Int64
    public var description: String
    public var userID: String
    public var latestVersions: [ModelVersion]
    public var tags: [KeyValue]
    /// (alias, version)
    public var aliases: [(String, Int64)]

    public init(
        name: String, creationTime: Int64, lastUpdatedTime: Int64, description: String, userID: String,
        latestVersions: [ModelVersion], tags: [KeyValue], aliases: [(String, Int64)]
    ) {
        self.name = name
        self.creationTime = creationTime
        self.lastUpdatedTime = lastUpdatedTime
        self.description = description
        self.userID = userID
        self.latestVersions = latestVersions
        self.tags = tags
        self.aliases = aliases
    }

    public static func == (a: RegisteredModel, b: RegisteredModel) -> Bool {
        a.name == b.name && a.creationTime == b.creationTime && a.lastUpdatedTime == b.lastUpdatedTime
            && a.description == b.description && a.latestVersions == b.latestVersions && a.tags == b.tags
            && a.aliases.map(\.0) == b.aliases.map(\.0) && a.aliases.map(\.1) == b.aliases.map(\.1)
    }

    public var json: JSONValue {
        var o = JSONObject([
            ("name", .string(name)), ("creation_timestamp", .int(creationTime)),
            ("last_updated_timestamp", .int(lastUpdatedTime)), ("description", .string(description)),
        ])
        if !userID.isEmpty { o["user_id"] = .string(userID) }
        if !latestVersions.isEmpty { o["latest_versions"] = .array(latestVersions.map { $0.json(withAliases: false) }) }
        if !tags.isEmpty { o["tags"] = .array(tags.map(\.json)) }
        if !aliases.isEmpty {
            o["aliases"] = .array(aliases.map { ["alias": .string($0.0), "version": .string(String($0.1))] })
        }
        return .object(o)
    }
}

public struct CreateModelVersionInput: Sendable {
    public var name: String
    public var source: String
    public var runID: String?
    public var tags: [KeyValue]
    public var runLink: String?
    public var description: String?
    public var modelID: String?
    public var userID: String

    public init(
        name: String, source: String, runID: String?, tags: [KeyValue], runLink: String?, description: String?,
        modelID: String?, userID: String = ""
    ) {
        self.name = name
        self.source = source
        self.runID = runID
        self.tags = tags
        self.runLink = runLink
        self.description = description
        self.modelID = modelID
        self.userID = userID
    }
}

/// Registry name and alias rules (spec §6.1, §2.6).
extension Validation {
    public static func validateRegisteredModelName(_ name: String?) throws -> String {
        guard let name, !name.trimmingCharacters(in: .whitespaces).isEmpty else { throw RepriseError.missing("name") }
        try rejectControlCharacters(name, field: "name")
        if name.utf8.contains(UInt8(ascii: "/")) || name.utf8.contains(UInt8(ascii: ":")) {
            throw RepriseError.invalid("Invalid model name '\(name)'. Names cannot contain '/' or ':'.")
        }
        if normpath(name) != name {
            throw RepriseError.invalid("Invalid name: '\(name)'. Names must not resolve to other names as paths.")
        }
        return name
    }

    public static func validateAlias(_ alias: String) throws {
        if alias.isEmpty { throw RepriseError.missing("alias") }
        if alias.count > 255 {
            throw RepriseError.invalid("'alias' exceeds the maximum length of 255 characters")
        }
        if !alias.allSatisfy({ isWord($0) || $0 == "-" }) {
            throw RepriseError.invalid(
                "Invalid alias name: '\(alias)'. Aliases can only contain alphanumerics, underscores and dashes.")
        }
        if alias.lowercased() == "latest" {
            throw RepriseError.invalid("'latest' alias name (case insensitive) is reserved.")
        }
        if let first = alias.first, first == "v" || first == "V", alias.count > 1, alias.dropFirst().allSatisfy(\.isNumber) {
            throw RepriseError.invalid(
                "Version alias name '\(alias)' is reserved. Alias names of the form 'v<number>' are reserved for versions.")
        }
    }

    /// `version` as an integer, with the reference's message.
    public static func validateVersion(_ version: String) throws -> Int64 {
        guard let v = Int64(version) else {
            throw RepriseError.invalid("Parameter 'version' must be an integer, got '\(version)'.")
        }
        return v
    }

    public static func validateRegistryTag(_ tag: KeyValue) throws {
        try validateKey(tag.key, lengthLabel: "key")
        if tag.value.count > 100_000 {
            throw RepriseError.invalid("'value' exceeds the maximum length of 100000 characters")
        }
    }
}

/// Prompts live in the registry tables, marked by this tag; searches hide them unless a filter asks
/// for them. The client appends ``tag.`mlflow.prompt.is_prompt` != 'true'`` itself, which is the
/// default anyway.
public enum PromptFilter {
    public static let tagKey = "mlflow.prompt.is_prompt"

    /// A registry tag clause: string comparators on a quoted value.
    static func tagClause(_ raw: RawClause) throws -> FilterClause {
        guard Comparator.string.contains(raw.comparator) else {
            throw RepriseError.invalid("Invalid comparator '\(raw.comparator.rawValue)' not one of '['!=', '=', 'LIKE', 'ILIKE']'")
        }
        try RunSearchQuery.requireQuoted(raw, entity: "tag")
        return FilterClause(entity: .tag, key: raw.key, comparator: raw.comparator, value: raw.value)
    }

    /// Drops the client's own exclusion clause; tells whether the remaining filter mentions prompts.
    public static func split(_ clauses: [FilterClause]) -> (clauses: [FilterClause], includePrompts: Bool) {
        let kept = clauses.filter { c in
            !(c.entity == .tag && c.key == tagKey && c.comparator == .ne && c.value == .string("true"))
        }
        return (kept, kept.contains { $0.entity == .tag && $0.key == tagKey })
    }
}

public struct RegisteredModelSearchQuery: Sendable {
    public var filter: [FilterClause]
    public var orderBy: [OrderTerm]
    public var maxResults: Int
    public var offset: Int

    public init(filter: String?, orderBy: [String], maxResults: Int?, pageToken: String?) throws {
        let max = maxResults ?? 100
        if max < 1 || max > 1000 {
            throw RepriseError.invalid(
                "Invalid value for request parameter max_results. It must be at most 1000, but got value \(max)")
        }
        self.maxResults = max
        self.offset = try PageToken.decode(pageToken)
        self.filter = try FilterParser.parse(filter).map { raw in
            switch raw.entity {
            case "tag", "tags":
                return try PromptFilter.tagClause(raw)
            case nil, "attribute", "attributes":
                guard raw.key == "name" else { throw RepriseError.invalid("Invalid attribute key '\(raw.key)' specified.") }
                guard Comparator.string.union([.in, .notIn]).contains(raw.comparator) else {
                    throw RepriseError.invalid("Invalid comparator '\(raw.comparator.rawValue)' not one of '['!=', '=', 'LIKE', 'ILIKE', 'IN', 'NOT IN']'")
                }
                try RunSearchQuery.requireQuoted(raw, entity: "attribute")
                return FilterClause(entity: .attribute, key: "name", comparator: raw.comparator, value: raw.value)
            case let other?:
                throw RepriseError.invalid("Invalid entity type '\(other)'. Valid values are ['tag', 'attribute']")
            }
        }
        var seen = Set<String>()
        self.orderBy = try orderBy.map { text in
            let (e, k, asc) = try FilterParser.parseOrderBy(text)
            guard e == nil || e == "attribute" else { throw RepriseError.invalid("Invalid order_by clause '\(text)'.") }
            let key: String
            switch k {
            case "name": key = "name"
            case "timestamp", "last_updated_timestamp": key = "last_updated_time"
            default: throw RepriseError.invalid("Invalid order by key '\(k)' specified. Valid keys are 'name', 'timestamp', 'last_updated_timestamp'")
            }
            if !seen.insert(key).inserted { throw RepriseError.invalid("`order_by` contains duplicate fields: \(orderBy)") }
            return OrderTerm(entity: .attribute, key: key, ascending: asc)
        }
    }
}

public struct ModelVersionSearchQuery: Sendable {
    public var filter: [FilterClause]
    public var orderBy: [OrderTerm]
    public var maxResults: Int
    public var offset: Int

    public init(filter: String?, orderBy: [String], maxResults: Int?, pageToken: String?) throws {
        let max = maxResults ?? 200_000
        if max < 1 || max > 200_000 {
            throw RepriseError.invalid(
                "Invalid value for request parameter max_results. It must be at most 200000, but got value \(max)")
        }
        self.maxResults = max
        self.offset = try PageToken.decode(pageToken)
        self.filter = try FilterParser.parse(filter).map { raw in
            switch raw.entity {
            case "tag", "tags":
                return try PromptFilter.tagClause(raw)
            case nil, "attribute", "attributes":
                switch raw.key {
                case "name", "run_id", "source_path":
                    var allowed = Comparator.string
                    if raw.key != "source_path" { allowed.formUnion([.in, .notIn]) }
                    guard allowed.contains(raw.comparator) else {
                        throw RepriseError.invalid("Invalid comparator '\(raw.comparator.rawValue)' for attribute '\(raw.key)'")
                    }
                    try RunSearchQuery.requireQuoted(raw, entity: "attribute")
                case "version_number":
                    guard Comparator.numeric.contains(raw.comparator), case .number = raw.value else {
                        throw RepriseError.invalid("Expected an integer value for version_number with a numeric comparator.")
                    }
                default:
                    throw RepriseError.invalid("Invalid attribute key '\(raw.key)' specified.")
                }
                return FilterClause(entity: .attribute, key: raw.key, comparator: raw.comparator, value: raw.value)
            case let other?:
                throw RepriseError.invalid("Invalid entity type '\(other)'. Valid values are ['tag', 'attribute']")
            }
        }
        var seen = Set<String>()
        self.orderBy = try orderBy.map { text in
            let (e, k, asc) = try FilterParser.parseOrderBy(text)
            guard e == nil || e == "attribute",
                ["name", "version_number", "creation_timestamp", "last_updated_timestamp"].contains(k)
            else { throw RepriseError.invalid("Invalid order by key '\(k)' specified.") }
            if !seen.insert(k).inserted { throw RepriseError.invalid("`order_by` contains duplicate fields: \(orderBy)") }
            return OrderTerm(entity: .attribute, key: k, ascending: asc)
        }
    }
}

/// The MLflow-compatible model registry.
public protocol RegistryStore: Sendable {
    func createRegisteredModel(name: String, tags: [KeyValue], description: String?, userID: String) async throws -> RegisteredModel
    func getRegisteredModel(name: String) async throws -> RegisteredModel
    func renameRegisteredModel(name: String, newName: String) async throws -> RegisteredModel
    func updateRegisteredModel(name: String, description: String) async throws -> RegisteredModel
    func deleteRegisteredModel(name: String) async throws
    func searchRegisteredModels(_ query: RegisteredModelSearchQuery) async throws -> Page<RegisteredModel>
    func setRegisteredModelTag(name: String, tag: KeyValue) async throws
    func deleteRegisteredModelTag(name: String, key: String) async throws
    func latestVersions(name: String, stages: [ModelStage]) async throws -> [ModelVersion]

    func createModelVersion(_ input: CreateModelVersionInput) async throws -> ModelVersion
    func getModelVersion(name: String, version: Int64) async throws -> ModelVersion
    func updateModelVersion(name: String, version: Int64, description: String) async throws -> ModelVersion
    func transitionStage(name: String, version: Int64, stage: ModelStage, archiveExisting: Bool) async throws -> ModelVersion
    func deleteModelVersion(name: String, version: Int64) async throws
    func searchModelVersions(_ query: ModelVersionSearchQuery) async throws -> Page<ModelVersion>
    func setModelVersionTag(name: String, version: Int64, tag: KeyValue) async throws
    func deleteModelVersionTag(name: String, version: Int64, key: String) async throws
    func downloadURI(name: String, version: Int64) async throws -> String

    func setAlias(name: String, alias: String, version: Int64) async throws
    func deleteAlias(name: String, alias: String) async throws
    func versionByAlias(name: String, alias: String) async throws -> ModelVersion
}
