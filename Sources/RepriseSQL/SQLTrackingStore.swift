import Foundation
import RepriseCore

/// The tracking store over any `SQLDriver`. All SQL here is portable; dialect differences go
/// through `SQLDialect`.
public final class SQLTrackingStore: TrackingStore {
    public let driver: any SQLDriver
    let artifacts: ArtifactRootPolicy
    /// Seals webhook secrets at rest.
    let secrets: SecretSealer
    var dialect: SQLDialect { driver.dialect }

    /// Keys the audit chain and signs its head checkpoints.
    let auditKey: AuditKey

    /// - Parameters:
    ///   - driver: the database.
    ///   - artifacts: where new experiments put artifacts.
    ///   - secrets: seals stored secrets; every process sharing the database needs the same key.
    ///   - auditKey: keys the audit chain (HMAC-SHA256) and signs checkpoints; every process sharing
    ///     the database needs the same key material.
    public init(driver: any SQLDriver, artifacts: ArtifactRootPolicy, secrets: SecretSealer = .ephemeral(), auditKey: AuditKey = .ephemeral()) {
        self.driver = driver
        self.artifacts = artifacts
        self.secrets = secrets
        self.auditKey = auditKey
    }

    /// Applies pending schema migrations and sets the default experiment's artifact location.
    public func migrate() async throws {
        try await applyMigrations(TrackingSchema.migrations(driver.dialect))
        let loc = artifacts.location(forExperiment: "0")
        let now = Self.now()
        try await write { db, _ in
            try await db.execute(
                "UPDATE experiments SET artifact_location = ?, creation_time = ?, last_update_time = ? WHERE experiment_id = 0 AND artifact_location = ''",
                [.text(loc), .int(now), .int(now)])
        }
        try await upgradeAuditChain()
    }

    /// The one migration runner, for every driver (it refuses, before changing anything, a database
    /// whose schema MLflow made): in one write, under the dialect's migration
    /// lock (so servers starting together on one database do not both apply a step), every step not
    /// yet recorded in `reprise_schema_migrations` runs in version order and is recorded with it.
    func applyMigrations(_ migrations: [SQLMigration]) async throws {
        let dialect = self.dialect
        try await write { db, _ in
            if let lock = dialect.migrationLock { try await db.execute(lock, []) }
            // A database MLflow made (its schema is versioned by alembic) is not Reprise's to change.
            if try await db.queryOne(dialect.tableExistsSQL, [.text("alembic_version")]) != nil,
                try await db.queryOne(dialect.tableExistsSQL, [.text("reprise_schema_migrations")]) == nil
            {
                throw MLflowDatabaseError()
            }
            try await db.execute(
                "CREATE TABLE IF NOT EXISTS reprise_schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
                [])
            let applied = Set(try await db.query("SELECT version FROM reprise_schema_migrations", []).map { $0.int(0) })
            for m in migrations.sorted(by: { $0.version < $1.version }) where !applied.contains(Int64(m.version)) {
                for statement in m.statements { try await db.execute(statement, []) }
                try await db.execute(
                    "INSERT INTO reprise_schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    [.int(Int64(m.version)), .text(m.name), .int(Self.now())])
            }
        }
    }

    public func checkReady() async throws {
        _ = try await read { db in try await db.query("SELECT 1", []).count }
    }

    static func now() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }

    static func newID() -> String { RandomID.hex() }

    // MARK: - Experiments

    static let experimentColumns =
        "experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time"

    static func experiment(_ row: SQLRow, tags: [KeyValue]) -> Experiment {
        Experiment(
            experimentID: row.string(0), name: row.string(1), artifactLocation: row.string(2),
            lifecycleStage: LifecycleStage(rawValue: row.string(3)) ?? .active, creationTime: row.int(4),
            lastUpdateTime: row.int(5), tags: tags)
    }

    static func experimentTags(_ db: any SQLConnection, _ id: Int64) async throws -> [KeyValue] {
        try await db.query("SELECT key, value FROM experiment_tags WHERE experiment_id = ? ORDER BY key", [.int(id)])
            .map { KeyValue($0.string(0), $0.string(1)) }
    }

    static func loadExperiment(_ db: any SQLConnection, id: String) async throws -> Experiment {
        let n = try Validation.validateExperimentID(id)
        guard let row = try await db.queryOne("SELECT \(experimentColumns) FROM experiments WHERE experiment_id = ?", [.int(n)])
        else { throw RepriseError.notFound("No Experiment with id=\(id) exists") }
        return await experiment(row, tags: try experimentTags(db, n))
    }

