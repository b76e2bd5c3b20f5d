/// Checked search requests for each searchable entity: the raw grammar plus each entity's rules.
public struct RunSearchQuery: Sendable {
    public var experimentIDs: [Int64]
    public var filter: [FilterClause]
    public var orderBy: [OrderTerm]
    public var viewType: ViewType
    public var maxResults: Int
    public var offset: Int

    public static let maxResultsLimit = 50000

    static let stringAttributes = ["run_id", "run_name", "status", "user_id", "artifact_uri", "lifecycle_stage"]
    static let numericAttributes = ["start_time", "end_time"]

    /// Canonical name for a run attribute, or nil if unknown.
    static func canonicalAttribute(_ key: String) -> String? {
        switch key {
        case "run name", "Run name", "Run Name", "run_name", "runName": return "run_name"
        case "created", "Created", "start_time": return "start_time"
        case "run_uuid", "run_id": return "run_id"
        default:
            return stringAttributes.contains(key) || numericAttributes.contains(key) ? key : nil
        }
    }

    static func entity(_ word: String?) throws -> FilterEntity {
        guard let word else { return .attribute }
        switch word {
        case "metric", "metrics": return .metric
        case "param", "params", "parameter", "parameters": return .param
        case "tag", "tags": return .tag
        case "attribute", "attributes", "attr", "run": return .attribute
        case "dataset", "datasets": return .dataset
        default:
            throw RepriseError.invalid(
                "Invalid entity type '\(word)'. Valid values are ['metric', 'parameter', 'tag', 'attribute', 'dataset']")
        }
    }

    public init(
        experimentIDs: [String], filter: String?, orderBy: [String], viewType: ViewType, maxResults: Int?,
        pageToken: String?
    ) throws {
        self.experimentIDs = try experimentIDs.map { try Validation.validateExperimentID($0) }
        let max = maxResults ?? 1000
        if max < 1 || max > RunSearchQuery.maxResultsLimit {
            throw RepriseError.invalid(
                "Invalid value \(max) for parameter 'max_results' supplied. It must be at most \(RunSearchQuery.maxResultsLimit), but got value \(max)"
            )
        }
        self.maxResults = max
        self.viewType = viewType
        self.offset = try PageToken.decode(pageToken)
        self.filter = try FilterParser.parse(filter).map(RunSearchQuery.check)
        var seen = Set<String>()
        self.orderBy = try orderBy.map { text in
            let (e, k, asc) = try FilterParser.parseOrderBy(text)
            var entity = try RunSearchQuery.entity(e)
            var key = k
            if entity == .dataset { throw RepriseError.invalid("Invalid order_by entity: dataset") }
            if entity == .attribute {
                guard let c = RunSearchQuery.canonicalAttribute(k) ?? (k == "experiment_id" ? k : nil) else {
                    throw RepriseError.invalid(
                        "Invalid attribute key '\(k)' specified. Valid keys are '\(RunSearchQuery.stringAttributes + RunSearchQuery.numericAttributes)'"
                    )
                }
                key = c
                entity = .attribute
            }
            let id = "\(entity.rawValue).\(key)"
            if !seen.insert(id).inserted { throw RepriseError.invalid("`order_by` contains duplicate fields: \(orderBy)") }
            return OrderTerm(entity: entity, key: key, ascending: asc)
        }
    }

    static func check(_ raw: RawClause) throws -> FilterClause {
        let entity = try entity(raw.entity)
        var key = raw.key
        let c = raw.comparator
        func requireComparator(_ allowed: Set<Comparator>, _ names: String) throws {
            guard allowed.contains(c) else {
                throw RepriseError.invalid("Invalid comparator '\(c.rawValue)' not one of '\(names)'")
            }
        }
        switch entity {
        case .metric:
            try requireComparator(Comparator.numeric, "['>', '>=', '!=', '=', '<', '<=']")
            guard case .number = raw.value else {
                throw RepriseError.invalid("Expected numeric value type for metric. Found '\(raw.value.display)'")
            }
        case .param, .tag:
            try requireComparator(
                Comparator.string.union([.isNull, .isNotNull]), "['!=', '=', 'LIKE', 'ILIKE', 'IS NULL', 'IS NOT NULL']")
            if c != .isNull && c != .isNotNull {
                guard raw.quoted, case .string = raw.value else { throw unquoted(raw) }
            }
        case .attribute:
            guard let canon = canonicalAttribute(key) else {
                throw RepriseError.invalid(
                    "Invalid attribute key '\(key)' specified. Valid keys are '\(stringAttributes + numericAttributes)'")
            }
            key = canon
            if numericAttributes.contains(key) {
                try requireComparator(Comparator.numeric, "['>', '>=', '!=', '=', '<', '<=']")
                guard case .number = raw.value else {
                    throw RepriseError.invalid(
                        "Expected numeric value type for numeric attribute: \(key). Found \(raw.value.display)")
                }
            } else {
                var allowed = Comparator.string
                if key == "run_id" { allowed.formUnion([.in, .notIn]) }
                try requireComparator(allowed, key == "run_id" ? "['!=', '=', 'LIKE', 'ILIKE', 'IN', 'NOT IN']" : "['!=', '=', 'LIKE', 'ILIKE']")
                try requireQuoted(raw, entity: "attribute")
            }
        case .dataset:
            guard ["name", "digest", "context"].contains(key) else {
                throw RepriseError.invalid("Invalid dataset key '\(key)' specified. Valid keys are '['name', 'digest', 'context']'")
            }
            try requireComparator(Comparator.string.union([.in, .notIn]), "['!=', '=', 'LIKE', 'ILIKE', 'IN', 'NOT IN']")
            try requireQuoted(raw, entity: "dataset")
        }
        return FilterClause(entity: entity, key: key, comparator: c, value: raw.value)
    }

