import Crypto
import Foundation
import RepriseCore

/// Evaluation datasets (records merged by their inputs) and the scorer registry.
extension SQLTrackingStore: EvaluationStore {
    static let datasetColumns = "d.dataset_id, d.name, d.schema_json, d.profile, d.digest, d.created_time, d.last_update_time, d.created_by, d.last_updated_by"

    static func loadDatasets(_ db: any SQLConnection, _ ids: [String]) async throws -> [EvalDataset] {
        var out: [String: EvalDataset] = [:]
        for chunk in ids.chunked(500) {
            let binds = chunk.map(SQLValue.text)
            let list = placeholders(chunk.count)
            for row in try await db.query("SELECT \(datasetColumns) FROM eval_datasets d WHERE d.dataset_id IN (\(list))", binds) {
                out[row.string(0)] = EvalDataset(
                    datasetID: row.string(0), name: row.string(1), tags: [], schema: row.optionalString(2), profile: row.optionalString(3),
                    digest: row.string(4), createdTime: row.int(5), lastUpdateTime: row.int(6), createdBy: row.string(7),
                    lastUpdatedBy: row.string(8), experimentIDs: [])
            }
            for row in try await db.query("SELECT dataset_id, key, value FROM eval_dataset_tags WHERE dataset_id IN (\(list)) ORDER BY dataset_id, key", binds) {
                out[row.string(0)]?.tags.append(KeyValue(row.string(1), row.string(2)))
            }
            for row in try await db.query(
                "SELECT dataset_id, experiment_id FROM eval_dataset_experiments WHERE dataset_id IN (\(list)) ORDER BY dataset_id, experiment_id", binds)
            {
                out[row.string(0)]?.experimentIDs.append(row.string(1))
            }
        }
        return ids.compactMap { out[$0] }
    }

    static func requireDataset(_ db: any SQLConnection, _ id: String) async throws -> EvalDataset {
        guard let d = try await loadDatasets(db, [id]).first else {
            throw RepriseError.notFound("Evaluation dataset with id '\(id)' not found.")
        }
        return d
    }

