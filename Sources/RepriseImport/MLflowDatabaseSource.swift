import Foundation
import RepriseCore
import RepriseSQL

/// An MLflow tracking database read directly (SQLite file or PostgreSQL), the fast path of
/// `reprise import mlflow`. Read only: every query is a read on the driver, which for SQLite opens
/// the file read-only.
///
/// MLflow's schema, as its alembic migrations left it from 2.x to 3.17 (the tables this reads):
/// `experiments`, `experiment_tags`, `runs`, `params`, `tags`, `metrics` (every point; NaN as
/// value 0 with `is_nan`), `latest_metrics`, `datasets` + `inputs` + `input_tags` (dataset → run
/// edges; MLflow 3 also keeps run → logged-model edges there), `logged_models` and its `_tags`,
/// `_params`, `_metrics` (3.x), `registered_models`, `registered_model_tags`, `model_versions`,
/// `model_version_tags`, `registered_model_aliases` (2.3+), `webhooks` + `webhook_events` (3.3+).
/// Tables and columns a version lacks are looked up first and left out. From 3.10 the registry and
/// experiments carry a `workspace`; Reprise has one namespace, so the `default` workspace is
/// imported and any other is reported, not merged into it.
public final class MLflowDatabaseSource: ImportSource, @unchecked Sendable {
    let driver: any SQLDriver
    public let displayName: String
    public let kind = "mlflow-database"
    /// Set once by `open`, read-only after.
    private(set) var tables: Set<String> = []
    private(set) var workspaces = false
    private(set) var inputsHaveStep = false
    private(set) var webhooksHaveDeletion = false

    /// - Parameters:
    ///   - driver: the database, opened read-only where the driver can.
    ///   - displayName: the source as the report and audit events name it, without credentials.
    public static func open(driver: any SQLDriver, displayName: String) async throws -> MLflowDatabaseSource {
        let source = MLflowDatabaseSource(driver: driver, displayName: displayName)
        try await source.inspect()
        return source
    }

    init(driver: any SQLDriver, displayName: String) {
        self.driver = driver
        self.displayName = displayName
    }

    static let knownTables = [
        "alembic_version", "experiments", "experiment_tags", "runs", "params", "tags", "metrics", "latest_metrics", "datasets", "inputs",
        "input_tags", "logged_models", "logged_model_tags", "logged_model_params", "logged_model_metrics", "registered_models",
        "registered_model_tags", "model_versions", "model_version_tags", "registered_model_aliases", "webhooks", "webhook_events",
        "trace_info", "evaluation_datasets", "scorers", "reprise_schema_migrations",
    ]

    private func inspect() async throws {
        let dialect = driver.dialect
        let (tables, workspaces, inputsHaveStep, webhooksHaveDeletion) = try await driver.read { db in
            var found: Set<String> = []
            for t in Self.knownTables where try await db.queryOne(dialect.tableExistsSQL, [.text(t)]) != nil { found.insert(t) }
            func column(_ table: String, _ column: String) async throws -> Bool {
                try await db.queryOne(dialect.columnExistsSQL, [.text(table), .text(column)]) != nil
            }
            return (
                found, try await column("experiments", "workspace"), try await column("inputs", "step"),
                try await column("webhooks", "deleted_timestamp")
            )
        }
        guard tables.contains("alembic_version"), tables.contains("experiments"), tables.contains("runs") else {
            if tables.contains("reprise_schema_migrations") {
                throw RepriseError.invalid(
                    "\(displayName) is a Reprise store, not an MLflow one. To move a Reprise store, use `reprise export` and `reprise import reprise`.")
            }
            throw RepriseError.invalid(
                "\(displayName) is not an MLflow tracking database (it has no alembic_version, experiments and runs tables). Give the database `mlflow server --backend-store-uri` uses.")
        }
        self.tables = tables
        self.workspaces = workspaces
        self.inputsHaveStep = inputsHaveStep
        self.webhooksHaveDeletion = webhooksHaveDeletion
    }