    /// The counters ids are drawn from (table `id_counters`, seeded by migration 9).
    enum IDCounter: String {
        case experiments
        /// Votes and grants name users by id, so a new account must never inherit a deleted one's.
        case authUsers = "auth_users"
        case authRoles = "auth_roles"
        case authGrants = "auth_grants"
    }

    /// A new id from `counter`, never one handed out before, even if its row is gone: one atomic
    /// statement, so it needs no lock of the store's own (on PostgreSQL it takes the counter row's
    /// lock until commit; no two transactions, on any server, draw the same id). Whoever stores
    /// rows with ids of their own (an import) moves the counter past them.
    static func nextID(_ db: any SQLConnection, _ counter: IDCounter) async throws -> Int64 {
        guard let row = try await db.queryOne("UPDATE id_counters SET next = next + 1 WHERE name = ? RETURNING next - 1", [.text(counter.rawValue)])
        else { throw RepriseError(.internalError, "The id counter '\(counter.rawValue)' is missing; the schema migration did not finish.") }
        return row.int(0)
    }

    static func requireActiveExperiment(_ db: any SQLConnection, id: String) async throws -> Experiment {
        let e = try await loadExperiment(db, id: id)
        guard e.lifecycleStage == .active else {
            throw RepriseError.invalid(
                "The experiment \(id) must be in the 'active' state. Current state is \(e.lifecycleStage.rawValue).")
        }
        return e
    }

    static func validateExperimentTag(_ tag: KeyValue) throws {
        try Validation.validateKey(tag.key, lengthLabel: "key")
        if tag.value.count > Validation.maxExperimentTagValueLength {
            throw RepriseError.invalid(
                "'value' exceeds the maximum length of \(Validation.maxExperimentTagValueLength) characters")
        }
    }

    public func createExperiment(name: String, artifactLocation: String?, tags: [KeyValue]) async throws -> String {
        let name = try Validation.validateExperimentName(name)
        for t in tags { try Self.validateExperimentTag(t) }
        let artifacts = self.artifacts
        if let artifactLocation { try Validation.rejectControlCharacters(artifactLocation, field: "artifact_location", isURI: true) }
        let location = artifactLocation.flatMap { $0.isEmpty ? nil : artifacts.resolve($0) }
        return try await write { db, audit in
            if try await db.queryOne("SELECT 1 FROM experiments WHERE name = ?", [.text(name)]) != nil {
                throw RepriseError.exists("Experiment(name=\(name)) already exists. Error: name must be unique")
            }
            let id = try await Self.nextID(db, .experiments)
            let now = Self.now()
            try await db.execute(
                "INSERT INTO experiments (\(Self.experimentColumns)) VALUES (?, ?, ?, 'active', ?, ?)",
                [.int(id), .text(name), .text(location ?? artifacts.location(forExperiment: String(id))), .int(now), .int(now)])
            for t in tags {
                try await db.execute(
                    "INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?) ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
                    [.int(id), .text(t.key), .text(t.value)])
            }
            try await audit.record(db, "experiment.create", "experiment", String(id), ["name": .string(name)])
            return String(id)
        }
    }

    public func getExperiment(id: String) async throws -> Experiment {
        _ = try Validation.validateExperimentID(id)
        return try await read { db in try await Self.loadExperiment(db, id: id) }
    }

    public func getExperiment(name: String) async throws -> Experiment {
        try await read { db in
            guard let row = try await db.queryOne("SELECT \(Self.experimentColumns) FROM experiments WHERE name = ?", [.text(name)])
            else { throw RepriseError.notFound("Could not find experiment with name '\(name)'") }
            return Self.experiment(row, tags: try await Self.experimentTags(db, row.int(0)))
        }
    }

    public func renameExperiment(id: String, newName: String) async throws {
        let newName = try Validation.validateExperimentName(newName)
        _ = try Validation.validateExperimentID(id)
        try await write { db, audit in
            let e = try await Self.loadExperiment(db, id: id)
            guard e.lifecycleStage == .active else {
                throw RepriseError(.invalidState, "Cannot rename a non-active experiment.")
            }
            if e.name == newName { return }
            if try await db.queryOne("SELECT 1 FROM experiments WHERE name = ?", [.text(newName)]) != nil {
                throw RepriseError.exists("Experiment(name=\(newName)) already exists. Error: name must be unique")
            }
            try await db.execute(
                "UPDATE experiments SET name = ?, last_update_time = ? WHERE experiment_id = ?",
                [.text(newName), .int(Self.now()), .int(Int64(id)!)])
            try await audit.record(db, "experiment.rename", "experiment", id, ["before": .string(e.name), "after": .string(newName)])
        }
    }

