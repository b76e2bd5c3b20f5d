import Foundation
import RepriseCore

/// Where imported history came from, as its audit events and run tags say.
public struct ImportProvenance: Sendable {
    /// The source as a person reads it, without credentials (`sqlite:///…/mlflow.db`, `http://host:5000`).
    public var source: String
    /// The kind of source: `mlflow-database`, `mlflow-server`, `reprise-export`.
    public var kind: String
    /// When this import started (ms since the epoch).
    public var time: Int64

    public init(source: String, kind: String, time: Int64) {
        self.source = source
        self.kind = kind
        self.time = time
    }

    /// An audit event's summary: the source, and what else the event says.
    public func summary(_ extra: (String, JSONValue)...) -> JSONValue {
        .object(JSONObject([("source", .string(source)), ("kind", .string(kind))] + extra))
    }

    /// The key under which an unfinished import of this source keeps its place (`reprise_meta`).
    public var checkpointPrefix: String {
        "import.\(Auditor.sha256Hex(Array(source.utf8)).prefix(32))."
    }
}

extension SQLTrackingStore {
    /// Writes what a source holds, ids unchanged, in one transaction: an entity already stored
    /// (this source imported before, an interrupted import run again) is left as it is and counted
    /// as present, so an import can be repeated and never duplicates. A run is written whole (its
    /// params, tags, every metric point, inputs and outputs) or not at all. Each entity added gets
    /// an audit event by the context's actor (`import`) naming the source; runs get the
    /// `reprise.import.*` tags, with the passport fields the source could not provide listed as
    /// missing. `checkpoint`, when given, is stored in the same transaction: the source's place, so
    /// an interrupted import continues after the last batch that committed.
    ///
    /// Refused, with nothing written: an experiment whose name another experiment here already has.
    public func importBatch(
        _ batch: ImportBatch, from provenance: ImportProvenance, checkpoint: (key: String, value: String)? = nil
    ) async throws -> ImportTally {
        try await write { db, audit in
            var tally = ImportTally()
            let summary = provenance.summary()
            func count(_ entity: ImportEntity, added: Bool, _ n: Int = 1) {
                if added { tally.added[entity, default: 0] += n } else { tally.present[entity, default: 0] += n }
            }

            var highestExperiment: Int64 = -1
            for e in batch.experiments {
                guard let id = Int64(e.experimentID) else { throw RepriseError.invalid("Experiment id '\(e.experimentID)' is not a number.") }
                highestExperiment = max(highestExperiment, id)
                let values: [SQLValue] = [
                    .int(id), .text(e.name), .text(e.artifactLocation), .text(e.lifecycleStage.rawValue), .int(e.creationTime),
                    .int(e.lastUpdateTime),
                ]
                var added = try await db.execute(
                    "INSERT INTO experiments (\(Self.experimentColumns)) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", values) > 0
                // The Default experiment every store starts with is a placeholder until it has runs:
                // the source's takes its place (its location, times and tags).
                if !added, id == 0,
                    try await db.queryOne("SELECT 1 FROM runs WHERE experiment_id = 0 LIMIT 1", []) == nil,
                    try await db.queryOne("SELECT 1 FROM experiment_tags WHERE experiment_id = 0 LIMIT 1", []) == nil,
                    try await db.queryOne("SELECT 1 FROM experiments WHERE name = ? AND experiment_id <> 0", [.text(e.name)]) == nil
                {
                    added = try await db.execute(
                        """
                        UPDATE experiments SET name = ?, artifact_location = ?, lifecycle_stage = ?, creation_time = ?, last_update_time = ?
                        WHERE experiment_id = 0
                          AND NOT (name = ? AND artifact_location = ? AND lifecycle_stage = ? AND creation_time = ? AND last_update_time = ?)
                        """, Array(values.dropFirst()) + Array(values.dropFirst())) > 0
                }
                if !added, try await db.queryOne("SELECT 1 FROM experiments WHERE experiment_id = ?", [.int(id)]) == nil {
                    let other = try await db.queryOne("SELECT experiment_id FROM experiments WHERE name = ?", [.text(e.name)])?.string(0) ?? "?"
                    throw RepriseError(
                        .resourceAlreadyExists,
                        "Experiment '\(e.name)' (id \(id) in the source) has the name of experiment \(other) here. Import into an empty store, or rename one of them first.")
                }
                try await db.executeRows(e.tags.map { [.int(id), .text($0.key), .text($0.value)] }) { n in
                    "INSERT INTO experiment_tags (experiment_id, key, value) VALUES \(valueRows(n, width: 3)) ON CONFLICT DO NOTHING"
                }
                count(.experiments, added: added)
                if added { try await audit.record(db, "import.experiment", "experiment", e.experimentID, summary) }
            }
            if highestExperiment >= 0 {
                // New experiments must not be given an id the import brought in.
                try await db.execute(
                    "UPDATE id_counters SET next = ? WHERE name = 'experiments' AND next <= ?", [.int(highestExperiment + 1), .int(highestExperiment)])
            }

            try await Self.importRuns(db, batch.runs, provenance: provenance, audit: audit, tally: &tally)

            for m in batch.loggedModels {
                let added = try await db.execute(
                    "INSERT INTO logged_models (model_id, experiment_id, name, artifact_uri, creation_time, last_updated_time, status, status_message, model_type, source_run_id, lifecycle_stage) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [.text(m.modelID), .int(try Self.importedExperimentID(m.experimentID, of: "Logged model \(m.modelID)")), .text(m.name), .text(m.artifactURI), .int(m.creationTime),
                     .int(m.lastUpdatedTime), .text(m.status.rawValue), SQLValue(m.statusMessage), .text(m.modelType),
                     SQLValue(m.sourceRunID), .text(m.lifecycleStage.rawValue)]) > 0
                count(.loggedModels, added: added)
                guard added else { continue }
                try await db.executeRows(m.tags.map { [.text(m.modelID), .text($0.key), .text($0.value)] }) { n in
                    "INSERT INTO logged_model_tags (model_id, key, value) VALUES \(valueRows(n, width: 3)) ON CONFLICT DO NOTHING"
                }
                try await db.executeRows(m.params.map { [.text(m.modelID), .text($0.key), .text($0.value)] }) { n in
                    "INSERT INTO logged_model_params (model_id, key, value) VALUES \(valueRows(n, width: 3)) ON CONFLICT DO NOTHING"
                }
                try await db.executeRows(m.metrics.map { p -> [SQLValue] in
                    let (value, isNaN) = Self.storedValue(p.value)
                    return [.text(m.modelID), .text(p.key), .int(p.timestamp), .int(p.step), .double(value), .int(isNaN),
                            .text(p.runID ?? ""), SQLValue(p.datasetName), SQLValue(p.datasetDigest)]
                }) { n in
                    "INSERT INTO logged_model_metrics (model_id, key, timestamp, step, value, is_nan, run_uuid, dataset_name, dataset_digest) VALUES \(valueRows(n, width: 9))"
                }
                try await audit.record(db, "import.logged_model", "logged_model", m.modelID, summary)
            }

            for rm in batch.registeredModels {
                let m = rm.model
                let added = try await db.execute(
                    "INSERT INTO registered_models (name, creation_time, last_updated_time, description, user_id) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [.text(m.name), .int(m.creationTime), .int(m.lastUpdatedTime), .text(m.description), .text(m.userID)]) > 0
                count(.registeredModels, added: added)
                if added {
                    try await db.executeRows(m.tags.map { [.text(m.name), .text($0.key), .text($0.value)] }) { n in
                        "INSERT INTO registered_model_tags (name, key, value) VALUES \(valueRows(n, width: 3)) ON CONFLICT DO NOTHING"
                    }
                }
                // Versions and aliases the source gained since an earlier import come too.
                var newVersions = 0
                for v in rm.versions {
                    let versionAdded = try await db.execute(
                        "INSERT INTO model_versions (name, version, creation_time, last_updated_time, description, user_id, current_stage, source, storage_location, run_id, run_link, status, status_message, model_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        [.text(v.name), .int(v.version), .int(v.creationTime), .int(v.lastUpdatedTime), .text(v.description), .text(v.userID),
                         .text(v.currentStage), .text(v.source), .text(v.storageLocation), .text(v.runID), .text(v.runLink), .text(v.status),
                         .text(v.statusMessage), .text(v.modelID)]) > 0
                    count(.modelVersions, added: versionAdded)
                    guard versionAdded else { continue }
                    newVersions += 1
                    try await db.executeRows(v.tags.map { [.text(v.name), .int(v.version), .text($0.key), .text($0.value)] }) { n in
                        "INSERT INTO model_version_tags (name, version, key, value) VALUES \(valueRows(n, width: 4)) ON CONFLICT DO NOTHING"
                    }
                }
                var newAliases = 0
                for (alias, version) in m.aliases {
                    let aliasAdded = try await db.execute(
                        "INSERT INTO registered_model_aliases (name, alias, version) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                        [.text(m.name), .text(alias), .int(version)]) > 0
                    count(.aliases, added: aliasAdded)
                    if aliasAdded { newAliases += 1 }
                }
                guard added || newVersions > 0 || newAliases > 0 else { continue }
                try await audit.record(
                    db, "import.registered_model", "registered_model", m.name,
                    provenance.summary(
                        ("versions", .int(Int64(rm.versions.count))),
                        ("aliases", .object(JSONObject(m.aliases.map { ($0.0, JSONValue.int($0.1)) })))))
            }

            for w in batch.webhooks {
                let hook = w.webhook
                let status: WebhookStatus = w.hadSecret ? .disabled : hook.status
                let added = try await db.execute(
                    "INSERT INTO webhooks (\(Self.webhookColumns), secret) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '') ON CONFLICT DO NOTHING",
                    [.text(hook.id), .text(hook.name), .text(hook.description), .text(hook.url), .text(Self.encodeEvents(hook.events)),
                     .text(status.rawValue), .int(hook.creationTime), .int(hook.lastUpdatedTime)]) > 0
                count(.webhooks, added: added)
                if added {
                    try await audit.record(
                        db, "import.webhook", "webhook", hook.id,
                        provenance.summary(("status", .string(status.rawValue)), ("secret", .string(w.hadSecret ? "not imported" : "none"))))
                }
            }

            if let checkpoint {
                try await db.execute(
                    "INSERT INTO reprise_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [.text(checkpoint.key), .text(checkpoint.value)])
            }
            return tally
        }
    }

    static func importedExperimentID(_ id: String, of what: String) throws -> Int64 {
        guard let n = Int64(id) else { throw RepriseError.invalid("\(what): experiment id '\(id)' is not a number.") }
        return n
    }

    /// Runs, each whole, unless stored already: a few multi-row statements for the whole page of
    /// runs (the run rows, then their params, tags, points and latest values), so a page of 200
    /// runs is a handful of round trips on PostgreSQL rather than a dozen per run.
    static func importRuns(
        _ db: any SQLConnection, _ runs: [ImportedRun], provenance: ImportProvenance, audit: Auditor, tally: inout ImportTally
    ) async throws {
        if runs.isEmpty { return }
        var experiments: [String: Int64] = [:]
        var rows: [[SQLValue]] = []
        for r in runs {
            guard let experiment = Int64(r.info.experimentID) else {
                throw RepriseError.invalid("Run \(r.info.runID): experiment id '\(r.info.experimentID)' is not a number.")
            }
            experiments[r.info.runID] = experiment
            rows.append([
                .text(r.info.runID), .int(experiment), .text(r.info.runName), .text(r.info.userID), .text(r.info.status.rawValue),
                .int(r.info.startTime), SQLValue(r.info.endTime), SQLValue(r.deletedTime), .text(r.info.lifecycleStage.rawValue),
                .text(r.info.artifactURI),
            ])
        }
        // Only the runs this statement inserted come back: the others were here already.
        var added: Set<String> = []
        for start in stride(from: 0, to: rows.count, by: 100) {
            let part = rows[start..<min(start + 100, rows.count)]
            for row in try await db.query(
                "INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, end_time, deleted_time, lifecycle_stage, artifact_uri) VALUES \(valueRows(part.count, width: 10)) ON CONFLICT DO NOTHING RETURNING run_uuid",
                part.flatMap { $0 })
            {
                added.insert(row.string(0))
            }
        }
        if added.count < runs.count { tally.present[.runs, default: 0] += runs.count - added.count }
        let fresh = runs.filter { added.contains($0.info.runID) }
        if fresh.isEmpty { return }

        var params: [[SQLValue]] = []
        var tags: [[SQLValue]] = []
        var points: [[SQLValue]] = []
        var latest: [[SQLValue]] = []
        var modelInputs: [[SQLValue]] = []
        var modelOutputs: [[SQLValue]] = []
        var missingByRun: [String: [String]] = [:]
        for r in fresh {
            let id = r.info.runID
            params += r.params.map { [.text(id), .text($0.key), .text($0.value)] }
            // Provenance, and the passport fields the source could not provide: listed, not invented.
            var runTags = r.tags.filter { !ImportTag.isImportTag($0.key) && !PassportTag.isServerOwned($0.key) }
            let tagMap = Dictionary(runTags.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            let missing = PassportField.allCases.filter { !$0.isPresent(tags: tagMap, datasets: r.datasetInputs.count) }.map(\.rawValue)
            missingByRun[id] = missing
            tally.added[.tags, default: 0] += runTags.count
            runTags.append(KeyValue(ImportTag.source, provenance.source))
            runTags.append(KeyValue(ImportTag.time, String(provenance.time)))
            runTags.append(KeyValue(ImportTag.passportMissing, missing.joined(separator: ",")))
            tags += runTags.map { [.text(id), .text($0.key), .text($0.value)] }
            points += r.history.map { metricBinds(id, $0) }
            latest += r.latest.map { metricBinds(id, $0) }
            modelInputs += r.modelInputs.map { [.text(id), .text($0)] }
            modelOutputs += r.modelOutputs.map { [.text(id), .text($0.modelID), .int($0.step)] }
        }
        try await db.executeRows(params) { n in
            "INSERT INTO params (run_uuid, key, value) VALUES \(valueRows(n, width: 3)) ON CONFLICT DO NOTHING"
        }
        try await db.executeRows(tags) { n in
            "INSERT INTO tags (run_uuid, key, value) VALUES \(valueRows(n, width: 3)) ON CONFLICT DO NOTHING"
        }
        if points.count >= bulkThreshold, let bulk = db as? any SQLBulkInsert {
            try await bulk.insertIgnoringDuplicates(into: "metrics", columns: metricColumns, rows: points)
        } else {
            try await db.executeRows(points, chunk: metricChunk) { multiRowMetricInserts[$0] }
        }
        try await db.executeRows(latest, chunk: metricChunk) { multiRowLatestUpserts[$0] }
        // The runs are new here: their histories' tiles come from what was stored, whatever the
        // source held twice.
        for start in stride(from: 0, to: fresh.count, by: 100) {
            let ids = fresh[start..<min(start + 100, fresh.count)].map { SQLValue.text($0.info.runID) }
            try await db.execute(MetricTiles.rebuildSQL(scope: "run_uuid IN (\(placeholders(ids.count)))"), ids)
        }
        try await db.executeRows(modelInputs) { n in
            "INSERT INTO run_model_inputs (run_uuid, model_id) VALUES \(valueRows(n, width: 2)) ON CONFLICT DO NOTHING"
        }
        try await db.executeRows(modelOutputs) { n in
            "INSERT INTO run_model_outputs (run_uuid, model_id, step) VALUES \(valueRows(n, width: 3)) ON CONFLICT DO NOTHING"
        }
        for r in fresh {
            let id = r.info.runID
            var position: Int64 = 0
            for input in r.datasetInputs {
                let uuid = try await datasetUUID(db, experimentID: experiments[id]!, input.dataset)
                guard try await db.execute(
                    "INSERT INTO run_inputs (run_uuid, dataset_uuid, position) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    [.text(id), .text(uuid), .int(position)]) > 0
                else { continue }
                position += 1
                try await db.executeRows(input.tags.map { [.text(id), .text(uuid), .text($0.key), .text($0.value)] }) { n in
                    "INSERT INTO input_tags (run_uuid, dataset_uuid, key, value) VALUES \(valueRows(n, width: 4)) ON CONFLICT DO NOTHING"
                }
            }
            tally.added[.runs, default: 0] += 1
            tally.added[.params, default: 0] += r.params.count
            tally.added[.metricPoints, default: 0] += r.history.count
            tally.added[.datasets, default: 0] += Int(position)
            try await audit.record(
                db, "import.run", "run", id,
                provenance.summary(
                    ("experiment_id", .string(r.info.experimentID)), ("metric_points", .int(Int64(r.history.count))),
                    ("passport_missing", .array((missingByRun[id] ?? []).map(JSONValue.string)))))
        }
    }

    /// The stored place of an unfinished import (`importBatch`'s checkpoint), if any.
    public func importCheckpoint(_ key: String) async throws -> String? {
        try await read { db in try await db.queryOne("SELECT value FROM reprise_meta WHERE key = ?", [.text(key)])?.string(0) }
    }

    /// Whether an unfinished import or restore left places under `prefix`.
    public func hasImportCheckpoints(prefix: String) async throws -> Bool {
        try await read { db in
            try await db.queryOne("SELECT 1 FROM reprise_meta WHERE key LIKE ? ESCAPE '\\' LIMIT 1", [.text(Self.likePrefix(prefix))]) != nil
        }
    }

    /// Forgets an import's places once it has finished: the next import of that source starts from
    /// the beginning, bringing what the source gained since and skipping what is here.
    public func clearImportCheckpoints(prefix: String) async throws {
        try await write { db, _ in
            try await db.execute("DELETE FROM reprise_meta WHERE key LIKE ? ESCAPE '\\'", [.text(Self.likePrefix(prefix))])
        }
    }

    /// A LIKE pattern (with `ESCAPE '\'`) matching what starts with `prefix`.
    static func likePrefix(_ prefix: String) -> String { likeEscape(prefix) + "%" }

    /// `text` as a literal inside a LIKE pattern with `ESCAPE '\'`.
    static func likeEscape(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
            .replacingOccurrences(of: "_", with: "\\_")
    }

    /// What this store holds of the given runs, for an import's verification: runs, params, tags
    /// (the import's own `reprise.import.*` tags not counted) and metric points.
    public func importedRunCounts(_ runIDs: [String]) async throws -> [ImportEntity: Int] {
        try await read { db in
            var out: [ImportEntity: Int] = [:]
            for start in stride(from: 0, to: runIDs.count, by: 500) {
                let chunk = runIDs[start..<min(start + 500, runIDs.count)].map(SQLValue.text)
                let list = placeholders(chunk.count)
                out[.runs, default: 0] += Int(try await db.queryOne("SELECT COUNT(*) FROM runs WHERE run_uuid IN (\(list))", chunk)!.int(0))
                out[.params, default: 0] += Int(try await db.queryOne("SELECT COUNT(*) FROM params WHERE run_uuid IN (\(list))", chunk)!.int(0))
                out[.tags, default: 0] += Int(
                    try await db.queryOne(
                        "SELECT COUNT(*) FROM tags WHERE run_uuid IN (\(list)) AND key NOT LIKE 'reprise.import.%'", chunk)!.int(0))
                out[.metricPoints, default: 0] += Int(
                    try await db.queryOne("SELECT COUNT(*) FROM metrics WHERE run_uuid IN (\(list))", chunk)!.int(0))
                out[.datasets, default: 0] += Int(
                    try await db.queryOne("SELECT COUNT(*) FROM run_inputs WHERE run_uuid IN (\(list))", chunk)!.int(0))
            }
            return out
        }
    }

    /// How many of the named entities this store holds, for an import's verification.
    public func importedCounts(
        experiments: [String], loggedModels: [String], registeredModels: [String], webhooks: [String]
    ) async throws -> [ImportEntity: Int] {
        try await read { db in
            func count(_ table: String, _ column: String, _ ids: [SQLValue]) async throws -> Int {
                var n = 0
                for start in stride(from: 0, to: ids.count, by: 500) {
                    let chunk = Array(ids[start..<min(start + 500, ids.count)])
                    n += Int(try await db.queryOne("SELECT COUNT(*) FROM \(table) WHERE \(column) IN (\(placeholders(chunk.count)))", chunk)!.int(0))
                }
                return n
            }
            let names = registeredModels.map(SQLValue.text)
            return [
                .experiments: try await count("experiments", "experiment_id", experiments.compactMap { Int64($0) }.map(SQLValue.int)),
                .loggedModels: try await count("logged_models", "model_id", loggedModels.map(SQLValue.text)),
                .registeredModels: try await count("registered_models", "name", names),
                .modelVersions: try await count("model_versions", "name", names),
                .aliases: try await count("registered_model_aliases", "name", names),
                .webhooks: try await count("webhooks", "webhook_id", webhooks.map(SQLValue.text)),
            ]
        }
    }
}