    /// Rows of the default workspace only, where the schema has workspaces.
    private func inWorkspace(_ alias: String = "") -> String {
        workspaces ? " AND \(alias.isEmpty ? "" : alias + ".")workspace = 'default'" : ""
    }

    /// The experiments of the imported workspace, as a subquery.
    private var experimentScope: String { "SELECT experiment_id FROM experiments WHERE 1 = 1\(inWorkspace())" }

    public func describe() async throws -> [String] {
        let revision = try await driver.read { db in try await db.queryOne("SELECT version_num FROM alembic_version", [])?.string(0) }
        return ["MLflow schema revision \(revision ?? "unknown")"]
    }

    public func totals() async throws -> [ImportEntity: Int] {
        let scope = experimentScope
        let tables = self.tables
        let ws = inWorkspace()
        return try await driver.read { db in
            func n(_ sql: String) async throws -> Int { Int(try await db.queryOne(sql, [])?.int(0) ?? 0) }
            let runScope = "SELECT run_uuid FROM runs WHERE experiment_id IN (\(scope))"
            var out: [ImportEntity: Int] = [
                .experiments: try await n("SELECT COUNT(*) FROM experiments WHERE 1 = 1\(ws)"),
                .runs: try await n("SELECT COUNT(*) FROM runs WHERE experiment_id IN (\(scope))"),
                .params: try await n("SELECT COUNT(*) FROM params WHERE run_uuid IN (\(runScope))"),
                .tags: try await n("SELECT COUNT(*) FROM tags WHERE run_uuid IN (\(runScope))"),
                .metricPoints: try await n("SELECT COUNT(*) FROM metrics WHERE run_uuid IN (\(runScope))"),
            ]
            if tables.contains("inputs") {
                out[.datasets] = try await n(
                    "SELECT COUNT(*) FROM inputs WHERE source_type = 'DATASET' AND destination_type = 'RUN' AND destination_id IN (\(runScope))")
            }
            if tables.contains("logged_models") {
                out[.loggedModels] = try await n("SELECT COUNT(*) FROM logged_models WHERE experiment_id IN (\(scope))")
            }
            out[.registeredModels] = try await n("SELECT COUNT(*) FROM registered_models WHERE 1 = 1\(ws)")
            out[.modelVersions] = try await n("SELECT COUNT(*) FROM model_versions WHERE 1 = 1\(ws)")
            if tables.contains("registered_model_aliases") {
                out[.aliases] = try await n("SELECT COUNT(*) FROM registered_model_aliases WHERE 1 = 1\(ws)")
            }
            if tables.contains("webhooks") { out[.webhooks] = try await n("SELECT COUNT(*) FROM webhooks WHERE 1 = 1\(ws)") }
            return out
        }
    }

    public func experiments() async throws -> [Experiment] {
        let ws = inWorkspace()
        return try await driver.read { db in
            var tags: [Int64: [KeyValue]] = [:]
            for t in try await db.query("SELECT experiment_id, key, value FROM experiment_tags ORDER BY experiment_id, key", []) {
                tags[t.int(0), default: []].append(KeyValue(t.string(1), t.string(2)))
            }
            return try await db.query(
                "SELECT experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time FROM experiments WHERE 1 = 1\(ws) ORDER BY experiment_id",
                []
            ).map { r in
                Experiment(
                    experimentID: r.string(0), name: r.string(1), artifactLocation: r.string(2),
                    lifecycleStage: LifecycleStage(rawValue: r.string(3)) ?? .active, creationTime: r.int(4),
                    lastUpdateTime: r.optionalInt(5) ?? r.int(4), tags: tags[r.int(0)] ?? [])
            }
        }
    }

    public func runIDs(after: String?, limit: Int) async throws -> [String] {
        let scope = experimentScope
        return try await driver.read { db in
            try await db.query(
                "SELECT run_uuid FROM runs WHERE run_uuid > ? AND experiment_id IN (\(scope)) ORDER BY run_uuid LIMIT ?",
                [.text(after ?? ""), .int(Int64(limit))]
            ).map { $0.string(0) }
        }
    }