    /// A short digest of what the dataset holds (its records' ids and update times), so two reads
    /// that show the same digest saw the same records.
    static func refreshDataset(_ db: any SQLConnection, _ id: String, user: String, now: Int64) async throws {
        let rows = try await db.query(
            "SELECT record_id, last_update_time, body FROM eval_records WHERE dataset_id = ? ORDER BY record_id", [.text(id)])
        var hasher = SHA256()
        var records: [EvalRecord] = []
        for row in rows {
            hasher.update(data: Array("\(row.string(0)):\(row.int(1));".utf8))
            if let r = try? record(row.string(0), datasetID: id, body: row.string(2)) { records.append(r) }
        }
        let digest = Hex.encode(hasher.finalize()).prefix(8)
        try await db.execute(
            "UPDATE eval_datasets SET schema_json = ?, profile = ?, digest = ?, last_update_time = ?, last_updated_by = ? WHERE dataset_id = ?",
            [records.isEmpty ? .null : .text(EvalSchema.describe(records)), .text(#"{"num_records": \#(rows.count)}"#), .text(String(digest)),
             .int(now), .text(user), .text(id)])
    }

    /// A record from its stored body (the wire form, times and authors included).
    static func record(_ id: String, datasetID: String, body: String) throws -> EvalRecord {
        guard case .object(let o) = try JSONValue.parse(body) else { throw RepriseError(.internalError, "Record \(id) has a stored body that is not an object.") }
        func obj(_ k: String) -> JSONObject { if case .object(let x)? = o[k] { return x } else { return JSONObject() } }
        var source: JSONObject? = nil
        if case .object(let s)? = o["source"] { source = s }
        return EvalRecord(
            recordID: id, datasetID: datasetID, inputs: obj("inputs"), outputs: o["outputs"].flatMap { $0 == .null ? nil : $0 },
            expectations: obj("expectations"), tags: obj("tags"), source: source, createdTime: o["created_time"].flatMap { if case .int(let i) = $0 { i } else { nil } } ?? 0,
            lastUpdateTime: o["last_update_time"].flatMap { if case .int(let i) = $0 { i } else { nil } } ?? 0,
            createdBy: o["created_by"]?.stringValue ?? "", lastUpdatedBy: o["last_updated_by"]?.stringValue ?? "")
    }

    static func upsertDatasetTags(_ db: any SQLConnection, _ id: String, _ tags: [KeyValue]) async throws {
        for t in tags {
            try await db.execute(
                "INSERT INTO eval_dataset_tags (dataset_id, key, value) VALUES (?, ?, ?) ON CONFLICT (dataset_id, key) DO UPDATE SET value = excluded.value",
                [.text(id), .text(t.key), .text(t.value)])
        }
    }

    public func createEvalDataset(name: String, experimentIDs: [String], tags: [KeyValue], user: String) async throws -> EvalDataset {
        let name = name.trimmingCharacters(in: .whitespaces)
        guard !name.isEmpty else { throw RepriseError.missing("name") }
        if name.utf8.count > Validation.maxDatasetNameLength {
            throw RepriseError.invalid("A dataset name has at most \(Validation.maxDatasetNameLength) bytes.")
        }
        let experiments = try experimentIDs.map { try Validation.validateExperimentID($0) }
        for t in tags where t.value.utf8.count > Validation.maxTagValueLength {
            throw RepriseError.invalid("The tag '\(t.key)' is longer than \(Validation.maxTagValueLength) bytes.")
        }
        let id = "d-" + Self.newID()
        return try await write { db, audit in
            for e in experiments { _ = try await Self.requireActiveExperiment(db, id: String(e)) }
            let now = Self.now()
            try await db.execute(
                "INSERT INTO eval_datasets (dataset_id, name, schema_json, profile, digest, created_time, last_update_time, created_by, last_updated_by) VALUES (?, ?, NULL, NULL, ?, ?, ?, ?, ?)",
                [.text(id), .text(name), .text(String(Hex.encode(SHA256.hash(data: Array(id.utf8))).prefix(8))), .int(now), .int(now), .text(user), .text(user)])
            try await Self.upsertDatasetTags(db, id, tags)
            for e in Set(experiments).sorted() {
                try await db.execute("INSERT INTO eval_dataset_experiments (dataset_id, experiment_id) VALUES (?, ?)", [.text(id), .int(e)])
            }
            try await audit.record(db, "eval_dataset.create", "eval_dataset", id, ["name": .string(name)])
            return try await Self.requireDataset(db, id)
        }
    }

    public func getEvalDataset(id: String) async throws -> EvalDataset {
        try await read { db in try await Self.requireDataset(db, id) }
    }

    public func deleteEvalDataset(id: String) async throws {
        try await write { db, audit in
            _ = try await Self.requireDataset(db, id)
            for table in ["eval_records", "eval_dataset_tags", "eval_dataset_experiments", "eval_datasets"] {
                try await db.execute("DELETE FROM \(table) WHERE dataset_id = ?", [.text(id)])
            }
            try await audit.record(db, "eval_dataset.delete", "eval_dataset", id, [:])
        }
    }

    public func searchEvalDatasets(_ query: EvalDatasetSearchQuery) async throws -> Page<EvalDataset> {
        var sql = "SELECT d.dataset_id FROM eval_datasets d WHERE 1 = 1"
        var binds: [SQLValue] = []
        if !query.experimentIDs.isEmpty {
            sql += " AND EXISTS (SELECT 1 FROM eval_dataset_experiments x WHERE x.dataset_id = d.dataset_id AND x.experiment_id IN (\(placeholders(query.experimentIDs.count))))"
            binds += query.experimentIDs.map(SQLValue.int)
        }
        for c in query.filter {
            if c.entity == .tag {
                let (f, b) = tagLikeClause(table: "eval_dataset_tags", idColumn: "dataset_id", outer: "d.dataset_id", c)
                sql += " AND " + f
                binds += b
            } else if c.key.hasSuffix("_time"), case .number(let n, _) = c.value {
                sql += " AND d.\(c.key) \(c.comparator.rawValue) ?"
                binds.append(.double(n))
            } else {
                let (f, b) = stringComparison("d.\(c.key)", c)
                sql += " AND " + f
                binds += b
            }
        }
        var order = query.orderBy.map { "d.\($0.column) \($0.ascending ? "ASC" : "DESC")" }
        order += ["d.created_time DESC", "d.dataset_id ASC"]
        return try await page(sql: sql, binds: binds, order: order, maxResults: query.maxResults, offset: query.offset, load: Self.loadDatasets)
    }

    public func setEvalDatasetTags(id: String, tags: [KeyValue], user: String) async throws {
        for t in tags where t.value.utf8.count > Validation.maxTagValueLength {
            throw RepriseError.invalid("The tag '\(t.key)' is longer than \(Validation.maxTagValueLength) bytes.")
        }
        try await write { db, _ in
            _ = try await Self.requireDataset(db, id)
            try await Self.upsertDatasetTags(db, id, tags)
            try await db.execute(
                "UPDATE eval_datasets SET last_update_time = ?, last_updated_by = ? WHERE dataset_id = ?", [.int(Self.now()), .text(user), .text(id)])
        }
    }

    public func deleteEvalDatasetTag(id: String, key: String) async throws {
        try await write { db, _ in
            _ = try await Self.requireDataset(db, id)
            try await db.execute("DELETE FROM eval_dataset_tags WHERE dataset_id = ? AND key = ?", [.text(id), .text(key)])
        }
    }

    public func mergeEvalRecords(datasetID: String, _ records: [EvalRecord.Incoming], user: String) async throws -> (inserted: Int, updated: Int) {
        try await write { db, _ in
            _ = try await Self.requireDataset(db, datasetID)
            let now = Self.now()
            var inserted = 0, updated = 0
            for incoming in records {
                let key = EvalRecord.mergeKey(incoming.inputs)
                if let row = try await db.queryOne(
                    "SELECT record_id, body FROM eval_records WHERE dataset_id = ? AND input_key = ?", [.text(datasetID), .text(key)])
                {
                    var r = try Self.record(row.string(0), datasetID: datasetID, body: row.string(1))
                    for (k, v) in incoming.expectations.members { r.expectations[k] = v }
                    for (k, v) in incoming.tags.members { r.tags[k] = v }
                    if let outputs = incoming.outputs { r.outputs = outputs }
                    if let source = incoming.source { r.source = source }
                    r.lastUpdateTime = now
                    r.lastUpdatedBy = user
                    try await db.execute(
                        "UPDATE eval_records SET body = ?, last_update_time = ?, last_updated_by = ? WHERE record_id = ?",
                        [.text(r.json.jsonString), .int(now), .text(user), .text(r.recordID)])
                    updated += 1
                } else {
                    let r = EvalRecord(
                        recordID: "dr-" + Self.newID(), datasetID: datasetID, inputs: incoming.inputs, outputs: incoming.outputs,
                        expectations: incoming.expectations, tags: incoming.tags, source: incoming.source, createdTime: now, lastUpdateTime: now,
                        createdBy: user, lastUpdatedBy: user)
                    try await db.execute(
                        "INSERT INTO eval_records (record_id, dataset_id, input_key, body, created_time, last_update_time, created_by, last_updated_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [.text(r.recordID), .text(datasetID), .text(key), .text(r.json.jsonString), .int(now), .int(now), .text(user), .text(user)])
                    inserted += 1
                }
            }
            try await Self.refreshDataset(db, datasetID, user: user, now: now)
            return (inserted, updated)
        }
    }

    public func evalRecords(datasetID: String, offset: Int, limit: Int) async throws -> Page<EvalRecord> {
        try await read { db in
            _ = try await Self.requireDataset(db, datasetID)
            let rows = try await db.query(
                "SELECT record_id, body FROM eval_records WHERE dataset_id = ? ORDER BY created_time, record_id LIMIT ? OFFSET ?",
                [.text(datasetID), .int(Int64(limit) + 1), .int(Int64(offset))])
            let items = try rows.prefix(limit).map { try Self.record($0.string(0), datasetID: datasetID, body: $0.string(1)) }
            return Page(items: items, nextOffset: rows.count > limit ? offset + limit : nil)
        }
    }

    public func deleteEvalRecords(datasetID: String, ids: [String]) async throws -> Int {
        try await write { db, _ in
            _ = try await Self.requireDataset(db, datasetID)
            var n = 0
            for chunk in ids.chunked(500) {
                n += try await db.execute(
                    "DELETE FROM eval_records WHERE dataset_id = ? AND record_id IN (\(placeholders(chunk.count)))",
                    [.text(datasetID)] + chunk.map(SQLValue.text))
            }
            try await Self.refreshDataset(db, datasetID, user: "", now: Self.now())
            return n
        }
    }

    public func setEvalDatasetExperiments(id: String, add: [String], remove: [String], user: String) async throws -> EvalDataset {
        let adding = try add.map { try Validation.validateExperimentID($0) }
        let removing = try remove.map { try Validation.validateExperimentID($0) }
        return try await write { db, _ in
            _ = try await Self.requireDataset(db, id)
            for e in adding {
                _ = try await Self.requireActiveExperiment(db, id: String(e))
                try await db.execute(
                    "INSERT INTO eval_dataset_experiments (dataset_id, experiment_id) VALUES (?, ?) ON CONFLICT (dataset_id, experiment_id) DO NOTHING",
                    [.text(id), .int(e)])
            }
            for e in removing {
                try await db.execute("DELETE FROM eval_dataset_experiments WHERE dataset_id = ? AND experiment_id = ?", [.text(id), .int(e)])
            }
            try await db.execute(
                "UPDATE eval_datasets SET last_update_time = ?, last_updated_by = ? WHERE dataset_id = ?", [.int(Self.now()), .text(user), .text(id)])
            return try await Self.requireDataset(db, id)
        }
    }

    public func experimentIDs(ofEvalDataset id: String) async throws -> [String] {
        try await read { db in
            guard try await db.queryOne("SELECT 1 FROM eval_datasets WHERE dataset_id = ?", [.text(id)]) != nil else {
                throw RepriseError.notFound("Evaluation dataset with id '\(id)' not found.")
            }
            return try await db.query(
                "SELECT experiment_id FROM eval_dataset_experiments WHERE dataset_id = ? ORDER BY experiment_id", [.text(id)]
            ).map { $0.string(0) }
        }
    }

    // MARK: - Scorers

    static func scorerVersion(_ row: SQLRow) -> ScorerVersion {
        ScorerVersion(
            scorerID: row.string(0), experimentID: row.string(1), name: row.string(2), version: row.int(3), serialized: row.string(4),
            creationTime: row.int(5))
    }

    static let scorerColumns = "s.scorer_id, s.experiment_id, s.name, v.version, v.serialized, v.creation_time"

    static func scorerNotFound(_ name: String, _ experiment: String, _ version: Int64?) -> RepriseError {
        RepriseError.notFound("Scorer with name '\(name)'\(version.map { " and version \($0)" } ?? "") not found for experiment \(experiment).")
    }

    public func registerScorer(experimentID: String, name: String, serialized: String) async throws -> ScorerVersion {
        let experiment = try Validation.validateExperimentID(experimentID)
        try Validation.validateKey(name, lengthLabel: "Scorer name")
        guard case .object? = try? JSONValue.parse(serialized) else {
            throw RepriseError.invalid("Invalid value for 'serialized_scorer': expected a JSON object.")
        }
        if serialized.utf8.count > TraceInfo.maxMetadataValueBytes {
            throw RepriseError.invalid("A serialized scorer has at most \(TraceInfo.maxMetadataValueBytes) bytes.")
        }
        return try await write { db, audit in
            _ = try await Self.requireActiveExperiment(db, id: experimentID)
            var scorerID: String
            if let row = try await db.queryOne("SELECT scorer_id FROM scorers WHERE experiment_id = ? AND name = ?", [.int(experiment), .text(name)]) {
                scorerID = row.string(0)
            } else {
                scorerID = RandomID.uuid()
                try await db.execute("INSERT INTO scorers (scorer_id, experiment_id, name) VALUES (?, ?, ?)", [.text(scorerID), .int(experiment), .text(name)])
            }
            let version = try await db.queryOne("SELECT COALESCE(MAX(version), 0) + 1 FROM scorer_versions WHERE scorer_id = ?", [.text(scorerID)])!.int(0)
            let now = Self.now()
            try await db.execute(
                "INSERT INTO scorer_versions (scorer_id, version, serialized, creation_time) VALUES (?, ?, ?, ?)",
                [.text(scorerID), .int(version), .text(serialized), .int(now)])
            try await audit.record(db, "scorer.register", "scorer", "\(experimentID)/\(name)", ["version": .int(version)])
            return ScorerVersion(scorerID: scorerID, experimentID: experimentID, name: name, version: version, serialized: serialized, creationTime: now)
        }
    }

    public func listScorers(experimentID: String) async throws -> [ScorerVersion] {
        let experiment = try Validation.validateExperimentID(experimentID)
        return try await read { db in
            try await db.query(
                "SELECT \(Self.scorerColumns) FROM scorers s JOIN scorer_versions v ON v.scorer_id = s.scorer_id WHERE s.experiment_id = ? AND v.version = (SELECT MAX(version) FROM scorer_versions w WHERE w.scorer_id = s.scorer_id) ORDER BY s.name",
                [.int(experiment)]
            ).map(Self.scorerVersion)
        }
    }

    public func scorerVersions(experimentID: String, name: String) async throws -> [ScorerVersion] {
        let experiment = try Validation.validateExperimentID(experimentID)
        return try await read { db in
            let rows = try await db.query(
                "SELECT \(Self.scorerColumns) FROM scorers s JOIN scorer_versions v ON v.scorer_id = s.scorer_id WHERE s.experiment_id = ? AND s.name = ? ORDER BY v.version",
                [.int(experiment), .text(name)])
            if rows.isEmpty { throw Self.scorerNotFound(name, experimentID, nil) }
            return rows.map(Self.scorerVersion)
        }
    }

    public func getScorer(experimentID: String, name: String, version: Int64?) async throws -> ScorerVersion {
        let experiment = try Validation.validateExperimentID(experimentID)
        return try await read { db in
            var sql = "SELECT \(Self.scorerColumns) FROM scorers s JOIN scorer_versions v ON v.scorer_id = s.scorer_id WHERE s.experiment_id = ? AND s.name = ?"
            var binds: [SQLValue] = [.int(experiment), .text(name)]
            if let version {
                sql += " AND v.version = ?"
                binds.append(.int(version))
            }
            guard let row = try await db.queryOne(sql + " ORDER BY v.version DESC LIMIT 1", binds) else {
                throw Self.scorerNotFound(name, experimentID, version)
            }
            return Self.scorerVersion(row)
        }
    }

    public func deleteScorer(experimentID: String, name: String, version: Int64?) async throws {
        let experiment = try Validation.validateExperimentID(experimentID)
        try await write { db, audit in
            guard let row = try await db.queryOne("SELECT scorer_id FROM scorers WHERE experiment_id = ? AND name = ?", [.int(experiment), .text(name)]) else {
                throw Self.scorerNotFound(name, experimentID, nil)
            }
            let id = row.string(0)
            if let version {
                let n = try await db.execute("DELETE FROM scorer_versions WHERE scorer_id = ? AND version = ?", [.text(id), .int(version)])
                if n == 0 { throw Self.scorerNotFound(name, experimentID, version) }
            } else {
                try await db.execute("DELETE FROM scorer_versions WHERE scorer_id = ?", [.text(id)])
            }
            if try await db.queryOne("SELECT 1 FROM scorer_versions WHERE scorer_id = ?", [.text(id)]) == nil {
                try await db.execute("DELETE FROM scorers WHERE scorer_id = ?", [.text(id)])
            }
            try await audit.record(db, "scorer.delete", "scorer", "\(experimentID)/\(name)", ["version": version.map(JSONValue.int) ?? .null])
        }
    }
}
