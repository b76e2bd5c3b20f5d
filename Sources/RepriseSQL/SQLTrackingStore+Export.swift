import Foundation
import RepriseCore

/// A whole store as rows, table by table, for `reprise export` and its exact restore (`reprise
/// import reprise`): every table Reprise keeps, in key order, each row an object of its columns.
/// What the rows are is the store's business; what is written where is the command's.
extension SQLTrackingStore {
    /// The tables a store's content lives in, each with the key it is dumped in order of (its
    /// primary key; every column where the table has none). The restore inserts them in this order.
    public static let exportTables: [(name: String, key: [String])] = [
        ("experiments", ["experiment_id"]), ("experiment_tags", ["experiment_id", "key"]),
        ("runs", ["run_uuid"]), ("params", ["run_uuid", "key"]), ("tags", ["run_uuid", "key"]),
        ("metrics", ["run_uuid", "key", "timestamp", "step", "value", "is_nan"]), ("latest_metrics", ["run_uuid", "key"]),
        ("datasets", ["dataset_uuid"]), ("run_inputs", ["run_uuid", "dataset_uuid"]), ("input_tags", ["run_uuid", "dataset_uuid", "key"]),
        ("run_model_inputs", ["run_uuid", "model_id"]), ("run_model_outputs", ["run_uuid", "model_id"]),
        ("logged_models", ["model_id"]), ("logged_model_tags", ["model_id", "key"]), ("logged_model_params", ["model_id", "key"]),
        (
            "logged_model_metrics",
            ["model_id", "key", "timestamp", "step", "value", "is_nan", "run_uuid", "dataset_name", "dataset_digest"]
        ),
        ("registered_models", ["name"]), ("registered_model_tags", ["name", "key"]), ("model_versions", ["name", "version"]),
        ("model_version_tags", ["name", "version", "key"]), ("registered_model_aliases", ["name", "alias"]),
        ("alias_policies", ["model", "alias"]), ("approval_requests", ["id"]), ("approval_votes", ["request_id", "approver"]),
        ("alias_history", ["model", "alias", "seq"]),
        ("webhooks", ["webhook_id"]), ("webhook_deliveries", ["delivery_id"]),
        ("experiment_policies", ["experiment_id"]), ("reproductions", ["id"]),
        ("auth_users", ["id"]), ("auth_roles", ["id"]), ("auth_role_members", ["role_id", "user_id"]), ("auth_grants", ["id"]),
        ("auth_tokens", ["id"]), ("artifact_digests", ["location"]),
        ("traces", ["trace_id"]), ("trace_tags", ["trace_id", "key"]), ("trace_metadata", ["trace_id", "key"]),
        ("spans", ["trace_id", "span_id"]), ("assessments", ["assessment_id"]), ("trace_runs", ["trace_id", "run_id"]),
        ("eval_datasets", ["dataset_id"]), ("eval_dataset_tags", ["dataset_id", "key"]),
        ("eval_dataset_experiments", ["dataset_id", "experiment_id"]), ("eval_records", ["record_id"]),
        ("scorers", ["scorer_id"]), ("scorer_versions", ["scorer_id", "version"]),
        ("deployments", ["id"]), ("deployment_prompts", ["deployment_id", "name"]),
        ("deployment_measurements", ["deployment_id", "key", "timestamp", "value"]), ("incidents", ["id"]),
        ("audit_events", ["seq"]), ("reprise_meta", ["key"]), ("id_counters", ["name"]),
    ]

    /// Tables a new store already has rows in (the Default experiment, its counters, facts about
    /// the store): a restore replaces those rows rather than skipping them.
    static let seededTables: Set<String> = ["experiments", "reprise_meta", "id_counters"]

    /// A table's columns, in name order (the dump's order, the same on every database).
    public func exportColumns(_ table: String) async throws -> [String] {
        let sql = dialect.name == SQLDialect.sqlite.name
            ? "SELECT name FROM pragma_table_info(?)"
            : "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?"
        return try await read { db in try await db.query(sql, [.text(table)]).map { $0.string(0) } }.sorted()
    }