    /// A metric point of MLflow's: NaN is value 0 with the flag set.
    static func point(key: String, value: Double, isNaN: Int64, timestamp: Int64, step: Int64) -> Metric {
        Metric(key: key, value: isNaN == 1 ? .nan : value, timestamp: timestamp, step: step)
    }

    public func runs(_ ids: [String]) async throws -> [ImportedRun] {
        if ids.isEmpty { return [] }
        let hasInputs = tables.contains("inputs")
        let hasStep = inputsHaveStep
        return try await driver.read { db in
            let binds = ids.map(SQLValue.text)
            let list = placeholders(ids.count)
            var runs: [String: ImportedRun] = [:]
            var order: [String] = []
            for r in try await db.query(
                "SELECT run_uuid, experiment_id, name, user_id, status, start_time, end_time, lifecycle_stage, artifact_uri, deleted_time FROM runs WHERE run_uuid IN (\(list))",
                binds)
            {
                let id = r.string(0)
                order.append(id)
                runs[id] = ImportedRun(
                    info: RunInfo(
                        runID: id, experimentID: r.string(1), runName: r.string(2), userID: r.string(3),
                        status: RunStatus(rawValue: r.string(4)) ?? .finished, startTime: r.int(5), endTime: r.optionalInt(6),
                        artifactURI: r.string(8), lifecycleStage: LifecycleStage(rawValue: r.string(7)) ?? .active),
                    deletedTime: r.optionalInt(9))
            }
            for p in try await db.query("SELECT run_uuid, key, value FROM params WHERE run_uuid IN (\(list)) ORDER BY run_uuid, key", binds) {
                runs[p.string(0)]?.params.append(KeyValue(p.string(1), p.string(2)))
            }
            for t in try await db.query("SELECT run_uuid, key, value FROM tags WHERE run_uuid IN (\(list)) ORDER BY run_uuid, key", binds) {
                runs[t.string(0)]?.tags.append(KeyValue(t.string(1), t.string(2)))
            }
            for m in try await db.query("SELECT run_uuid, key, value, is_nan, timestamp, step FROM metrics WHERE run_uuid IN (\(list))", binds) {
                runs[m.string(0)]?.history.append(Self.point(key: m.string(1), value: m.double(2), isNaN: m.int(3), timestamp: m.int(4), step: m.int(5)))
            }
            for m in try await db.query("SELECT run_uuid, key, value, is_nan, timestamp, step FROM latest_metrics WHERE run_uuid IN (\(list))", binds) {
                runs[m.string(0)]?.latest.append(Self.point(key: m.string(1), value: m.double(2), isNaN: m.int(3), timestamp: m.int(4), step: m.int(5)))
            }
            if hasInputs {
                var inputTags: [String: [KeyValue]] = [:]
                for t in try await db.query(
                    "SELECT t.input_uuid, t.name, t.value FROM input_tags t JOIN inputs i ON i.input_uuid = t.input_uuid WHERE i.destination_type = 'RUN' AND i.destination_id IN (\(list)) ORDER BY t.input_uuid, t.name",
                    binds)
                {
                    inputTags[t.string(0), default: []].append(KeyValue(t.string(1), t.string(2)))
                }
                for d in try await db.query(
                    """
                    SELECT i.destination_id, i.input_uuid, d.name, d.digest, d.dataset_source_type, d.dataset_source, d.dataset_schema, d.dataset_profile
                    FROM inputs i JOIN datasets d ON d.dataset_uuid = i.source_id
                    WHERE i.source_type = 'DATASET' AND i.destination_type = 'RUN' AND i.destination_id IN (\(list))
                    ORDER BY i.destination_id, i.input_uuid
                    """, binds)
                {
                    runs[d.string(0)]?.datasetInputs.append(
                        DatasetInput(
                            tags: inputTags[d.string(1)] ?? [],
                            dataset: Dataset(
                                name: d.string(2), digest: d.string(3), sourceType: d.string(4), source: d.string(5),
                                schema: d.optionalString(6), profile: d.optionalString(7))))
                }
                // MLflow 3's run ↔ logged-model edges.
                for e in try await db.query(
                    "SELECT source_type, source_id, destination_id, \(hasStep ? "step" : "0") FROM inputs WHERE source_type IN ('RUN_INPUT', 'RUN_OUTPUT') AND source_id IN (\(list)) ORDER BY source_id, destination_id",
                    binds)
                {
                    if e.string(0) == "RUN_INPUT" {
                        runs[e.string(1)]?.modelInputs.append(e.string(2))
                    } else {
                        runs[e.string(1)]?.modelOutputs.append(ModelOutput(modelID: e.string(2), step: e.int(3)))
                    }
                }
            }
            return order.compactMap { id in
                guard var run = runs[id] else { return nil }
                // A run MLflow stored without a name keeps the one its tag holds, as MLflow shows it.
                if run.info.runName.isEmpty, let tag = run.tags.first(where: { $0.key == "mlflow.runName" }) { run.info.runName = tag.value }
                return run
            }
        }
    }

