import Crypto
import Foundation
import RepriseCore

extension SQLTrackingStore {
    static let runColumns =
        "r.run_uuid, r.experiment_id, r.name, r.user_id, r.status, r.start_time, r.end_time, r.artifact_uri, r.lifecycle_stage"

    static func runInfo(_ row: SQLRow) -> RunInfo {
        RunInfo(
            runID: row.string(0), experimentID: row.string(1), runName: row.string(2), userID: row.string(3),
            status: RunStatus(rawValue: row.string(4)) ?? .running, startTime: row.int(5), endTime: row.optionalInt(6),
            artifactURI: row.string(7), lifecycleStage: LifecycleStage(rawValue: row.string(8)) ?? .active)
    }

    /// Tags a sealed run accepts once (never overwritten): the wrapper's record of how the command ended.
    static let completionTags: Set<String> = [PassportTag.exitStatus, PassportTag.durationMillis, PassportTag.cost, PassportTag.fingerprint]

    /// Tags that stay writable on a sealed run.
    public static func isNoteTag(_ key: String) -> Bool { key == "mlflow.note.content" || key.hasPrefix("reprise.note") }

    /// The model version that seals a run, if any: a finished run that a model version was
    /// registered from is read-only, so the evidence behind the version cannot change.
    /// - Parameter status: the run's status when the caller has just read it (saves a query).
    static func sealingVersion(_ db: any SQLConnection, _ runID: String, status: String? = nil) async throws -> String? {
        var known = status
        if known == nil { known = try await db.queryOne("SELECT status FROM runs WHERE run_uuid = ?", [.text(runID)])?.string(0) }
        guard let known, known != RunStatus.running.rawValue,
            let v = try await db.queryOne(
                "SELECT name, version FROM model_versions WHERE run_id = ? AND current_stage <> '\(ModelStage.deletedInternal)' ORDER BY name, version LIMIT 1",
                [.text(runID)])
        else { return nil }
        return "\(v.string(0))/\(v.int(1))"
    }