    public func deleteExperiment(id: String) async throws {
        _ = try Validation.validateExperimentID(id)
        try await write { db, audit in
            let e = try await Self.loadExperiment(db, id: id)
            guard e.lifecycleStage == .active else {
                throw RepriseError.notFound("Cannot delete an already deleted experiment: \(id)")
            }
            let now = Self.now()
            try await db.execute(
                "UPDATE experiments SET lifecycle_stage = 'deleted', last_update_time = ? WHERE experiment_id = ?",
                [.int(now), .int(Int64(id)!)])
            let runs = try await db.execute(
                "UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = ? WHERE experiment_id = ? AND lifecycle_stage = 'active'",
                [.int(now), .int(Int64(id)!)])
            try await audit.record(db, "experiment.delete", "experiment", id, ["runs_deleted": .int(Int64(runs))])
        }
    }

    public func restoreExperiment(id: String) async throws {
        _ = try Validation.validateExperimentID(id)
        try await write { db, audit in
            let e = try await Self.loadExperiment(db, id: id)
            guard e.lifecycleStage == .deleted else {
                throw RepriseError.notFound("Cannot restore an active experiment: \(id)")
            }
            try await db.execute(
                "UPDATE experiments SET lifecycle_stage = 'active', last_update_time = ? WHERE experiment_id = ?",
                [.int(Self.now()), .int(Int64(id)!)])
            let runs = try await db.execute(
                "UPDATE runs SET lifecycle_stage = 'active', deleted_time = NULL WHERE experiment_id = ? AND lifecycle_stage = 'deleted'",
                [.int(Int64(id)!)])
            try await audit.record(db, "experiment.restore", "experiment", id, ["runs_restored": .int(Int64(runs))])
        }
    }

    public func setExperimentTag(id: String, tag: KeyValue) async throws {
        try Self.validateExperimentTag(tag)
        _ = try Validation.validateExperimentID(id)
        try await write { db, audit in
            _ = try await Self.requireActiveExperiment(db, id: id)
            try await db.execute(
                "INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?) ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
                [.int(Int64(id)!), .text(tag.key), .text(tag.value)])
            try await audit.record(db, "experiment.set_tag", "experiment", id, ["key": .string(tag.key)])
        }
    }

    public func deleteExperimentTag(id: String, key: String) async throws {
        _ = try Validation.validateExperimentID(id)
        try await write { db, audit in
            _ = try await Self.requireActiveExperiment(db, id: id)
            let n = try await db.execute(
                "DELETE FROM experiment_tags WHERE experiment_id = ? AND key = ?", [.int(Int64(id)!), .text(key)])
            if n == 0 { throw RepriseError.notFound("No tag with name: \(key) in experiment with id \(id)") }
            try await audit.record(db, "experiment.delete_tag", "experiment", id, ["key": .string(key)])
        }
    }

    public func searchExperiments(_ query: ExperimentSearchQuery) async throws -> Page<Experiment> {
        var sql = "SELECT \(qualified(Self.experimentColumns, "e")) FROM experiments e WHERE e.lifecycle_stage IN (\(placeholders(query.viewType.stages.count)))"
        var binds: [SQLValue] = query.viewType.stages.map { .text($0.rawValue) }
        for c in query.filter {
            let (frag, b) = try experimentClause(c)
            sql += " AND " + frag
            binds += b
        }
        var order: [String] = []
        var hasID = false
        for t in query.orderBy {
            order.append("e.\(t.key) \(t.ascending ? "ASC" : "DESC")")
            if t.key == "experiment_id" { hasID = true }
        }
        if query.orderBy.isEmpty { order.append("e.creation_time DESC") }
        if !hasID { order.append("e.experiment_id ASC") }
        sql += " ORDER BY " + order.joined(separator: ", ") + " LIMIT ? OFFSET ?"
        binds += [.int(Int64(query.maxResults + 1)), .int(Int64(query.offset))]
        let finalSQL = sql
        let finalBinds = binds
        return try await read { db in
            let rows = try await db.query(finalSQL, finalBinds)
            let more = rows.count > query.maxResults
            let items = try await rows.prefix(query.maxResults).asyncMap { row in
                Self.experiment(row, tags: try await Self.experimentTags(db, row.int(0)))
            }
            return Page(items: items, nextOffset: more ? query.offset + query.maxResults : nil)
        }
    }

