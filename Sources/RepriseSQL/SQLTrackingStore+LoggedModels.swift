import RepriseCore

extension SQLTrackingStore {
    static let modelColumns =
        "lm.model_id, lm.experiment_id, lm.name, lm.artifact_uri, lm.creation_time, lm.last_updated_time, lm.status, lm.status_message, lm.model_type, lm.source_run_id, lm.lifecycle_stage"

    static func loadModels(_ db: any SQLConnection, ids: [String]) async throws -> [LoggedModel] {
        var out: [LoggedModel] = []
        for id in ids {
            guard let row = try await db.queryOne("SELECT \(modelColumns) FROM logged_models lm WHERE lm.model_id = ?", [.text(id)])
            else { continue }
            let tags = try await db.query("SELECT key, value FROM logged_model_tags WHERE model_id = ? ORDER BY key", [.text(id)])
                .map { KeyValue($0.string(0), $0.string(1)) }
            let params = try await db.query("SELECT key, value FROM logged_model_params WHERE model_id = ? ORDER BY key", [.text(id)])
                .map { KeyValue($0.string(0), $0.string(1)) }
            let metrics = try await db.query(
                "SELECT key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest, run_uuid FROM logged_model_metrics WHERE model_id = ? ORDER BY key, timestamp, step",
                [.text(id)]
            ).map { metric($0, from: 0, runID: $0.string(8)) }
            out.append(
                LoggedModel(
                    modelID: row.string(0), experimentID: row.string(1), name: row.string(2), creationTime: row.int(4),
                    lastUpdatedTime: row.int(5), artifactURI: row.string(3),
                    status: LoggedModelStatus(rawValue: row.string(6)) ?? .unspecified, statusMessage: row.optionalString(7),
                    modelType: row.string(8), sourceRunID: row.optionalString(9),
                    lifecycleStage: LifecycleStage(rawValue: row.string(10)) ?? .active, tags: tags, params: params,
                    metrics: metrics))
        }
        return out
    }

    static func requireModel(_ db: any SQLConnection, _ id: String, allowDeleted: Bool = false) async throws -> LoggedModel {
        guard let m = try await loadModels(db, ids: [id]).first, allowDeleted || m.lifecycleStage == .active else {
            throw RepriseError.notFound("Logged model with ID '\(id)' not found.")
        }
        return m
    }

    public func createLoggedModel(_ input: CreateLoggedModelInput) async throws -> LoggedModel {
        let name = input.name.flatMap { $0.isEmpty ? nil : $0 } ?? RunNames.random()
        try Validation.validateLoggedModelName(name)
        _ = try Validation.validateExperimentID(input.experimentID)
        for t in input.tags { try Validation.validateKey(t.key, lengthLabel: "Tag key") }
        for p in input.params { try Validation.validateKey(p.key, lengthLabel: "Param key") }
        let id = "m-" + Self.newID()
        return try await write { db, audit in
            let exp = try await Self.requireActiveExperiment(db, id: input.experimentID)
            try await audit.record(
                db, "logged_model.create", "logged_model", id,
                ["experiment_id": .string(input.experimentID), "name": .string(name), "source_run_id": .string(input.sourceRunID ?? "")])
            // The source run is recorded as named; MLflow 3.17 does not require it to exist.
            let base = exp.artifactLocation.hasSuffix("/") ? String(exp.artifactLocation.dropLast()) : exp.artifactLocation
            let now = Self.now()
            try await db.execute(
                "INSERT INTO logged_models (model_id, experiment_id, name, artifact_uri, creation_time, last_updated_time, status, status_message, model_type, source_run_id, lifecycle_stage) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, 'active')",
                [.text(id), .int(Int64(input.experimentID)!), .text(name), .text("\(base)/models/\(id)/artifacts"),
                 .int(now), .int(now), .text(LoggedModelStatus.pending.rawValue), .text(input.modelType ?? ""),
                 SQLValue(input.sourceRunID.flatMap { $0.isEmpty ? nil : $0 })])
            for t in input.tags {
                try await db.execute(
                    "INSERT INTO logged_model_tags (model_id, key, value) VALUES (?, ?, ?) ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
                    [.text(id), .text(t.key), .text(t.value)])
            }
            for p in input.params {
                try await db.execute(
                    "INSERT INTO logged_model_params (model_id, key, value) VALUES (?, ?, ?) ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
                    [.text(id), .text(p.key), .text(p.value)])
            }
            return try await Self.requireModel(db, id)
        }
    }

    public func getLoggedModel(id: String, allowDeleted: Bool) async throws -> LoggedModel {
        try await read { db in try await Self.requireModel(db, id, allowDeleted: allowDeleted) }
    }

    public func finalizeLoggedModel(id: String, status: LoggedModelStatus) async throws -> LoggedModel {
        try await write { db, audit in
            _ = try await Self.requireModel(db, id)
            try await audit.record(db, "logged_model.finalize", "logged_model", id, ["status": .string(status.rawValue)])
            try await db.execute(
                "UPDATE logged_models SET status = ?, last_updated_time = ? WHERE model_id = ?",
                [.text(status.rawValue), .int(Self.now()), .text(id)])
            return try await Self.requireModel(db, id)
        }
    }