    public func artifactSeal(locations: [String]) async throws -> String? {
        // A sealed root R covers L when L == R, L is inside R, or R is inside L. Compared with
        // substr rather than LIKE, so no character in a location acts as a wildcard. A stored
        // `mlflow-artifacts://host/p` is compared as `mlflow-artifacts:/p`.
        let spellings = locations.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }.filter { !$0.isEmpty }
        guard !spellings.isEmpty else { return nil }
        func normalized(_ column: String) -> String {
            let slash = dialect.position("'/'", in: "substr(\(column), 20)")
            return "(CASE WHEN substr(\(column), 1, 19) = 'mlflow-artifacts://' AND \(slash) > 0 THEN 'mlflow-artifacts:' || substr(\(column), 19 + \(slash)) ELSE \(column) END)"
        }
        func covers(_ column: String) -> String {
            let r = normalized(column)
            let one = "(\(r) = ? OR substr(?, 1, length(\(r)) + 1) = \(r) || '/' OR substr(\(r), 1, length(?) + 1) = ? || '/')"
            return "(" + Array(repeating: one, count: spellings.count).joined(separator: " OR ") + ")"
        }
        let deleted = ModelStage.deletedInternal
        let sql = """
            SELECT mv.name, mv.version FROM model_versions mv JOIN runs r ON r.run_uuid = mv.run_id
              WHERE mv.current_stage <> '\(deleted)' AND r.status <> 'RUNNING' AND \(covers("r.artifact_uri"))
            UNION ALL
            SELECT mv.name, mv.version FROM model_versions mv JOIN logged_models lm ON lm.model_id = mv.model_id
              WHERE mv.current_stage <> '\(deleted)' AND \(covers("lm.artifact_uri"))
            UNION ALL
            SELECT mv.name, mv.version FROM model_versions mv
              WHERE mv.current_stage <> '\(deleted)' AND mv.storage_location <> '' AND \(covers("mv.storage_location"))
            LIMIT 1
            """
        let perQuery = spellings.flatMap { l in Array(repeating: SQLValue.text(l), count: 4) }
        let binds = perQuery + perQuery + perQuery
        return try await read { db in
            try await db.queryOne(sql, binds).map { "\($0.string(0))/\($0.int(1))" }
        }
    }

    static func requireUnsealed(_ db: any SQLConnection, _ runID: String, _ what: String, status: String? = nil) async throws {
        if let version = try await sealingVersion(db, runID, status: status) {
            throw RepriseError(
                .permissionDenied,
                "Run \(runID) is sealed: model version \(version) was registered from it, so \(what) is refused. A sealed run's params, metrics and tags cannot change and it cannot be deleted; only note tags (mlflow.note.content, reprise.note.*) stay writable."
            )
        }
    }

    /// Checks that a run exists and is active, as every run mutation requires.
    /// - Returns: its status, for `requireUnsealed(…, status:)`.
    @discardableResult
    /// What a run logged, for the audit trail when it ends: points per metric key, and a SHA-256
    /// over each key's count and latest value (so a later change to the final figures shows). Keys
    /// listed up to 100; the digest covers all. Nil when the run logged no metric.
    static func metricsSummary(_ db: any SQLConnection, _ runID: String) async throws -> JSONValue? {
        let counts = try await db.query("SELECT key, COUNT(*) FROM metrics WHERE run_uuid = ? GROUP BY key ORDER BY key", [.text(runID)])
        if counts.isEmpty { return nil }
        var latest: [String: String] = [:]
        for row in try await db.query("SELECT key, value, is_nan, step FROM latest_metrics WHERE run_uuid = ?", [.text(runID)]) {
            latest[row.string(0)] = "\(row.int(2) != 0 ? "NaN" : String(row.double(1)))@\(row.int(3))"
        }
        var hasher = SHA256()
        var total: Int64 = 0
        var keys: [(String, JSONValue)] = []
        for row in counts {
            let key = row.string(0)
            let n = row.int(1)
            total += n
            hasher.update(data: Array("\(key)\t\(n)\t\(latest[key] ?? "")\n".utf8))
            if keys.count < 100 { keys.append((key, .int(n))) }
        }
        return [
            "points": .int(total), "keys": .int(Int64(counts.count)), "per_key": .object(JSONObject(keys)),
            "digest": .string(hasher.finalize().map { String(format: "%02x", $0) }.joined()),
        ]
    }

    static func requireActiveRun(_ db: any SQLConnection, _ id: String) async throws -> String {
        guard let row = try await db.queryOne("SELECT lifecycle_stage, status FROM runs WHERE run_uuid = ?", [.text(id)]) else {
            throw RepriseError.notFound("Run with id=\(id) not found")
        }
        let stage = row.string(0)
        if stage != LifecycleStage.active.rawValue {
            throw RepriseError.invalid("The run \(id) must be in the 'active' state. Current state is \(stage).")
        }
        return row.string(1)
    }

    /// A stored value: the `value` column at `i`, its `is_nan` flag at `i + 1` (NaN is kept as a flag).
    static func metricValue(_ row: SQLRow, at i: Int) -> Double {
        row.int(i + 1) == 1 ? .nan : row.double(i)
    }

    static func metric(_ row: SQLRow, from i: Int, runID: String? = nil) -> Metric {
        // Columns from i: key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest
        Metric(
            key: row.string(i), value: metricValue(row, at: i + 1), timestamp: row.int(i + 3),
            step: row.int(i + 4), modelID: row.optionalString(i + 5), datasetName: row.optionalString(i + 6),
            datasetDigest: row.optionalString(i + 7), runID: runID)
    }

    /// Loads whole runs, in the order of `ids`. Side tables are read in bulk, each row handed over
    /// as it is read (`scan`: no row array per row) to the run it belongs to; rows come grouped by
    /// run, so the run is looked up once per group.
    static func loadRuns(_ db: any SQLConnection, ids: [String], dialect: SQLDialect) async throws -> [Run] {
        if ids.isEmpty { return [] }
        var loaded: [Run] = []
        loaded.reserveCapacity(ids.count)
        var position: [String: Int] = [:]
        position.reserveCapacity(ids.count)
        for chunk in stride(from: 0, to: ids.count, by: 500).map({ Array(ids[$0..<min($0 + 500, ids.count)]) }) {
            // One list for every statement below: the same text whatever the count (`textList`).
            let (inList, binds) = dialect.textList(chunk)
            try await db.scan("SELECT \(runColumns) FROM runs r WHERE r.run_uuid IN \(inList)", binds) { row in
                let info = runInfo(row)
                position[info.runID] = loaded.count
                loaded.append(Run(info: info))
            }
            // The index of the run a side-table row belongs to, by its first column.
            var lastID = ""
            var last: Int?
            func owner(_ row: SQLRow) -> Int? {
                let id = row.string(0)
                if id != lastID {
                    lastID = id
                    last = position[id]
                }
                return last
            }
            try await db.scan("SELECT run_uuid, key, value FROM params WHERE run_uuid IN \(inList) ORDER BY run_uuid, key", binds) { row in
                if let i = owner(row) { loaded[i].params.append(KeyValue(row.string(1), row.string(2))) }
            }
            try await db.scan("SELECT run_uuid, key, value FROM tags WHERE run_uuid IN \(inList) ORDER BY run_uuid, key", binds) { row in
                if let i = owner(row) { loaded[i].tags.append(KeyValue(row.string(1), row.string(2))) }
            }
            try await db.scan(
                "SELECT run_uuid, key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest FROM latest_metrics WHERE run_uuid IN \(inList) ORDER BY run_uuid, key",
                binds
            ) { row in
                if let i = owner(row) { loaded[i].metrics.append(metric(row, from: 1)) }
            }
            var inputs: [String: [(String, Dataset)]] = [:]
            for row in try await db.query(
                """
                SELECT i.run_uuid, d.dataset_uuid, d.name, d.digest, d.source_type, d.source, d.schema, d.profile
                FROM run_inputs i JOIN datasets d ON d.dataset_uuid = i.dataset_uuid
                WHERE i.run_uuid IN \(inList) ORDER BY i.run_uuid, i.position
                """, binds)
            {
                let ds = Dataset(
                    name: row.string(2), digest: row.string(3), sourceType: row.string(4), source: row.string(5),
                    schema: row.optionalString(6), profile: row.optionalString(7))
                inputs[row.string(0), default: []].append((row.string(1), ds))
            }
            if !inputs.isEmpty {
                var inputTags: [String: [KeyValue]] = [:]
                for row in try await db.query(
                    "SELECT run_uuid, dataset_uuid, key, value FROM input_tags WHERE run_uuid IN \(inList) ORDER BY run_uuid, dataset_uuid, key",
                    binds)
                {
                    inputTags[row.string(0) + "/" + row.string(1), default: []].append(KeyValue(row.string(2), row.string(3)))
                }
                for (runID, list) in inputs {
                    guard let i = position[runID] else { continue }
                    loaded[i].datasetInputs = list.map { (uuid, ds) in
                        DatasetInput(tags: inputTags[runID + "/" + uuid] ?? [], dataset: ds)
                    }
                }
            }
            for row in try await db.query(
                "SELECT run_uuid, model_id FROM run_model_inputs WHERE run_uuid IN \(inList) ORDER BY run_uuid, model_id",
                binds)
            {
                if let i = position[row.string(0)] { loaded[i].modelInputs.append(row.string(1)) }
            }
            for row in try await db.query(
                "SELECT run_uuid, model_id, step FROM run_model_outputs WHERE run_uuid IN \(inList) ORDER BY run_uuid, model_id",
                binds)
            {
                if let i = position[row.string(0)] { loaded[i].modelOutputs.append(ModelOutput(modelID: row.string(1), step: row.int(2))) }
            }
        }
        return ids.compactMap { position[$0].map { loaded[$0] } }
    }

    public func createRun(_ input: CreateRunInput) async throws -> Run {
        let expID = input.experimentID.isEmpty ? "0" : input.experimentID
        _ = try Validation.validateExperimentID(expID)
        var tags = try input.tags.map { t -> KeyValue in
            try Validation.validateKey(t.key, lengthLabel: "Tag key")
            return KeyValue(t.key, Validation.truncated(t.value, max: Validation.maxTagValueLength))
        }
        let tagName = tags.last(where: { $0.key == "mlflow.runName" })?.value
        if let n = input.runName, !n.isEmpty, let tagName, tagName != n {
            throw RepriseError.invalid(
                "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values (run_name='\(n)', mlflow.runName='\(tagName)')."
            )
        }
        let name = (input.runName.flatMap { $0.isEmpty ? nil : $0 }) ?? tagName ?? RunNames.random()
        try Validation.rejectControlCharacters(name, field: "run_name")
        if tagName == nil { tags.append(KeyValue("mlflow.runName", name)) }
        try PassportTag.refuseServerOwned(tags.map(\.key))
        let runID = Self.newID()
        let experimentNumber = Int64(expID)!
        // The run's tags as one multi-row insert; a key given twice keeps its last value, as
        // upserting them one by one would.
        var tagIndex: [String: Int] = [:]
        var deduplicated: [KeyValue] = []
        for t in tags {
            if let i = tagIndex[t.key] { deduplicated[i] = t } else {
                tagIndex[t.key] = deduplicated.count
                deduplicated.append(t)
            }
        }
        let uniqueTags = deduplicated
        let tagRows = uniqueTags.map { [SQLValue.text(runID), .text($0.key), .text($0.value)] }
        let tagMap = Dictionary(uniqueTags.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
        let userID = input.userID
        let startTime = input.startTime
        // Few statements, each a round trip on PostgreSQL under the write lock: the experiment and
        // its policy in one, the run, its tags in one, the policy's verdict where there is a policy
        // (the audit event goes in with the batch's others).
        return try await write { db, audit in
            guard
                let row = try await db.queryOne(Self.experimentForNewRunSQL, [.int(experimentNumber)])
            else { throw RepriseError.notFound("No Experiment with id=\(expID) exists") }
            let stage = row.string(0)
            guard stage == LifecycleStage.active.rawValue else {
                throw RepriseError.invalid("The experiment \(expID) must be in the 'active' state. Current state is \(stage).")
            }
            let location = row.string(1)
            let policy = row.optionalInt(2) == nil ? nil : Self.experimentPolicy(SQLRow(Array(row.values.dropFirst(2))))
            let base = location.hasSuffix("/") ? String(location.dropLast()) : location
            let artifactURI = "\(base)/\(runID)/artifacts"
            try await db.execute(
                "INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, end_time, deleted_time, lifecycle_stage, artifact_uri) VALUES (?, ?, ?, ?, 'RUNNING', ?, NULL, NULL, 'active', ?)",
                [.text(runID), .int(experimentNumber), .text(name), .text(userID), .int(startTime), .text(artifactURI)])
            try await db.executeRows(tagRows) { n in
                "INSERT INTO tags (run_uuid, key, value) VALUES \(valueRows(n, width: 3)) ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value"
            }
            var stored = tagMap
            if let policy {
                let verdict = try await Self.applyPolicy(db, policy, runID: runID, tags: tagMap, datasets: 0, mayRefuse: true, when: "at creation")
                stored[PassportTag.compliant] = verdict.compliant
                stored[PassportTag.complianceMissing] = verdict.missing
            }
            try await audit.record(
                db, "run.create", "run", runID, ["experiment_id": .string(expID), "name": .string(name), "user_id": .string(userID)])
            // The run as stored, as `getRun` reads it (tags in byte order of their keys), without
            // reading it back: a new run has nothing else.
            return Run(
                info: RunInfo(
                    runID: runID, experimentID: String(experimentNumber), runName: name, userID: userID, status: .running,
                    startTime: startTime, endTime: nil, artifactURI: artifactURI, lifecycleStage: .active),
                tags: stored.map { KeyValue($0.key, $0.value) }.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) })
        }
    }

    /// An experiment's state, its location and its policy's columns (NULL without one).
    static let experimentForNewRunSQL =
        "SELECT e.lifecycle_stage, e.artifact_location, "
        + qualified(policyColumnsRepro, "p")
        + " FROM experiments e LEFT JOIN experiment_policies p ON p.experiment_id = e.experiment_id WHERE e.experiment_id = ?"

    public func experimentID(ofRun id: String) async throws -> String {
        try await read { db in
            guard let row = try await db.queryOne("SELECT experiment_id FROM runs WHERE run_uuid = ?", [.text(id)]) else {
                throw RepriseError.notFound("Run with id=\(id) not found")
            }
            return row.string(0)
        }
    }

    public func experimentID(ofLoggedModel id: String) async throws -> String {
        try await read { db in
            guard let row = try await db.queryOne("SELECT experiment_id FROM logged_models WHERE model_id = ?", [.text(id)]) else {
                throw RepriseError.notFound("Logged model with id=\(id) not found")
            }
            return row.string(0)
        }
    }

    public func getRun(id: String) async throws -> Run {
        try await read { db in
            guard let run = try await Self.loadRuns(db, ids: [id], dialect: self.dialect).first else {
                throw RepriseError.notFound("Run with id=\(id) not found")
            }
            return run
        }
    }

    public func updateRun(id: String, status: RunStatus?, endTime: Int64?, runName: String?) async throws -> RunInfo {
        try await write { db, audit in
            let current = try await Self.requireActiveRun(db, id)
            try await Self.requireUnsealed(db, id, "updating it", status: current)
            let before = Self.runInfo(try await db.queryOne("SELECT \(Self.runColumns) FROM runs r WHERE r.run_uuid = ?", [.text(id)])!)
            if let status { try await db.execute("UPDATE runs SET status = ? WHERE run_uuid = ?", [.text(status.rawValue), .text(id)]) }
            if let status, status.isTerminal, !before.status.isTerminal {
                let exp = try await db.queryOne("SELECT experiment_id FROM runs WHERE run_uuid = ?", [.text(id)])!.int(0)
                try await Self.applyPolicy(
                    db, runID: id, experimentID: exp, tags: try await Self.runTags(db, id), datasets: try await Self.datasetCount(db, id),
                    mayRefuse: status == .finished, when: "at finish")
            }
            if let endTime { try await db.execute("UPDATE runs SET end_time = ? WHERE run_uuid = ?", [.int(endTime), .text(id)]) }
            if let runName, !runName.isEmpty {
                try Validation.rejectControlCharacters(runName, field: "run_name")
                try await db.execute("UPDATE runs SET name = ? WHERE run_uuid = ?", [.text(runName), .text(id)])
                try await db.execute(
                    "INSERT INTO tags (run_uuid, key, value) VALUES (?, 'mlflow.runName', ?) ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value",
                    [.text(id), .text(runName)])
            }
            let row = try await db.queryOne("SELECT \(Self.runColumns) FROM runs r WHERE r.run_uuid = ?", [.text(id)])!
            let after = Self.runInfo(row)
            if after.status.isTerminal, !before.status.isTerminal, let summary = try await Self.metricsSummary(db, id) {
                try await audit.record(db, "run.metrics", "run", id, summary)
            }
            try await audit.record(
                db, "run.update", "run", id,
                ["before": ["status": .string(before.status.rawValue), "name": .string(before.runName)],
                 "after": ["status": .string(after.status.rawValue), "name": .string(after.runName), "end_time": after.endTime.map(JSONValue.int) ?? .null]])
            return after
        }
    }

    public func deleteRun(id: String) async throws {
        try await write { db, audit in
            try await Self.requireUnsealed(db, id, "deleting it")
            let n = try await db.execute(
                "UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = ? WHERE run_uuid = ?", [.int(Self.now()), .text(id)])
            if n == 0 { throw RepriseError.notFound("Run with id=\(id) not found") }
            try await audit.record(db, "run.delete", "run", id)
        }
    }

    public func restoreRun(id: String) async throws {
        try await write { db, audit in
            let n = try await db.execute(
                "UPDATE runs SET lifecycle_stage = 'active', deleted_time = NULL WHERE run_uuid = ?", [.text(id)])
            if n == 0 { throw RepriseError.notFound("Run with id=\(id) not found") }
            try await audit.record(db, "run.restore", "run", id)
        }
    }

    static let insertMetricSQL =
        "INSERT INTO metrics (run_uuid, key, timestamp, step, value, is_nan, model_id, dataset_name, dataset_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
    static let upsertLatestSQL = """
        INSERT INTO latest_metrics (run_uuid, key, timestamp, step, value, is_nan, model_id, dataset_name, dataset_digest)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (run_uuid, key) DO UPDATE SET timestamp = excluded.timestamp, step = excluded.step,
          value = excluded.value, is_nan = excluded.is_nan, model_id = excluded.model_id,
          dataset_name = excluded.dataset_name, dataset_digest = excluded.dataset_digest
        WHERE excluded.step > latest_metrics.step
          OR (excluded.step = latest_metrics.step AND (excluded.timestamp > latest_metrics.timestamp
            OR (excluded.timestamp = latest_metrics.timestamp AND excluded.value > latest_metrics.value)))
        """
    static let insertModelMetricSQL =
        "INSERT INTO logged_model_metrics (model_id, key, timestamp, step, value, is_nan, run_uuid, dataset_name, dataset_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    static let upsertTagSQL =
        "INSERT INTO tags (run_uuid, key, value) VALUES (?, ?, ?) ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value"

    /// Rows per multi-row INSERT of plain metric points.
    static let metricChunk = 100

    static func metricBinds(_ runID: String, _ m: Metric) -> [SQLValue] {
        let (value, isNaN) = storedValue(m.value)
        return [
            .text(runID), .text(m.key), .int(m.timestamp), .int(m.step), .double(value), .int(isNaN),
            SQLValue(m.modelID), SQLValue(m.datasetName), SQLValue(m.datasetDigest),
        ]
    }

    /// Appends points to the history and keeps the latest value per key.
    ///
    /// Points without a logged model go in multi-row INSERTs or a bulk load (duplicates ignored), and
    /// the latest table gets a conditional upsert per key with that key's greatest (step, timestamp, value):
    /// re-offering a point that is already there changes nothing, so this is exact. Points linked to
    /// a logged model go one by one, so only newly stored points are linked to the model.
    ///
    /// The histories' tiles (`MetricTiles`) get the points stored: all of them when the inserts
    /// stored as many rows as they were given, none otherwise (those histories lose their tiles).
    static func insertMetrics(_ db: any SQLConnection, runID: String, _ metrics: [Metric]) async throws {
        if metrics.isEmpty { return }
        if metrics.count == 1, metrics[0].modelID?.isEmpty ?? true {
            // One point (log-metric): three statements.
            let binds = metricBinds(runID, metrics[0])
            if try await db.execute(insertMetricSQL, binds) == 0 { return }  // stored already
            try await MetricTiles.recordSingle(db, runID: runID, metrics[0])
            try await db.execute(upsertLatestSQL, binds)
            return
        }
        let open = try await MetricTiles.openTiles(db, runID: runID, keys: metrics.lazy.map(\.key))
        var stored: [Metric] = []
        var plain: [Metric] = []
        plain.reserveCapacity(metrics.count)
        var best: [String: Metric] = [:]
        func better(_ a: Metric, than b: Metric) -> Bool {
            let (va, _) = storedValue(a.value)
            let (vb, _) = storedValue(b.value)
            return (a.step, a.timestamp, va) > (b.step, b.timestamp, vb)
        }
        for m in metrics {
            if let model = m.modelID, !model.isEmpty {
                let binds = metricBinds(runID, m)
                if try await db.execute(insertMetricSQL, binds) == 0 { continue }  // an exact duplicate
                stored.append(m)
                try await db.execute(upsertLatestSQL, binds)
                try await db.execute(
                    insertModelMetricSQL,
                    [.text(model), binds[1], binds[2], binds[3], binds[4], binds[5], .text(runID), binds[7], binds[8]])
                continue
            }
            plain.append(m)
            if let current = best[m.key] {
                if better(m, than: current) { best[m.key] = m }
            } else {
                best[m.key] = m
            }
        }
        let inserted: Int
        if plain.count >= bulkThreshold, let bulk = db as? any SQLBulkInsert {
            inserted = try await bulk.insertIgnoringDuplicates(into: "metrics", columns: metricColumns, rows: plain.map { metricBinds(runID, $0) })
        } else {
            inserted = try await db.executeRows(plain.map { metricBinds(runID, $0) }, chunk: metricChunk) { multiRowMetricInserts[$0] }
        }
        // One conditional upsert for all the keys (they are distinct).
        try await db.executeRows(best.values.map { metricBinds(runID, $0) }, chunk: metricChunk) { multiRowLatestUpserts[$0] }
        // All stored, or none (a point sent again): the tiles know exactly what was added.
        let sure = inserted == plain.count || inserted == 0
        try await MetricTiles.record(
            db, runID: runID, stored: stored, inserted == plain.count ? plain : [], unsure: sure ? [] : Set(plain.map(\.key)), open: open)
    }

    static let metricColumns = ["run_uuid", "key", "timestamp", "step", "value", "is_nan", "model_id", "dataset_name", "dataset_digest"]

    /// From this many points on, a driver that can bulk-load (PostgreSQL's COPY) stores them that way:
    /// a few round trips whatever the count, against one per `metricChunk` rows.
    static let bulkThreshold = 500

    static let multiRowLatestUpserts: [String] = (0...metricChunk).map { n in
        n == 0 ? "" : upsertLatestSQL.replacingOccurrences(
            of: "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            with: "VALUES " + Array(repeating: "(?, ?, ?, ?, ?, ?, ?, ?, ?)", count: n).joined(separator: ", "))
    }

    static let multiRowMetricInserts: [String] = (0...metricChunk).map { n in
        n == 0 ? "" :
        "INSERT INTO metrics (run_uuid, key, timestamp, step, value, is_nan, model_id, dataset_name, dataset_digest) VALUES "
            + Array(repeating: "(?, ?, ?, ?, ?, ?, ?, ?, ?)", count: n).joined(separator: ", ") + " ON CONFLICT DO NOTHING"
    }


    /// ±inf are stored as the largest finite doubles, NaN as 0 with a flag (spec §6.4).
    static func storedValue(_ v: Double) -> (Double, Int64) {
        if v.isNaN { return (0, 1) }
        if v == .infinity { return (.greatestFiniteMagnitude, 0) }
        if v == -.infinity { return (-.greatestFiniteMagnitude, 0) }
        return (v, 0)
    }

    public func logBatch(runID: String, _ batch: RunBatch) async throws {
        let (metrics, params, tags, conflictStyle) = (batch.metrics, batch.params, batch.tags, batch.conflictStyle)
        try await write { db, audit in
            let status = try await Self.requireActiveRun(db, runID)
            var needsUnsealed = !metrics.isEmpty || !params.isEmpty
            for t in tags where !Self.isNoteTag(t.key) && !needsUnsealed {
                // What `reprise run` learns only when the command has exited may be added once, even
                // after the command registered a model from the run; it never replaces a value.
                if Self.completionTags.contains(t.key),
                    try await db.queryOne("SELECT 1 FROM tags WHERE run_uuid = ? AND key = ?", [.text(runID), .text(t.key)]) == nil
                {
                    continue
                }
                needsUnsealed = true
            }
            if needsUnsealed { try await Self.requireUnsealed(db, runID, "logging to it", status: status) }
            var conflicts: [(String, String, String)] = []
            for p in params {
                if let old = try await db.queryOne("SELECT value FROM params WHERE run_uuid = ? AND key = ?", [.text(runID), .text(p.key)]) {
                    if old.string(0) != p.value { conflicts.append((p.key, old.string(0), p.value)) }
                } else {
                    try await db.execute("INSERT INTO params (run_uuid, key, value) VALUES (?, ?, ?)", [.text(runID), .text(p.key), .text(p.value)])
                }
            }
            if let first = conflicts.first {
                switch conflictStyle {
                case .single:
                    throw RepriseError.invalid(
                        "Changing param values is not allowed. Param with key='\(first.0)' was already logged with value='\(first.1)' for run ID='\(runID)'. Attempted logging new value '\(first.2)'."
                    )
                case .batch:
                    let list = conflicts.map { "{'key': '\($0.0)', 'old_value': '\($0.1)', 'new_value': '\($0.2)'}" }
                        .joined(separator: ", ")
                    throw RepriseError.invalid(
                        "Changing param values is not allowed. Params were already logged='[\(list)]' for run ID='\(runID)'.")
                }
            }
            try await Self.insertMetrics(db, runID: runID, metrics)
            for t in tags {
                try await db.execute(Self.upsertTagSQL, [.text(runID), .text(t.key), .text(t.value)])
                if t.key == "mlflow.runName" {
                    try await db.execute("UPDATE runs SET name = ? WHERE run_uuid = ?", [.text(t.value), .text(runID)])
                }
            }
            // The audit trail records who changed what. Metric points logged while the run is still
            // going are its ordinary output, not changes: they are summarized once, when the run ends
            // (`run.metrics`, counts and a digest per key). Points added to an ended run, params and
            // tags get one event per request: counts and keys, not values.
            let ended = RunStatus(rawValue: status)?.isTerminal ?? false
            if params.isEmpty && tags.isEmpty && !ended { return }
            var summary = JSONObject()
            if !metrics.isEmpty {
                summary["metrics"] = .int(Int64(metrics.count))
                var keys = Set<String>()
                for m in metrics where keys.count < 20 { keys.insert(m.key) }
                summary["metric_keys"] = .array(keys.sorted().map(JSONValue.string))
            }
            if !params.isEmpty { summary["params"] = .array(params.prefix(20).map { .string($0.key) }) }
            if !tags.isEmpty { summary["tags"] = .array(tags.prefix(20).map { .string($0.key) }) }
            try await audit.record(db, "run.log", "run", runID, .object(summary))
        }
    }

    public func appendLoggedModelHistory(runID: String, model: JSONObject) async throws {
        let key = "mlflow.log-model.history"
        try await write { db, audit in
            let status = try await Self.requireActiveRun(db, runID)
            try await Self.requireUnsealed(db, runID, "logging to it", status: status)
            var history: [JSONValue] = []
            if let row = try await db.queryOne("SELECT value FROM tags WHERE run_uuid = ? AND key = ?", [.text(runID), .text(key)]),
                case .array(let items)? = try? JSONValue.parse(row.string(0))
            {
                history = items
            }
            history.append(.object(model))
            let value = Validation.truncated(JSONValue.array(history).jsonString, max: Validation.maxTagValueLength)
            try await db.execute(Self.upsertTagSQL, [.text(runID), .text(key), .text(value)])
            try await audit.record(db, "run.log", "run", runID, ["tags": [.string(key)]])
        }
    }

    public func deleteTag(runID: String, key: String) async throws {
        try PassportTag.refuseServerOwned([key])
        try await write { db, audit in
            let status = try await Self.requireActiveRun(db, runID)
            if !Self.isNoteTag(key) { try await Self.requireUnsealed(db, runID, "deleting its tag '\(key)'", status: status) }
            let n = try await db.execute("DELETE FROM tags WHERE run_uuid = ? AND key = ?", [.text(runID), .text(key)])
            if n == 0 { throw RepriseError.notFound("No tag with name: \(key) in run with id \(runID)") }
            try await audit.record(db, "run.delete_tag", "run", runID, ["key": .string(key)])
        }
    }

    public func logInputs(runID: String, _ inputs: RunInputs) async throws {
        let (datasets, modelIDs) = (inputs.datasets, inputs.modelIDs)
        try await write { db, audit in
            let status = try await Self.requireActiveRun(db, runID)
            try await Self.requireUnsealed(db, runID, "logging inputs to it", status: status)
            let exp = try await db.queryOne("SELECT experiment_id FROM runs WHERE run_uuid = ?", [.text(runID)])!.int(0)
            var position = try await db.queryOne("SELECT COALESCE(MAX(position), -1) + 1 FROM run_inputs WHERE run_uuid = ?", [.text(runID)])!.int(0)
            for input in datasets {
                let uuid = try await Self.datasetUUID(db, experimentID: exp, input.dataset)
                let inserted = try await db.execute(
                    "INSERT INTO run_inputs (run_uuid, dataset_uuid, position) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    [.text(runID), .text(uuid), .int(position)])
                // Logging the same dataset again keeps the first input and its tags, as the reference does.
                guard inserted > 0 else { continue }
                position += 1
                for t in input.tags {
                    try await db.execute(
                        "INSERT INTO input_tags (run_uuid, dataset_uuid, key, value) VALUES (?, ?, ?, ?) ON CONFLICT (run_uuid, dataset_uuid, key) DO UPDATE SET value = excluded.value",
                        [.text(runID), .text(uuid), .text(t.key), .text(t.value)])
                }
            }
            for m in modelIDs {
                try await db.execute(
                    "INSERT INTO run_model_inputs (run_uuid, model_id) VALUES (?, ?) ON CONFLICT DO NOTHING", [.text(runID), .text(m)])
            }
            try await audit.record(
                db, "run.log_inputs", "run", runID,
                ["datasets": .array(datasets.map { .string("\($0.dataset.name)@\($0.dataset.digest)") }),
                 "models": .array(modelIDs.map(JSONValue.string))])
        }
    }

    /// The stored dataset of an experiment with this name and digest, added when new: one row per
    /// (experiment, name, digest), shared by every run that logs it.
    static func datasetUUID(_ db: any SQLConnection, experimentID exp: Int64, _ d: Dataset) async throws -> String {
        if let row = try await db.queryOne(
            "SELECT dataset_uuid FROM datasets WHERE experiment_id = ? AND name = ? AND digest = ?",
            [.int(exp), .text(d.name), .text(d.digest)])
        {
            return row.string(0)
        }
        let uuid = Self.newID()
        try await db.execute(
            "INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, source_type, source, schema, profile) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [.text(uuid), .int(exp), .text(d.name), .text(d.digest), .text(d.sourceType), .text(d.source),
             SQLValue(d.schema), SQLValue(d.profile)])
        return uuid
    }

    public func logOutputs(runID: String, outputs: [ModelOutput]) async throws {
        try await write { db, audit in
            let status = try await Self.requireActiveRun(db, runID)
            try await Self.requireUnsealed(db, runID, "logging outputs to it", status: status)
            for o in outputs {
                try await db.execute(
                    "INSERT INTO run_model_outputs (run_uuid, model_id, step) VALUES (?, ?, ?) ON CONFLICT (run_uuid, model_id) DO UPDATE SET step = excluded.step",
                    [.text(runID), .text(o.modelID), .int(o.step)])
            }
            try await audit.record(db, "run.log_outputs", "run", runID, ["models": .array(outputs.map { .string($0.modelID) })])
        }
    }

    // MARK: - Search

    func runClause(_ c: FilterClause) -> (String, [SQLValue]) {
        switch c.entity {
        case .metric:
            let (cmp, b) = metricComparison(alias: "m", c)
            return (
                "EXISTS (SELECT 1 FROM latest_metrics m WHERE m.run_uuid = r.run_uuid AND m.key = ? AND \(cmp))",
                [.text(c.key)] + b
            )
        case .param:
            return tagLikeClause(table: "params", idColumn: "run_uuid", outer: "r.run_uuid", c)
        case .tag:
            return tagLikeClause(table: "tags", idColumn: "run_uuid", outer: "r.run_uuid", c)
        case .attribute:
            switch c.key {
            case "start_time", "end_time":
                guard case .number(let d, _) = c.value else { return ("1 = 0", []) }
                return ("r.\(c.key) \(c.comparator.rawValue) ?", [.double(d)])
            case "run_id": return stringComparison("r.run_uuid", c)
            case "run_name": return stringComparison("r.name", c)
            default: return stringComparison("r.\(c.key)", c)
            }
        case .dataset:
            if c.key == "context" {
                let (frag, b) = stringComparison("t.value", c)
                return (
                    "EXISTS (SELECT 1 FROM input_tags t WHERE t.run_uuid = r.run_uuid AND t.key = 'mlflow.data.context' AND \(frag))",
                    b
                )
            }
            let (frag, b) = stringComparison("d.\(c.key)", c)
            return (
                "EXISTS (SELECT 1 FROM run_inputs i JOIN datasets d ON d.dataset_uuid = i.dataset_uuid WHERE i.run_uuid = r.run_uuid AND \(frag))",
                b
            )
        }
    }

    public func searchRuns(_ query: RunSearchQuery) async throws -> Page<Run> {
        if query.experimentIDs.isEmpty { return Page(items: [], nextOffset: nil) }
        var joins = ""
        var joinBinds: [SQLValue] = []
        var order: [String] = []
        var hasStart = false
        // The plan depends on how selective the metric filters are. A selective one (few matching
        // values in the (key, value) index) drives the query: join on it, sort the few matches. When
        // every metric filter matches many runs, walking the experiment's runs in the requested order
        // and checking each with EXISTS stops as soon as a page is full. A bounded count of index
        // entries tells the two apart in about a millisecond.
        let metricFilters = query.filter.filter { $0.entity == .metric }
        var driving: String?
        if let first = query.orderBy.first, first.entity == .metric, metricFilters.contains(where: { $0.key == first.key }) {
            // Filtered and ordered by the same metric: reading its index in value order finds the
            // page's runs first, however many match.
            driving = first.key
        } else if !metricFilters.isEmpty {
            let probes = metricFilters.map { c -> (String, String, [SQLValue]) in
                let (cmp, b) = metricComparison(alias: "p", c)
                return (c.key, "SELECT COUNT(*) FROM (SELECT 1 FROM latest_metrics p WHERE p.key = ? AND \(cmp) LIMIT \(Self.selectiveMetricLimit)) AS probe", [.text(c.key)] + b)
            }
            let counts = try await read { db in try await probes.asyncMap { ($0.0, try await db.queryOne($0.1, $0.2)?.int(0) ?? 0) } }
            if let best = counts.min(by: { $0.1 < $1.1 }), best.1 < Int64(Self.selectiveMetricLimit) { driving = best.0 }
        }
        var metricJoins: [String: String] = [:]
        var metricConditions: [(String, [SQLValue])] = []
        for c in metricFilters {
            guard c.key == driving else {
                metricConditions.append(runClause(c))
                continue
            }
            let a = metricJoins[c.key] ?? {
                let alias = "f\(metricJoins.count)"
                metricJoins[c.key] = alias
                joins += " JOIN latest_metrics \(alias) ON \(alias).run_uuid = r.run_uuid AND \(alias).key = ?"
                joinBinds.append(.text(c.key))
                return alias
            }()
            metricConditions.append(metricComparison(alias: a, c))
        }
        // A first order term on a metric that no filter joined is read from its index instead; its
        // join (alias o0) is added per part by `metricOrderedPage`.
        var leadingMetric: (key: String, dir: String)?
        for (n, t) in query.orderBy.enumerated() {
            let dir = t.ascending ? "ASC" : "DESC"
            let a = "o\(n)"
            switch t.entity {
            case .metric:
                if let joined = metricJoins[t.key] {
                    order.append("\(joined).is_nan")
                    order.append("\(joined).value \(dir)")
                    continue
                }
                if n == 0 {
                    leadingMetric = (t.key, dir)
                } else {
                    joins += " LEFT JOIN latest_metrics \(a) ON \(a).run_uuid = r.run_uuid AND \(a).key = ?"
                    joinBinds.append(.text(t.key))
                }
                order.append("CASE WHEN \(a).run_uuid IS NULL THEN 2 WHEN \(a).is_nan = 1 THEN 1 ELSE 0 END")
                order.append("\(a).value \(dir)")
            case .param, .tag:
                let table = t.entity == .param ? "params" : "tags"
                joins += " LEFT JOIN \(table) \(a) ON \(a).run_uuid = r.run_uuid AND \(a).key = ?"
                joinBinds.append(.text(t.key))
                order.append("CASE WHEN \(a).run_uuid IS NULL THEN 1 ELSE 0 END")
                order.append("\(a).value \(dir)")
            case .attribute:
                let column: String
                switch t.key {
                case "run_id": column = "r.run_uuid"
                case "run_name": column = "r.name"
                default: column = "r.\(t.key)"
                }
                if t.key == "start_time" { hasStart = true }
                // NOT NULL columns need no nulls-last term, which would also keep SQLite from
                // reading them in index order.
                if !["r.start_time", "r.run_uuid", "r.name", "r.user_id", "r.status"].contains(column) {
                    order.append("CASE WHEN \(column) IS NULL THEN 1 ELSE 0 END")
                }
                order.append("\(column) \(dir)")
            case .dataset:
                continue
            }
        }
        if !hasStart { order.append("r.start_time DESC") }
        order.append("r.run_uuid ASC")

        var whereSQL = " WHERE r.experiment_id IN (\(placeholders(query.experimentIDs.count)))"
        var whereBinds = query.experimentIDs.map(SQLValue.int)
        whereSQL += " AND r.lifecycle_stage IN (\(placeholders(query.viewType.stages.count)))"
        whereBinds += query.viewType.stages.map { .text($0.rawValue) }
        for (frag, b) in metricConditions {
            whereSQL += " AND " + frag
            whereBinds += b
        }
        for c in query.filter where c.entity != .metric {
            let (frag, b) = runClause(c)
            whereSQL += " AND " + frag
            whereBinds += b
        }
        if let lead = leadingMetric {
            return try await metricOrderedPage(
                key: lead.key, dir: lead.dir, joins: joins, joinBinds: joinBinds, whereSQL: whereSQL, whereBinds: whereBinds, order: order,
                maxResults: query.maxResults, offset: query.offset)
        }
        return try await page(
            sql: "SELECT r.run_uuid FROM runs r\(joins)\(whereSQL)", binds: joinBinds + whereBinds, order: order,
            maxResults: query.maxResults, offset: query.offset, load: { [dialect] db, ids in try await Self.loadRuns(db, ids: ids, dialect: dialect) })
    }

    /// Runs ordered by a metric, in two parts: runs with a value for it, read in value order straight
    /// from the (key, value) index so a page costs a few lookups whatever the experiment's size; then
    /// runs whose value is NaN or missing, in MLflow's order, only when a page reaches them.
    func metricOrderedPage(
        key: String, dir: String, joins: String, joinBinds: [SQLValue], whereSQL: String, whereBinds: [SQLValue], order: [String],
        maxResults: Int, offset: Int
    ) async throws -> Page<Run> {
        // Valued runs, read in the metric index's order (SQLite: a CROSS JOIN keeps that table outer);
        // ties are sorted within each value.
        let valuedSQL = "SELECT r.run_uuid FROM latest_metrics o0 \(dialect.orderedJoin) runs r ON r.run_uuid = o0.run_uuid\(joins)\(whereSQL) AND o0.key = ? AND o0.is_nan = 0"
        let valuedBinds = joinBinds + whereBinds + [.text(key)]
        let valuedOrder = ["o0.value \(dir)"] + order.dropFirst(2)
        let restSQL = "SELECT r.run_uuid FROM runs r LEFT JOIN latest_metrics o0 ON o0.run_uuid = r.run_uuid AND o0.key = ?\(joins)\(whereSQL) AND (o0.run_uuid IS NULL OR o0.is_nan = 1)"
        let restBinds = [.text(key)] + joinBinds + whereBinds
        let want = maxResults + 1
        return try await read { db in
            var ids = try await db.query(
                valuedSQL + " ORDER BY " + valuedOrder.joined(separator: ", ") + " LIMIT ? OFFSET ?",
                valuedBinds + [.int(Int64(want)), .int(Int64(offset))]
            ).map { $0.string(0) }
            if ids.count < want {
                let valuedTotal = ids.isEmpty
                    ? Int(try await db.queryOne("SELECT COUNT(*) FROM (\(valuedSQL)) AS valued", valuedBinds)?.int(0) ?? 0) : offset + ids.count
                ids += try await db.query(
                    restSQL + " ORDER BY " + order.joined(separator: ", ") + " LIMIT ? OFFSET ?",
                    restBinds + [.int(Int64(want - ids.count)), .int(Int64(max(0, offset - valuedTotal)))]
                ).map { $0.string(0) }
            }
            let more = ids.count > maxResults
            return Page(items: try await Self.loadRuns(db, ids: Array(ids.prefix(maxResults)), dialect: self.dialect), nextOffset: more ? offset + maxResults : nil)
        }
    }

    public func metricRanges(runIDs: [String], keys: [String]) async throws -> [String: [String: (min: Double, max: Double)]] {
        if runIDs.isEmpty || keys.isEmpty { return [:] }
        let ids = Array(runIDs.prefix(1000))
        let ks = Array(keys.prefix(100))
        return try await read { db in
            var out: [String: [String: (min: Double, max: Double)]] = [:]
            for row in try await db.query(
                "SELECT run_uuid, key, MIN(value), MAX(value) FROM metrics WHERE run_uuid IN (\(placeholders(ids.count))) AND key IN (\(placeholders(ks.count))) AND is_nan = 0 GROUP BY run_uuid, key",
                ids.map(SQLValue.text) + ks.map(SQLValue.text))
            {
                out[row.string(0), default: [:]][row.string(1)] = (row.double(2), row.double(3))
            }
            return out
        }
    }

    /// Below this many matching index entries a metric filter is selective enough to drive a search.
    static let selectiveMetricLimit = 5000

    public func experimentActivity(experimentIDs: [String]) async throws -> [String: (runs: Int, lastActivity: Int64)] {
        let ids = experimentIDs.compactMap { Int64($0) }
        if ids.isEmpty { return [:] }
        return try await read { db in
            var out: [String: (runs: Int, lastActivity: Int64)] = [:]
            for row in try await db.query(
                "SELECT experiment_id, COUNT(*), MAX(COALESCE(end_time, start_time)) FROM runs WHERE lifecycle_stage = 'active' AND experiment_id IN (\(placeholders(ids.count))) GROUP BY experiment_id",
                ids.map { .int($0) })
            {
                out[row.string(0)] = (Int(row.int(1)), row.int(2))
            }
            return out
        }
    }

    public func searchDatasets(experimentIDs: [String]) async throws -> [DatasetSummary] {
        let ids = try experimentIDs.map { try Validation.validateExperimentID($0) }
        if ids.isEmpty { return [] }
        return try await read { db in
            try await db.query(
                """
                SELECT DISTINCT d.experiment_id, d.name, d.digest, t.value
                FROM datasets d JOIN run_inputs i ON i.dataset_uuid = d.dataset_uuid
                LEFT JOIN input_tags t ON t.run_uuid = i.run_uuid AND t.dataset_uuid = i.dataset_uuid AND t.key = 'mlflow.data.context'
                WHERE d.experiment_id IN (\(placeholders(ids.count)))
                ORDER BY d.experiment_id, d.name, d.digest, t.value NULLS FIRST
                LIMIT 1000
                """, ids.map(SQLValue.int)
            ).map { DatasetSummary(experimentID: $0.string(0), name: $0.string(1), digest: $0.string(2), context: $0.optionalString(3)) }
        }
    }

    // MARK: - Metric history

    public func metricHistory(runID: String, key: String, offset: Int, limit: Int?) async throws -> Page<Metric> {
        let (sql, binds, limit, offset) = Self.historyQuery(runID: runID, key: key, offset: offset, limit: limit)
        return try await read { db in
            let rows = try await db.query(sql, binds)
            let more = limit.map { rows.count > $0 } ?? false
            let metrics = rows.prefix(limit ?? rows.count).map { Self.metric($0, from: 0) }
            return Page(items: metrics, nextOffset: more ? offset + limit! : nil)
        }
    }

    public func metricHistoryEncoded(runID: String, key: String, offset: Int, limit: Int?) async throws -> EncodedMetrics {
        let (sql, binds, limit, offset) = Self.historyQuery(runID: runID, key: key, offset: offset, limit: limit, withKey: false)
        return try await read { db in
            var out = EncodedMetrics()
            var more = false
            // Every point has the requested key (the query matches it exactly): its JSON is written
            // once, copied per point, and the key column is not read. Columns: value, is_nan,
            // timestamp, step, model_id, dataset_name, dataset_digest.
            var head: [UInt8] = []
            Metric.writeHead(key: key, to: &head)
            try await db.scan(sql, binds) { row in
                if let limit, out.count == limit {
                    more = true
                    return
                }
                out.append { bytes in
                    bytes.append(contentsOf: head)
                    Metric.writeTail(
                        value: Self.metricValue(row, at: 0), timestamp: row.int(2), step: row.int(3), modelID: row.optionalString(4),
                        datasetName: row.optionalString(5), datasetDigest: row.optionalString(6), runID: nil, to: &bytes)
                }
            }
            if more { out.nextOffset = offset + limit! }
            return out
        }
    }

    /// One page of a history in (timestamp, step, value) order, with one row more than the page
    /// to tell whether another follows; the bounds clamped so `limit + 1` and `offset + limit`
    /// cannot overflow whatever a caller passes.
    /// `withKey: false` leaves out the key column (the caller knows it).
    static func historyQuery(runID: String, key: String, offset: Int, limit: Int?, withKey: Bool = true) -> (String, [SQLValue], Int?, Int) {
        let limit = limit.map { max(1, min($0, Int(Int32.max))) }
        let offset = max(0, min(offset, Int(Int32.max)))
        var sql =
            "SELECT \(withKey ? "key, " : "")value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest FROM metrics WHERE run_uuid = ? AND key = ? ORDER BY timestamp, step, value"
        var binds: [SQLValue] = [.text(runID), .text(key)]
        if let limit {
            sql += " LIMIT ? OFFSET ?"
            binds += [.int(Int64(limit + 1)), .int(Int64(offset))]
        } else if offset > 0 {
            // No limit: the largest one (`LIMIT -1` and `LIMIT ALL` are each one database's).
            sql += " LIMIT ? OFFSET ?"
            binds += [.int(Int64.max), .int(Int64(offset))]
        }
        return (sql, binds, limit, offset)
    }

    public func metricHistoryBulk(runIDs: [String], key: String, maxResults: Int) async throws -> [Metric] {
        try await read { db in
            var out: [Metric] = []
            for id in runIDs.sorted() {
                let rows = try await db.query(
                    "SELECT key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest FROM metrics WHERE run_uuid = ? AND key = ? ORDER BY timestamp, step, value LIMIT ?",
                    [.text(id), .text(key), .int(Int64(maxResults - out.count))])
                out += rows.map { Self.metric($0, from: 0, runID: id) }
                if out.count >= maxResults { break }
            }
            return out
        }
    }

    public func metricHistoryBulkInterval(
        runIDs: [String], key: String, startStep: Int64?, endStep: Int64?, maxResults: Int
    ) async throws -> [Metric] {
        try await read { db in
            var perRun: [(String, [Metric])] = []
            for id in runIDs {
                var sql =
                    "SELECT key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest FROM metrics WHERE run_uuid = ? AND key = ?"
                var binds: [SQLValue] = [.text(id), .text(key)]
                if let startStep, let endStep {
                    sql += " AND step >= ? AND step <= ?"
                    binds += [.int(startStep), .int(endStep)]
                }
                sql += " ORDER BY step, timestamp, value"
                perRun.append((id, try await db.query(sql, binds).map { Self.metric($0, from: 0, runID: id) }))
            }
            return perRun.flatMap { _, rows in Self.sampled(rows, maxResults: maxResults) }
        }
    }

    /// 3.17.2's sampling of one run's history (ordered by step, then timestamp): at most
    /// `maxResults` points, the first point of each of `maxResults` consecutive runs of nearly
    /// equal length (the longer ones first), with the last of them replaced by the final point.
    static func sampled<T>(_ rows: [T], maxResults: Int) -> [T] {
        let k = max(1, maxResults)
        if rows.count <= k { return rows }
        let size = rows.count / k, longer = rows.count % k
        var picked: [T] = []
        picked.reserveCapacity(k)
        var start = 0
        for i in 0..<k {
            picked.append(rows[start])
            start += size + (i < longer ? 1 : 0)
        }
        picked[k - 1] = rows[rows.count - 1]
        return picked
    }
}