    func experimentClause(_ c: FilterClause) throws -> (String, [SQLValue]) {
        switch c.entity {
        case .tag:
            return tagLikeClause(table: "experiment_tags", idColumn: "experiment_id", outer: "e.experiment_id", c)
        default:
            if c.key == "creation_time" || c.key == "last_update_time" {
                guard case .number(let d, _) = c.value else { throw RepriseError.invalid("Expected a number") }
                return ("e.\(c.key) \(c.comparator.rawValue) ?", [.double(d)])
            }
            if c.key == "experiment_id" {
                // Ids are integers; compare them as text the way they are shown.
                return stringComparison("CAST(e.experiment_id AS TEXT)", c)
            }
            return stringComparison("e.\(c.key)", c)
        }
    }

    // MARK: - Shared query builders

    /// Runs an id query (first column) with `ORDER BY … LIMIT … OFFSET` appended, fetching one row
    /// more than a page to learn whether another page exists, and loads the page's entities.
    func page<T: Sendable>(
        sql: String, binds: [SQLValue], order: [String], maxResults: Int, offset: Int,
        load: @escaping @Sendable (any SQLConnection, [String]) async throws -> [T]
    ) async throws -> Page<T> {
        let finalSQL = sql + " ORDER BY " + order.joined(separator: ", ") + " LIMIT ? OFFSET ?"
        let finalBinds = binds + [.int(Int64(maxResults + 1)), .int(Int64(offset))]
        return try await read { db in
            let ids = try await db.query(finalSQL, finalBinds).map { $0.string(0) }
            let more = ids.count > maxResults
            return Page(items: try await load(db, Array(ids.prefix(maxResults))), nextOffset: more ? offset + maxResults : nil)
        }
    }

    /// `lhs <op> value` for string comparators, lists included.
    func stringComparison(_ lhs: String, _ c: FilterClause) -> (String, [SQLValue]) {
        switch (c.comparator, c.value) {
        case (.in, .list(let items)):
            return ("\(lhs) IN (\(placeholders(items.count)))", items.map(SQLValue.text))
        case (.notIn, .list(let items)):
            return ("\(lhs) NOT IN (\(placeholders(items.count)))", items.map(SQLValue.text))
        case (.like, .string(let s)):
            return (dialect.caseSensitiveLike(lhs), [.text(s)])
        case (.ilike, .string(let s)):
            return (dialect.caseInsensitiveLike(lhs), [.text(s)])
        case (let op, .string(let s)):
            return ("\(lhs) \(op.rawValue) ?", [.text(s)])
        case (let op, .number(_, let text)):
            return ("\(lhs) \(op.rawValue) ?", [.text(text)])
        default:
            return ("1 = 0", [])
        }
    }

    /// A clause over a key/value side table (tags, params): rows lacking the key never match,
    /// except through `IS NULL`.
    func tagLikeClause(table: String, idColumn: String, outer: String, _ c: FilterClause) -> (String, [SQLValue]) {
        let base = "SELECT 1 FROM \(table) t WHERE t.\(idColumn) = \(outer) AND t.key = ?"
        switch c.comparator {
        case .isNull: return ("NOT EXISTS (\(base))", [.text(c.key)])
        case .isNotNull: return ("EXISTS (\(base))", [.text(c.key)])
        default:
            let (frag, b) = stringComparison("t.value", c)
            return ("EXISTS (\(base) AND \(frag))", [.text(c.key)] + b)
        }
    }

    /// A numeric comparison over a metric table with an `is_nan` flag; NaN matches only `!=`.
    func metricComparison(alias m: String, _ c: FilterClause) -> (String, [SQLValue]) {
        guard case .number(let d, _) = c.value else { return ("1 = 0", []) }
        if c.comparator == .ne { return ("(\(m).is_nan = 1 OR \(m).value != ?)", [.double(d)]) }
        return ("(\(m).is_nan = 0 AND \(m).value \(c.comparator.rawValue) ?)", [.double(d)])
    }
}

/// The database holds MLflow's own schema (it has MLflow's `alembic_version` table): Reprise keeps a
/// schema of its own and leaves such a database as it is.
public struct MLflowDatabaseError: Error, CustomStringConvertible {
    public init() {}
    public var description: String {
        "this database was made by MLflow (it has MLflow's alembic_version table). Reprise keeps a schema of its own and has not changed it."
    }
}