    public func loggedModels(after: String?, limit: Int) async throws -> [LoggedModel] {
        guard tables.contains("logged_models") else { return [] }
        let scope = experimentScope
        return try await driver.read { db in
            let rows = try await db.query(
                """
                SELECT model_id, experiment_id, name, artifact_location, creation_timestamp_ms, last_updated_timestamp_ms, status,
                  lifecycle_stage, model_type, source_run_id, status_message
                FROM logged_models WHERE model_id > ? AND experiment_id IN (\(scope)) ORDER BY model_id LIMIT ?
                """, [.text(after ?? ""), .int(Int64(limit))])
            if rows.isEmpty { return [] }
            let binds = rows.map { SQLValue.text($0.string(0)) }
            let list = placeholders(rows.count)
            var tags: [String: [KeyValue]] = [:]
            var params: [String: [KeyValue]] = [:]
            var metrics: [String: [Metric]] = [:]
            for t in try await db.query("SELECT model_id, tag_key, tag_value FROM logged_model_tags WHERE model_id IN (\(list)) ORDER BY model_id, tag_key", binds) {
                tags[t.string(0), default: []].append(KeyValue(t.string(1), t.string(2)))
            }
            for p in try await db.query(
                "SELECT model_id, param_key, param_value FROM logged_model_params WHERE model_id IN (\(list)) ORDER BY model_id, param_key", binds)
            {
                params[p.string(0), default: []].append(KeyValue(p.string(1), p.string(2)))
            }
            for m in try await db.query(
                "SELECT model_id, metric_name, metric_value, metric_timestamp_ms, metric_step, run_id, dataset_name, dataset_digest FROM logged_model_metrics WHERE model_id IN (\(list)) ORDER BY model_id, metric_name, metric_timestamp_ms, metric_step",
                binds)
            {
                // MLflow keeps a NaN value as NULL here.
                metrics[m.string(0), default: []].append(
                    Metric(
                        key: m.string(1), value: m.optionalString(2) == nil ? .nan : m.double(2), timestamp: m.int(3), step: m.int(4),
                        datasetName: m.optionalString(6), datasetDigest: m.optionalString(7), runID: m.string(5)))
            }
            return rows.map { r in
                let id = r.string(0)
                return LoggedModel(
                    modelID: id, experimentID: r.string(1), name: r.string(2), creationTime: r.int(4), lastUpdatedTime: r.int(5),
                    artifactURI: r.string(3), status: LoggedModelStatus(wire: r.string(6)) ?? .unspecified, statusMessage: r.optionalString(10),
                    modelType: r.string(8), sourceRunID: r.optionalString(9), lifecycleStage: LifecycleStage(rawValue: r.string(7)) ?? .active,
                    tags: tags[id] ?? [], params: params[id] ?? [], metrics: metrics[id] ?? [])
            }
        }
    }