    static func unquoted(_ raw: RawClause) -> RepriseError {
        RepriseError.invalid(
            "Parameter value is either not quoted or unidentified quote types used for string value \(raw.value.display). Use either single or double quotes."
        )
    }

    static func requireQuoted(_ raw: RawClause, entity: String) throws {
        if raw.comparator == .in || raw.comparator == .notIn {
            guard case .list = raw.value else {
                throw RepriseError.invalid("Expected a list of quoted strings for '\(raw.comparator.rawValue)', got \(raw.value.display)")
            }
        } else {
            guard raw.quoted, case .string = raw.value else { throw unquoted(raw) }
        }
    }
}

public struct ExperimentSearchQuery: Sendable {
    public var filter: [FilterClause]
    public var orderBy: [OrderTerm]
    public var viewType: ViewType
    public var maxResults: Int
    public var offset: Int

    public init(filter: String?, orderBy: [String], viewType: ViewType, maxResults: Int?, pageToken: String?) throws {
        let max = maxResults ?? 0
        if max < 1 {
            throw RepriseError.invalid(
                "Invalid value \(max) for parameter 'max_results' supplied. It must be a positive integer")
        }
        if max > 50000 {
            throw RepriseError.invalid(
                "Invalid value \(max) for parameter 'max_results' supplied. It must be at most 50000, but got value \(max)")
        }
        self.maxResults = max
        self.viewType = viewType
        self.offset = try PageToken.decode(pageToken)
        self.filter = try FilterParser.parse(filter).map { raw in
            let entity: FilterEntity
            switch raw.entity {
            case nil, "attribute": entity = .attribute
            case "tag", "tags": entity = .tag
            case let other?:
                throw RepriseError.invalid("Invalid entity type '\(other)'. Valid values are ['tag', 'attribute']")
            }
            let c = raw.comparator
            if entity == .tag {
                guard Comparator.string.union([.isNull, .isNotNull]).contains(c) else {
                    throw RepriseError.invalid("Invalid comparator '\(c.rawValue)' not one of '['!=', '=', 'LIKE', 'ILIKE', 'IS NULL', 'IS NOT NULL']'")
                }
                if c != .isNull && c != .isNotNull { try RunSearchQuery.requireQuoted(raw, entity: "tag") }
                return FilterClause(entity: .tag, key: raw.key, comparator: c, value: raw.value)
            }
            switch raw.key {
            case "name", "experiment_id":
                var allowed = Comparator.string
                if raw.key == "experiment_id" { allowed.formUnion([.in, .notIn]) }
                guard allowed.contains(c) else {
                    throw RepriseError.invalid("Invalid comparator '\(c.rawValue)' not one of '\(allowed.map(\.rawValue).sorted())'")
                }
                try RunSearchQuery.requireQuoted(raw, entity: "attribute")
            case "creation_time", "last_update_time":
                guard Comparator.numeric.contains(c) else {
                    throw RepriseError.invalid("Invalid comparator '\(c.rawValue)' not one of '['>', '>=', '!=', '=', '<', '<=']'")
                }
                guard case .number = raw.value else {
                    throw RepriseError.invalid("Expected numeric value type for numeric attribute: \(raw.key). Found \(raw.value.display)")
                }
            default:
                throw RepriseError.invalid(
                    "Invalid attribute key '\(raw.key)' specified. Valid keys are '['name', 'creation_time', 'last_update_time', 'experiment_id']'"
                )
            }
            return FilterClause(entity: .attribute, key: raw.key, comparator: c, value: raw.value)
        }
        var seen = Set<String>()
        self.orderBy = try orderBy.map { text in
            let (e, k, asc) = try FilterParser.parseOrderBy(text)
            guard e == nil || e == "attribute", ["name", "experiment_id", "creation_time", "last_update_time"].contains(k) else {
                throw RepriseError.invalid("Invalid order_by clause '\(text)'. Only attributes 'name', 'experiment_id', 'creation_time' and 'last_update_time' can be ordered by.")
            }
            if !seen.insert(k).inserted { throw RepriseError.invalid("`order_by` contains duplicate fields: \(orderBy)") }
            return OrderTerm(entity: .attribute, key: k, ascending: asc)
        }
    }
}