    public func exportRowCount(_ table: String) async throws -> Int {
        try Self.requireExportTable(table)
        return try await read { db in Int(try await db.queryOne("SELECT COUNT(*) FROM \(table)", [])!.int(0)) }
    }

    static func requireExportTable(_ table: String) throws {
        guard exportTables.contains(where: { $0.name == table }) else { throw RepriseError.invalid("'\(table)' is not a table of the store.") }
    }

    /// The key a table is dumped in order of.
    public static func exportKey(_ table: String) -> [String] { exportTables.first { $0.name == table }?.key ?? [] }

    /// Tables with no unique key: paged by offset, and restored in one transaction, only into an
    /// empty table (a restore run again must not add their rows twice).
    public static let keylessTables: Set<String> = ["logged_model_metrics"]

    /// One page of a table in key order: after the row whose key is `after` (keyset paging, so each
    /// page is one index range read), or from `offset` for a keyless table. Values in `columns` order.
    public func exportPage(_ table: String, columns: [String], after: [SQLValue]?, offset: Int, limit: Int) async throws -> [[SQLValue]] {
        try Self.requireExportTable(table)
        let key = Self.exportKey(table)
        var sql = "SELECT \(columns.joined(separator: ", ")) FROM \(table)"
        var binds: [SQLValue] = []
        if Self.keylessTables.contains(table) {
            sql += " ORDER BY \(key.joined(separator: ", ")) LIMIT \(limit) OFFSET \(offset)"
        } else {
            if let after {
                sql += " WHERE (\(key.joined(separator: ", "))) > (\(placeholders(key.count)))"
                binds = after
            }
            sql += " ORDER BY \(key.joined(separator: ", ")) LIMIT \(limit)"
        }
        let (statement, values) = (sql, binds)
        return try await read { db in try await db.query(statement, values).map(\.values) }
    }

    /// The newest schema migration applied to this store.
    public func schemaVersion() async throws -> Int {
        try await read { db in Int(try await db.queryOne("SELECT MAX(version) FROM reprise_schema_migrations", [])?.int(0) ?? 0) }
    }

    /// Whether this store holds nothing yet but what every new store starts with: the only state a
    /// restore writes into.
    public func isPristine() async throws -> Bool {
        try await read { db in
            for table in ["runs", "registered_models", "logged_models", "audit_events", "webhooks", "auth_users"] {
                if try await db.queryOne("SELECT 1 FROM \(table) LIMIT 1", []) != nil { return false }
            }
            return try await db.queryOne("SELECT 1 FROM experiments WHERE experiment_id <> 0 LIMIT 1", []) == nil
        }
    }

    /// Writes rows of an export back, as they were: rows of a table a new store seeds replace
    /// what is there; any other row already stored (a restore run again) is left as it is. One
    /// transaction per call; `checkpoint`, when given, is stored with it.
    public func restoreRows(
        _ table: String, columns: [String], rows: [[SQLValue]], checkpoint: (key: String, value: String)? = nil
    ) async throws {
        try Self.requireExportTable(table)
        let key = Self.exportKey(table)
        let replace = Self.seededTables.contains(table)
        let others = columns.filter { !key.contains($0) }
        let conflict =
            replace && !others.isEmpty
            ? "ON CONFLICT (\(key.joined(separator: ", "))) DO UPDATE SET \(others.map { "\($0) = excluded.\($0)" }.joined(separator: ", "))"
            : "ON CONFLICT DO NOTHING"
        let width = columns.count
        // Bound values stay under every database's limit per statement.
        let chunk = max(1, 900 / width)
        try await write { db, _ in
            if table == "experiments", let id = columns.firstIndex(of: "experiment_id"), rows.contains(where: { $0[id] == .int(0) }) {
                // The new store's Default experiment makes way for the export's (whose name may differ).
                try await db.execute("DELETE FROM experiments WHERE experiment_id = 0", [])
            }
            try await db.executeRows(rows, chunk: chunk) { n in
                "INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES \(valueRows(n, width: width)) \(conflict)"
            }
            if let checkpoint {
                try await db.execute(
                    "INSERT INTO reprise_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [.text(checkpoint.key), .text(checkpoint.value)])
            }
        }
    }
}