    /// The logged model a version was registered from: MLflow 3 registers `models:/<model_id>`
    /// and keeps no column for it.
    static func modelID(fromSource source: String) -> String {
        guard source.hasPrefix("models:/m-") else { return "" }
        return Validation.pathComponents(source.dropFirst("models:/".count), omittingEmpty: false).first ?? ""
    }

    public func registeredModels() async throws -> [ImportedRegisteredModel] {
        let ws = inWorkspace()
        let hasAliases = tables.contains("registered_model_aliases")
        return try await driver.read { db in
            var modelTags: [String: [KeyValue]] = [:]
            for t in try await db.query("SELECT name, key, value FROM registered_model_tags WHERE 1 = 1\(ws) ORDER BY name, key", []) {
                modelTags[t.string(0), default: []].append(KeyValue(t.string(1), t.string(2)))
            }
            var versionTags: [String: [KeyValue]] = [:]
            for t in try await db.query("SELECT name, version, key, value FROM model_version_tags WHERE 1 = 1\(ws) ORDER BY name, version, key", []) {
                versionTags["\(t.string(0))/\(t.int(1))", default: []].append(KeyValue(t.string(2), t.string(3)))
            }
            var aliases: [String: [(String, Int64)]] = [:]
            if hasAliases {
                for a in try await db.query("SELECT name, alias, version FROM registered_model_aliases WHERE 1 = 1\(ws) ORDER BY name, alias", []) {
                    aliases[a.string(0), default: []].append((a.string(1), a.int(2)))
                }
            }
            var versions: [String: [ModelVersion]] = [:]
            for v in try await db.query(
                """
                SELECT name, version, creation_time, last_updated_time, description, user_id, current_stage, source, run_id, status,
                  status_message, run_link, storage_location
                FROM model_versions WHERE 1 = 1\(ws) ORDER BY name, version
                """, [])
            {
                let name = v.string(0)
                let source = v.string(7)
                let storage = v.string(12)
                versions[name, default: []].append(
                    ModelVersion(
                        name: name, version: v.int(1), creationTime: v.int(2), lastUpdatedTime: v.optionalInt(3) ?? v.int(2),
                        description: v.string(4), userID: v.string(5), currentStage: v.optionalString(6) ?? ModelStage.none.rawValue,
                        source: source, runID: v.string(8), runLink: v.string(11), status: v.optionalString(9) ?? "READY",
                        statusMessage: v.string(10), modelID: Self.modelID(fromSource: source),
                        storageLocation: storage.isEmpty ? source : storage, tags: versionTags["\(name)/\(v.int(1))"] ?? [], aliases: []))
            }
            return try await db.query("SELECT name, creation_time, last_updated_time, description FROM registered_models WHERE 1 = 1\(ws) ORDER BY name", [])
                .map { r in
                    let name = r.string(0)
                    return ImportedRegisteredModel(
                        model: RegisteredModel(
                            name: name, creationTime: r.int(1), lastUpdatedTime: r.optionalInt(2) ?? r.int(1), description: r.string(3),
                            userID: "", latestVersions: [], tags: modelTags[name] ?? [], aliases: aliases[name] ?? []),
                        versions: versions[name] ?? [])
                }
        }
    }

    public func webhooks() async throws -> [ImportedWebhook] {
        guard tables.contains("webhooks") else { return [] }
        let live = webhooksHaveDeletion ? " AND deleted_timestamp IS NULL" : ""
        let ws = inWorkspace()
        return try await driver.read { db in
            var events: [String: [WebhookEvent]] = [:]
            for e in try await db.query("SELECT webhook_id, entity, action FROM webhook_events ORDER BY webhook_id, entity, action", []) {
                events[e.string(0), default: []].append(WebhookEvent(entity: e.string(1), action: e.string(2)))
            }
            return try await db.query(
                "SELECT webhook_id, name, description, url, status, secret, creation_timestamp, last_updated_timestamp FROM webhooks WHERE 1 = 1\(live)\(ws) ORDER BY webhook_id",
                []
            ).map { w in
                ImportedWebhook(
                    webhook: Webhook(
                        id: w.string(0), name: w.string(1), description: w.string(2), url: w.string(3), events: events[w.string(0)] ?? [],
                        status: WebhookStatus(rawValue: w.string(4).uppercased()) ?? .active, creationTime: w.int(6),
                        lastUpdatedTime: w.optionalInt(7) ?? w.int(6)),
                    hadSecret: !(w.optionalString(5) ?? "").isEmpty)
            }
        }
    }