public struct LoggedModelSearchQuery: Sendable {
    public var experimentIDs: [Int64]
    /// Only models with a metric logged on one of these datasets (name and digest; an entry without
    /// a digest names no dataset, as in 3.17.2).
    public var datasets: [(name: String, digest: String?)] = []
    public var filter: [FilterClause]
    public var orderBy: [OrderTerm]
    public var maxResults: Int
    public var offset: Int

    static func canonical(_ key: String) -> String? {
        switch key {
        case "name", "model_id", "model_type", "status", "source_run_id": return key
        case "creation_time", "creation_timestamp", "creation_timestamp_ms": return "creation_time"
        case "last_updated_time", "last_updated_timestamp", "last_updated_timestamp_ms": return "last_updated_time"
        default: return nil
        }
    }

    public init(
        experimentIDs: [String], filter: String?, orderBy: [(field: String, ascending: Bool)], maxResults: Int?,
        pageToken: String?
    ) throws {
        self.experimentIDs = try experimentIDs.map { try Validation.validateExperimentID($0) }
        let max = maxResults ?? 50
        if max < 1 || max > 50000 {
            throw RepriseError.invalid("Invalid value \(max) for parameter 'max_results' supplied.")
        }
        self.maxResults = max
        self.offset = try LoggedModelSearchQuery.decodeToken(pageToken)
        self.filter = try FilterParser.parse(filter).map { raw in
            let entity = try RunSearchQuery.entity(raw.entity)
            switch entity {
            case .metric:
                guard Comparator.numeric.contains(raw.comparator), case .number = raw.value else {
                    throw RepriseError.invalid("Invalid metric clause in filter: '\(raw.key)'")
                }
                return FilterClause(entity: .metric, key: raw.key, comparator: raw.comparator, value: raw.value)
            case .param, .tag:
                guard Comparator.string.contains(raw.comparator) else {
                    throw RepriseError.invalid("Invalid comparator '\(raw.comparator.rawValue)' not one of '['!=', '=', 'LIKE', 'ILIKE']'")
                }
                try RunSearchQuery.requireQuoted(raw, entity: entity.rawValue)
                return FilterClause(entity: entity, key: raw.key, comparator: raw.comparator, value: raw.value)
            case .attribute:
                guard let key = LoggedModelSearchQuery.canonical(raw.key) else {
                    throw RepriseError.invalid("Invalid attribute key '\(raw.key)' specified.")
                }
                if key.hasSuffix("_time") {
                    guard Comparator.numeric.contains(raw.comparator), case .number = raw.value else {
                        throw RepriseError.invalid("Expected numeric value type for numeric attribute: \(key).")
                    }
                } else {
                    guard Comparator.string.union([.in, .notIn]).contains(raw.comparator) else {
                        throw RepriseError.invalid("Invalid comparator '\(raw.comparator.rawValue)' for attribute '\(key)'")
                    }
                    try RunSearchQuery.requireQuoted(raw, entity: "attribute")
                }
                return FilterClause(entity: .attribute, key: key, comparator: raw.comparator, value: raw.value)
            case .dataset:
                throw RepriseError.invalid("Invalid entity type 'dataset' in a logged model filter")
            }
        }
        self.orderBy = try orderBy.map { term in
            if term.field.hasPrefix("metrics.") {
                return OrderTerm(entity: .metric, key: String(term.field.dropFirst(8)), ascending: term.ascending)
            }
            guard let key = LoggedModelSearchQuery.canonical(term.field) else {
                throw RepriseError.invalid("Invalid order by field name: \(term.field)")
            }
            return OrderTerm(entity: .attribute, key: key, ascending: term.ascending)
        }
    }

    /// Logged-model tokens carry more than the offset; only the offset matters for paging here.
    static func decodeToken(_ token: String?) throws -> Int {
        guard let token, !token.isEmpty else { return 0 }
        return try PageToken.decode(token)
    }
}