    public func deleteLoggedModel(id: String) async throws {
        try await write { db, audit in
            _ = try await Self.requireModel(db, id)
            try await audit.record(db, "logged_model.delete", "logged_model", id)
            try await db.execute(
                "UPDATE logged_models SET lifecycle_stage = 'deleted', last_updated_time = ? WHERE model_id = ?",
                [.int(Self.now()), .text(id)])
        }
    }

    public func setLoggedModelTags(id: String, tags: [KeyValue]) async throws {
        for t in tags { try Validation.validateKey(t.key, lengthLabel: "Tag key") }
        try await write { db, audit in
            _ = try await Self.requireModel(db, id)
            try await audit.record(db, "logged_model.set_tags", "logged_model", id, ["tags": .array(tags.map { .string($0.key) })])
            for t in tags {
                try await db.execute(
                    "INSERT INTO logged_model_tags (model_id, key, value) VALUES (?, ?, ?) ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
                    [.text(id), .text(t.key), .text(t.value)])
            }
            try await db.execute("UPDATE logged_models SET last_updated_time = ? WHERE model_id = ?", [.int(Self.now()), .text(id)])
        }
    }

    public func deleteLoggedModelTag(id: String, key: String) async throws {
        try await write { db, audit in
            _ = try await Self.requireModel(db, id)
            try await audit.record(db, "logged_model.delete_tag", "logged_model", id, ["key": .string(key)])
            let n = try await db.execute("DELETE FROM logged_model_tags WHERE model_id = ? AND key = ?", [.text(id), .text(key)])
            if n == 0 { throw RepriseError.notFound("No tag with key '\(key)' found for model with ID '\(id)'.") }
        }
    }

    public func logLoggedModelParams(id: String, params: [KeyValue]) async throws {
        for p in params { try Validation.validateKey(p.key, lengthLabel: "Param key") }
        try await write { db, audit in
            _ = try await Self.requireModel(db, id)
            try await audit.record(db, "logged_model.log_params", "logged_model", id, ["params": .array(params.map { .string($0.key) })])
            for p in params {
                try await db.execute(
                    "INSERT INTO logged_model_params (model_id, key, value) VALUES (?, ?, ?) ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
                    [.text(id), .text(p.key), .text(p.value)])
            }
        }
    }

    public func searchLoggedModels(_ query: LoggedModelSearchQuery) async throws -> Page<LoggedModel> {
        if query.experimentIDs.isEmpty { return Page(items: [], nextOffset: nil) }
        var joins = ""
        var joinBinds: [SQLValue] = []
        var order: [String] = []
        for (n, t) in query.orderBy.enumerated() {
            let dir = t.ascending ? "ASC" : "DESC"
            if t.entity == .metric {
                let a = "o\(n)"
                joins += " LEFT JOIN (SELECT model_id, MAX(value) AS value FROM logged_model_metrics WHERE key = ? GROUP BY model_id) \(a) ON \(a).model_id = lm.model_id"
                joinBinds.append(.text(t.key))
                order += ["CASE WHEN \(a).model_id IS NULL THEN 1 ELSE 0 END", "\(a).value \(dir)"]
            } else {
                order.append("lm.\(t.key) \(dir)")
            }
        }
        order += ["lm.creation_time DESC", "lm.model_id ASC"]
        var sql = "SELECT lm.model_id FROM logged_models lm\(joins) WHERE lm.lifecycle_stage = 'active' AND lm.experiment_id IN (\(placeholders(query.experimentIDs.count)))"
        var binds = joinBinds + query.experimentIDs.map(SQLValue.int)
        if !query.datasets.isEmpty {
            // A dataset is its name and digest; an entry without a digest names none (3.17.2).
            let named = query.datasets.compactMap { d in d.digest.map { (d.name, $0) } }
            if named.isEmpty { return Page(items: [], nextOffset: nil) }
            let any = Array(repeating: "(d.dataset_name = ? AND d.dataset_digest = ?)", count: named.count).joined(separator: " OR ")
            sql += " AND EXISTS (SELECT 1 FROM logged_model_metrics d WHERE d.model_id = lm.model_id AND (\(any)))"
            for (name, digest) in named { binds += [.text(name), .text(digest)] }
        }
        for c in query.filter {
            switch c.entity {
            case .metric:
                let (cmp, b) = metricComparison(alias: "m", c)
                sql += " AND EXISTS (SELECT 1 FROM logged_model_metrics m WHERE m.model_id = lm.model_id AND m.key = ? AND \(cmp))"
                binds += [.text(c.key)] + b
            case .param:
                let (f, b) = tagLikeClause(table: "logged_model_params", idColumn: "model_id", outer: "lm.model_id", c)
                sql += " AND " + f
                binds += b
            case .tag:
                let (f, b) = tagLikeClause(table: "logged_model_tags", idColumn: "model_id", outer: "lm.model_id", c)
                sql += " AND " + f
                binds += b
            default:
                if c.key.hasSuffix("_time") {
                    guard case .number(let d, _) = c.value else { continue }
                    sql += " AND lm.\(c.key) \(c.comparator.rawValue) ?"
                    binds.append(.double(d))
                } else {
                    let (f, b) = stringComparison("lm.\(c.key)", c)
                    sql += " AND " + f
                    binds += b
                }
            }
        }
        return try await page(
            sql: sql, binds: binds, order: order, maxResults: query.maxResults, offset: query.offset,
            load: Self.loadModels)
    }
}