    public func runCounts(_ ids: [String]) async throws -> [ImportEntity: Int] {
        if ids.isEmpty { return [:] }
        let hasInputs = tables.contains("inputs")
        return try await driver.read { db in
            let binds = ids.map(SQLValue.text)
            let list = placeholders(ids.count)
            func n(_ sql: String) async throws -> Int { Int(try await db.queryOne(sql, binds)?.int(0) ?? 0) }
            var out: [ImportEntity: Int] = [
                .runs: try await n("SELECT COUNT(*) FROM runs WHERE run_uuid IN (\(list))"),
                .params: try await n("SELECT COUNT(*) FROM params WHERE run_uuid IN (\(list))"),
                .tags: try await n("SELECT COUNT(*) FROM tags WHERE run_uuid IN (\(list))"),
                .metricPoints: try await n("SELECT COUNT(*) FROM metrics WHERE run_uuid IN (\(list))"),
            ]
            if hasInputs {
                out[.datasets] = try await n(
                    "SELECT COUNT(*) FROM inputs WHERE source_type = 'DATASET' AND destination_type = 'RUN' AND destination_id IN (\(list))")
            }
            return out
        }
    }

    public func sampleHistories(limit: Int) async throws -> [(runID: String, key: String)] {
        let scope = experimentScope
        let rows = try await driver.read { db in
            let longest = try await db.query(
                "SELECT run_uuid, key FROM latest_metrics WHERE run_uuid IN (SELECT run_uuid FROM runs WHERE experiment_id IN (\(scope))) ORDER BY step DESC, run_uuid, key LIMIT ?",
                [.int(Int64(limit / 2))])
            let random = try await db.query(
                "SELECT run_uuid, key FROM latest_metrics WHERE run_uuid IN (SELECT run_uuid FROM runs WHERE experiment_id IN (\(scope))) ORDER BY random() LIMIT ?",
                [.int(Int64(limit))])
            return longest + random
        }
        var seen: Set<String> = []
        var out: [(runID: String, key: String)] = []
        for r in rows where out.count < limit && seen.insert(r.string(0) + "\u{0}" + r.string(1)).inserted {
            out.append((r.string(0), r.string(1)))
        }
        return out
    }

    public func history(runID: String, key: String) async throws -> [Metric] {
        try await driver.read { db in
            try await db.query(
                "SELECT value, is_nan, timestamp, step FROM metrics WHERE run_uuid = ? AND key = ? ORDER BY timestamp, step, value",
                [.text(runID), .text(key)]
            ).map { Self.point(key: key, value: $0.double(0), isNaN: $0.int(1), timestamp: $0.int(2), step: $0.int(3)) }
        }
    }

    public func notImported() async throws -> [String] {
        let tables = self.tables
        let workspaces = self.workspaces
        return try await driver.read { db in
            var out: [String] = []
            func count(_ table: String, _ what: String, _ why: String, where clause: String = "") async throws {
                guard tables.contains(table) else { return }
                let n = try await db.queryOne("SELECT COUNT(*) FROM \(table)\(clause)", [])?.int(0) ?? 0
                if n > 0 { out.append("\(n) \(what): \(why)") }
            }
            try await count("trace_info", "traces", "Reprise does not store traces yet; they stay in the MLflow store")
            try await count("evaluation_datasets", "evaluation datasets", "Reprise does not store them yet")
            try await count("scorers", "scorers", "Reprise does not store them yet")
            if workspaces {
                try await count(
                    "experiments", "experiments in workspaces other than 'default'", "Reprise has one namespace; import them into a store of their own",
                    where: " WHERE workspace <> 'default'")
            }
            return out
        }
    }

    public func close() async throws { try await driver.shutdown() }
}
