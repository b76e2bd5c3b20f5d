/// The tracking schema, written once for every dialect.
public enum TrackingSchema {
    public static func migrations(_ dialect: SQLDialect) -> [SQLMigration] {
        steps(dialect).map { m in
            SQLMigration(version: m.version, name: m.name, statements: m.statements.map(dialect.tableDefinition))
        }
    }

    static func steps(_ dialect: SQLDialect) -> [SQLMigration] {
        let clustered = dialect.clusteredTableSuffix
        return [
            SQLMigration(
                version: 1, name: "tracking",
                statements: [
                    """
                    CREATE TABLE experiments (
                      experiment_id BIGINT PRIMARY KEY, name TEXT NOT NULL UNIQUE, artifact_location TEXT NOT NULL,
                      lifecycle_stage TEXT NOT NULL, creation_time BIGINT NOT NULL, last_update_time BIGINT NOT NULL)
                    """,
                    """
                    CREATE TABLE experiment_tags (
                      experiment_id BIGINT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                      PRIMARY KEY (experiment_id, key))\(clustered)
                    """,
                    """
                    CREATE TABLE runs (
                      run_uuid TEXT PRIMARY KEY, experiment_id BIGINT NOT NULL, name TEXT NOT NULL,
                      user_id TEXT NOT NULL, status TEXT NOT NULL, start_time BIGINT NOT NULL, end_time BIGINT,
                      deleted_time BIGINT, lifecycle_stage TEXT NOT NULL, artifact_uri TEXT NOT NULL)
                    """,
                    // Covers search's outer scan: experiment, stage, default order and the id.
                    "CREATE INDEX runs_by_experiment ON runs (experiment_id, lifecycle_stage, start_time, run_uuid)",
                    """
                    CREATE TABLE params (
                      run_uuid TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                      PRIMARY KEY (run_uuid, key))\(clustered)
                    """,
                    """
                    CREATE TABLE tags (
                      run_uuid TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                      PRIMARY KEY (run_uuid, key))\(clustered)
                    """,
                    // Every point; the key order is the history read order.
                    """
                    CREATE TABLE metrics (
                      run_uuid TEXT NOT NULL, key TEXT NOT NULL, timestamp BIGINT NOT NULL, step BIGINT NOT NULL,
                      value DOUBLE PRECISION NOT NULL, is_nan INTEGER NOT NULL, model_id TEXT, dataset_name TEXT,
                      dataset_digest TEXT,
                      PRIMARY KEY (run_uuid, key, timestamp, step, value, is_nan))\(clustered)
                    """,
                    // The latest point per (run, key), so search and run reads never scan history.
                    """
                    CREATE TABLE latest_metrics (
                      run_uuid TEXT NOT NULL, key TEXT NOT NULL, timestamp BIGINT NOT NULL, step BIGINT NOT NULL,
                      value DOUBLE PRECISION NOT NULL, is_nan INTEGER NOT NULL, model_id TEXT, dataset_name TEXT,
                      dataset_digest TEXT, PRIMARY KEY (run_uuid, key))\(clustered)
                    """,
                    "CREATE INDEX latest_metrics_by_key ON latest_metrics (key, value)",
                    """
                    CREATE TABLE datasets (
                      dataset_uuid TEXT PRIMARY KEY, experiment_id BIGINT NOT NULL, name TEXT NOT NULL,
                      digest TEXT NOT NULL, source_type TEXT NOT NULL, source TEXT NOT NULL, schema TEXT,
                      profile TEXT, UNIQUE (experiment_id, name, digest))
                    """,
                    """
                    CREATE TABLE run_inputs (
                      run_uuid TEXT NOT NULL, dataset_uuid TEXT NOT NULL, position BIGINT NOT NULL,
                      PRIMARY KEY (run_uuid, dataset_uuid))\(clustered)
                    """,
                    """
                    CREATE TABLE input_tags (
                      run_uuid TEXT NOT NULL, dataset_uuid TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                      PRIMARY KEY (run_uuid, dataset_uuid, key))\(clustered)
                    """,
                    """
                    CREATE TABLE run_model_inputs (
                      run_uuid TEXT NOT NULL, model_id TEXT NOT NULL, PRIMARY KEY (run_uuid, model_id))\(clustered)
                    """,
                    """
                    CREATE TABLE run_model_outputs (
                      run_uuid TEXT NOT NULL, model_id TEXT NOT NULL, step BIGINT NOT NULL,
                      PRIMARY KEY (run_uuid, model_id))\(clustered)
                    """,
                    """
                    CREATE TABLE logged_models (
                      model_id TEXT PRIMARY KEY, experiment_id BIGINT NOT NULL, name TEXT NOT NULL,
                      artifact_uri TEXT NOT NULL, creation_time BIGINT NOT NULL, last_updated_time BIGINT NOT NULL,
                      status TEXT NOT NULL, status_message TEXT, model_type TEXT NOT NULL, source_run_id TEXT,
                      lifecycle_stage TEXT NOT NULL)
                    """,
                    "CREATE INDEX logged_models_by_experiment ON logged_models (experiment_id, creation_time)",
                    """
                    CREATE TABLE logged_model_tags (
                      model_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                      PRIMARY KEY (model_id, key))\(clustered)
                    """,
                    """
                    CREATE TABLE logged_model_params (
                      model_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                      PRIMARY KEY (model_id, key))\(clustered)
                    """,
                    """
                    CREATE TABLE logged_model_metrics (
                      model_id TEXT NOT NULL, key TEXT NOT NULL, timestamp BIGINT NOT NULL, step BIGINT NOT NULL,
                      value DOUBLE PRECISION NOT NULL, is_nan INTEGER NOT NULL, run_uuid TEXT NOT NULL,
                      dataset_name TEXT, dataset_digest TEXT)
                    """,
                    "CREATE INDEX logged_model_metrics_by_model ON logged_model_metrics (model_id, key)",
                    """
                    INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time,
                      last_update_time) VALUES (0, 'Default', '', 'active', 0, 0)
                    """,
                ]),
            SQLMigration(
                version: 2, name: "registry",
                statements: [
                    """
                    CREATE TABLE registered_models (
                      name TEXT PRIMARY KEY, creation_time BIGINT NOT NULL, last_updated_time BIGINT NOT NULL,
                      description TEXT NOT NULL, user_id TEXT NOT NULL)
                    """,
                    """
                    CREATE TABLE registered_model_tags (
                      name TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (name, key))\(clustered)
                    """,
                    """
                    CREATE TABLE model_versions (
                      name TEXT NOT NULL, version BIGINT NOT NULL, creation_time BIGINT NOT NULL,
                      last_updated_time BIGINT NOT NULL, description TEXT NOT NULL, user_id TEXT NOT NULL,
                      current_stage TEXT NOT NULL, source TEXT NOT NULL, storage_location TEXT NOT NULL,
                      run_id TEXT NOT NULL, run_link TEXT NOT NULL, status TEXT NOT NULL, status_message TEXT NOT NULL,
                      model_id TEXT NOT NULL, PRIMARY KEY (name, version))\(clustered)
                    """,
                    "CREATE INDEX model_versions_by_run ON model_versions (run_id)",
                    """
                    CREATE TABLE model_version_tags (
                      name TEXT NOT NULL, version BIGINT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                      PRIMARY KEY (name, version, key))\(clustered)
                    """,
                    """
                    CREATE TABLE registered_model_aliases (
                      name TEXT NOT NULL, alias TEXT NOT NULL, version BIGINT NOT NULL,
                      PRIMARY KEY (name, alias))\(clustered)
                    """,
                ]),
            SQLMigration(
                version: 3, name: "governance",
                statements: [
                    // Append-only: no code path updates or deletes these rows.
                    """
                    CREATE TABLE audit_events (
                      seq BIGINT PRIMARY KEY, time BIGINT NOT NULL, actor TEXT NOT NULL, authenticated INTEGER NOT NULL,
                      action TEXT NOT NULL, entity_type TEXT NOT NULL, entity_id TEXT NOT NULL, summary TEXT NOT NULL,
                      request_id TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)
                    """,
                    "CREATE INDEX audit_events_by_entity ON audit_events (entity_type, entity_id, seq)",
                    """
                    CREATE TABLE alias_policies (
                      model TEXT NOT NULL, alias TEXT NOT NULL, required_approvals INTEGER NOT NULL, approvers TEXT NOT NULL,
                      checks TEXT NOT NULL, rollback_requires_approval INTEGER NOT NULL, PRIMARY KEY (model, alias))
                    """,
                    """
                    CREATE TABLE approval_requests (
                      id TEXT PRIMARY KEY, model TEXT NOT NULL, alias TEXT NOT NULL, target_version BIGINT NOT NULL,
                      previous_version BIGINT, kind TEXT NOT NULL, requester TEXT NOT NULL, rationale TEXT NOT NULL,
                      state TEXT NOT NULL, required_approvals INTEGER NOT NULL, approvers TEXT NOT NULL, checks TEXT NOT NULL,
                      created_time BIGINT NOT NULL, updated_time BIGINT NOT NULL, resolution TEXT NOT NULL)
                    """,
                    "CREATE INDEX approval_requests_by_model ON approval_requests (model, alias, state)",
                    """
                    CREATE TABLE approval_votes (
                      request_id TEXT NOT NULL, approver TEXT NOT NULL, decision TEXT NOT NULL, rationale TEXT NOT NULL,
                      time BIGINT NOT NULL, PRIMARY KEY (request_id, approver))
                    """,
                    """
                    CREATE TABLE alias_history (
                      model TEXT NOT NULL, alias TEXT NOT NULL, seq BIGINT NOT NULL, version BIGINT NOT NULL,
                      time BIGINT NOT NULL, actor TEXT NOT NULL, request_id TEXT NOT NULL, PRIMARY KEY (model, alias, seq))
                    """,
                ]),
            SQLMigration(
                version: 4, name: "webhooks",
                statements: [
                    // `events` is the subscribed list as JSON text; `secret` is sealed (AES-GCM), never clear.
                    """
                    CREATE TABLE webhooks (
                      webhook_id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL, url TEXT NOT NULL,
                      events TEXT NOT NULL, secret TEXT NOT NULL, status TEXT NOT NULL, creation_time BIGINT NOT NULL,
                      last_updated_time BIGINT NOT NULL)
                    """,
                    "CREATE INDEX webhooks_by_time ON webhooks (creation_time, webhook_id)",
                    // The transactional outbox: one row per (event, webhook), written with the change itself.
                    """
                    CREATE TABLE webhook_deliveries (
                      delivery_id TEXT PRIMARY KEY, webhook_id TEXT NOT NULL, entity TEXT NOT NULL, action TEXT NOT NULL,
                      payload TEXT NOT NULL, timestamp BIGINT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL,
                      next_attempt_time BIGINT NOT NULL, lease_until BIGINT NOT NULL, last_status INTEGER,
                      last_error TEXT NOT NULL, creation_time BIGINT NOT NULL, last_updated_time BIGINT NOT NULL)
                    """,
                    "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_time)",
                    "CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, creation_time)",
                ]),
            SQLMigration(
                version: 5, name: "reproducibility",
                statements: [
                    """
                    CREATE TABLE experiment_policies (
                      experiment_id BIGINT PRIMARY KEY, mode TEXT NOT NULL, required TEXT NOT NULL, refuse_dirty INTEGER NOT NULL,
                      refuse_duplicates INTEGER NOT NULL, updated_time BIGINT NOT NULL, updated_by TEXT NOT NULL)
                    """,
                    """
                    CREATE TABLE reproductions (
                      id TEXT PRIMARY KEY, original_run TEXT NOT NULL, rerun_run TEXT NOT NULL, verdict TEXT NOT NULL,
                      summary TEXT NOT NULL, details TEXT NOT NULL, time BIGINT NOT NULL, actor TEXT NOT NULL)
                    """,
                    "CREATE INDEX reproductions_by_original ON reproductions (original_run, time)",
                    "CREATE INDEX reproductions_by_rerun ON reproductions (rerun_run)",
                    "CREATE INDEX datasets_by_digest ON datasets (digest)",
                    "CREATE INDEX model_versions_by_model_id ON model_versions (model_id)",
                    "CREATE INDEX logged_models_by_run ON logged_models (source_run_id)",
                ]),
            SQLMigration(
                version: 6, name: "hardening",
                statements: [
                    // Facts about the database itself, such as which hash the audit chain uses.
                    "CREATE TABLE reprise_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
                ]),
            SQLMigration(
                version: 7, name: "identity",
                statements: [
                    """
                    CREATE TABLE auth_users (
                      id BIGINT PRIMARY KEY, username TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL,
                      is_admin INTEGER NOT NULL, is_service INTEGER NOT NULL, can_act_as INTEGER NOT NULL,
                      generation BIGINT NOT NULL, created_time BIGINT NOT NULL, external_subject TEXT NOT NULL DEFAULT '')
                    """,
                    """
                    CREATE TABLE auth_roles (
                      id BIGINT PRIMARY KEY, name TEXT NOT NULL UNIQUE, workspace TEXT NOT NULL, description TEXT NOT NULL)
                    """,
                    """
                    CREATE TABLE auth_role_members (
                      role_id BIGINT NOT NULL, user_id BIGINT NOT NULL, PRIMARY KEY (role_id, user_id))\(clustered)
                    """,
                    "CREATE INDEX auth_role_members_by_user ON auth_role_members (user_id)",
                    """
                    CREATE TABLE auth_grants (
                      id BIGINT PRIMARY KEY, holder_type TEXT NOT NULL, holder_id BIGINT NOT NULL, resource_type TEXT NOT NULL,
                      pattern TEXT NOT NULL, permission TEXT NOT NULL, UNIQUE (holder_type, holder_id, resource_type, pattern))
                    """,
                    "CREATE INDEX auth_grants_by_resource ON auth_grants (resource_type, pattern)",
                    """
                    CREATE TABLE auth_tokens (
                      id TEXT PRIMARY KEY, user_id BIGINT NOT NULL, name TEXT NOT NULL, secret_hash TEXT NOT NULL,
                      created_time BIGINT NOT NULL, expires_time BIGINT, last_used_time BIGINT, revoked INTEGER NOT NULL)
                    """,
                    "CREATE INDEX auth_tokens_by_user ON auth_tokens (user_id)",
                    // Who asked and who voted, by identity: names can be reused after a user is deleted.
                    "ALTER TABLE approval_requests ADD COLUMN requester_id TEXT NOT NULL DEFAULT ''",
                    "ALTER TABLE approval_requests ADD COLUMN payload TEXT NOT NULL DEFAULT ''",
                    "ALTER TABLE approval_votes ADD COLUMN approver_id TEXT NOT NULL DEFAULT ''",
                    "ALTER TABLE alias_policies ADD COLUMN self_change_requires_approval INTEGER NOT NULL DEFAULT 0",
                    "ALTER TABLE audit_events ADD COLUMN auth TEXT NOT NULL DEFAULT ''",
                ]),
            SQLMigration(
                version: 8, name: "artifact digests",
                statements: [
                    // What each artifact held when it was stored through the server; keyed by its
                    // full location, so a run's are one range read (byte order on both databases).
                    """
                    CREATE TABLE artifact_digests (
                      location TEXT PRIMARY KEY, size BIGINT NOT NULL, sha256 TEXT, recorded_time BIGINT NOT NULL,
                      method TEXT NOT NULL)
                    """,
                ]),
            SQLMigration(
                version: 9, name: "id counters",
                statements: [
                    // Ids drawn from counters (`SQLTrackingStore.nextID`) rather than MAX + 1: one
                    // atomic statement per id, never an id handed out before, even after its row is
                    // gone. Seeded from what is stored, and from the identity tables' counters that
                    // lived in reprise_meta.
                    "CREATE TABLE id_counters (name TEXT PRIMARY KEY, next BIGINT NOT NULL)",
                    "INSERT INTO id_counters (name, next) SELECT 'experiments', COALESCE(MAX(experiment_id), -1) + 1 FROM experiments",
                    "INSERT INTO id_counters (name, next) SELECT 'auth_users', COALESCE(MAX(id), 0) + 1 FROM auth_users",
                    "INSERT INTO id_counters (name, next) SELECT 'auth_roles', COALESCE(MAX(id), 0) + 1 FROM auth_roles",
                    "INSERT INTO id_counters (name, next) SELECT 'auth_grants', COALESCE(MAX(id), 0) + 1 FROM auth_grants",
                    """
                    UPDATE id_counters SET next = (SELECT CAST(m.value AS BIGINT) FROM reprise_meta m WHERE m.key = 'next_id.' || id_counters.name)
                    WHERE EXISTS (
                      SELECT 1 FROM reprise_meta m WHERE m.key = 'next_id.' || id_counters.name AND CAST(m.value AS BIGINT) > id_counters.next)
                    """,
                    "DELETE FROM reprise_meta WHERE key LIKE 'next\\_id.%' ESCAPE '\\'",
                ]),
            SQLMigration(
                version: 10, name: "bulk staging",
                // Where a bulk load (`SQLBulkInsert`, PostgreSQL's COPY) lands before one INSERT …
                // SELECT … ON CONFLICT DO NOTHING moves it into the table; emptied in the same
                // transaction. Unlogged: never holds committed rows, so nothing to recover.
                statements: dialect.name == SQLDialect.postgres.name
                    ? ["CREATE UNLOGGED TABLE metrics_staging (LIKE metrics)"] : []),
            SQLMigration(
                version: 11, name: "traces",
                statements: [
                    // A trace's info; `finalized` once StartTraceV3 came (spans can come first).
                    """
                    CREATE TABLE traces (
                      trace_id TEXT PRIMARY KEY, experiment_id BIGINT NOT NULL, request_time BIGINT NOT NULL,
                      execution_duration BIGINT, state TEXT NOT NULL, request_preview TEXT, response_preview TEXT,
                      client_request_id TEXT, finalized INTEGER NOT NULL)
                    """,
                    // Search's outer scan: experiment, then the default order (newest first).
                    "CREATE INDEX traces_by_experiment ON traces (experiment_id, request_time, trace_id)",
                    """
                    CREATE TABLE trace_tags (
                      trace_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                      PRIMARY KEY (trace_id, key))\(clustered)
                    """,
                    // Searching many traces by one tag's value starts from the matching rows.
                    "CREATE INDEX trace_tags_by_key ON trace_tags (key, value)",
                    """
                    CREATE TABLE trace_metadata (
                      trace_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                      PRIMARY KEY (trace_id, key))\(clustered)
                    """,
                    "CREATE INDEX trace_metadata_by_key ON trace_metadata (key, value)",
                    // Spans as OTLP JSON, with the fields search reads beside them (`search_text`: the
                    // name, attribute and event values as plain text, for full-text search).
                    """
                    CREATE TABLE spans (
                      trace_id TEXT NOT NULL, span_id TEXT NOT NULL, parent_span_id TEXT, name TEXT NOT NULL,
                      span_type TEXT, status TEXT NOT NULL, start_time BIGINT NOT NULL, end_time BIGINT,
                      content TEXT NOT NULL, search_text TEXT NOT NULL, PRIMARY KEY (trace_id, span_id))\(clustered)
                    """,
                    """
                    CREATE TABLE assessments (
                      assessment_id TEXT PRIMARY KEY, trace_id TEXT NOT NULL, name TEXT NOT NULL, span_id TEXT,
                      kind TEXT NOT NULL, create_time BIGINT NOT NULL, last_update_time BIGINT NOT NULL,
                      valid INTEGER NOT NULL, value TEXT, body TEXT NOT NULL)
                    """,
                    "CREATE INDEX assessments_by_trace ON assessments (trace_id, create_time)",
                    // Traces linked to runs besides the one they were made in.
                    """
                    CREATE TABLE trace_runs (
                      trace_id TEXT NOT NULL, run_id TEXT NOT NULL, PRIMARY KEY (trace_id, run_id))\(clustered)
                    """,
                    "CREATE INDEX trace_runs_by_run ON trace_runs (run_id)",
                ]),
            SQLMigration(
                version: 12, name: "evaluation",
                statements: [
                    """
                    CREATE TABLE eval_datasets (
                      dataset_id TEXT PRIMARY KEY, name TEXT NOT NULL, schema_json TEXT, profile TEXT, digest TEXT NOT NULL,
                      created_time BIGINT NOT NULL, last_update_time BIGINT NOT NULL, created_by TEXT NOT NULL,
                      last_updated_by TEXT NOT NULL)
                    """,
                    """
                    CREATE TABLE eval_dataset_tags (
                      dataset_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (dataset_id, key))\(clustered)
                    """,
                    """
                    CREATE TABLE eval_dataset_experiments (
                      dataset_id TEXT NOT NULL, experiment_id BIGINT NOT NULL, PRIMARY KEY (dataset_id, experiment_id))\(clustered)
                    """,
                    "CREATE INDEX eval_dataset_experiments_by_experiment ON eval_dataset_experiments (experiment_id)",
                    // One row per record; `input_key` is the canonical JSON of its inputs, which merges match on.
                    """
                    CREATE TABLE eval_records (
                      record_id TEXT PRIMARY KEY, dataset_id TEXT NOT NULL, input_key TEXT NOT NULL, body TEXT NOT NULL,
                      created_time BIGINT NOT NULL, last_update_time BIGINT NOT NULL, created_by TEXT NOT NULL,
                      last_updated_by TEXT NOT NULL, UNIQUE (dataset_id, input_key))
                    """,
                    "CREATE INDEX eval_records_by_dataset ON eval_records (dataset_id, created_time, record_id)",
                    """
                    CREATE TABLE scorers (
                      scorer_id TEXT PRIMARY KEY, experiment_id BIGINT NOT NULL, name TEXT NOT NULL, UNIQUE (experiment_id, name))
                    """,
                    """
                    CREATE TABLE scorer_versions (
                      scorer_id TEXT NOT NULL, version BIGINT NOT NULL, serialized TEXT NOT NULL, creation_time BIGINT NOT NULL,
                      PRIMARY KEY (scorer_id, version))\(clustered)
                    """,
                ]),
            SQLMigration(
                version: 13, name: "deployments",
                statements: [
                    """
                    CREATE TABLE deployments (
                      id TEXT PRIMARY KEY, environment TEXT NOT NULL, seq BIGINT NOT NULL, model_name TEXT NOT NULL,
                      model_version BIGINT NOT NULL, model_alias TEXT, endpoint TEXT, config_sha256 TEXT, config TEXT, note TEXT,
                      deployed_by TEXT NOT NULL, deployed_time BIGINT NOT NULL, previous_id TEXT, UNIQUE (environment, seq))
                    """,
                    "CREATE INDEX deployments_by_model ON deployments (model_name, model_version)",
                    """
                    CREATE TABLE deployment_prompts (
                      deployment_id TEXT NOT NULL, name TEXT NOT NULL, version BIGINT NOT NULL, alias TEXT,
                      PRIMARY KEY (deployment_id, name))\(clustered)
                    """,
                    "CREATE INDEX deployment_prompts_by_prompt ON deployment_prompts (name, version)",
                    """
                    CREATE TABLE deployment_measurements (
                      deployment_id TEXT NOT NULL, key TEXT NOT NULL, timestamp BIGINT NOT NULL, value DOUBLE PRECISION NOT NULL,
                      PRIMARY KEY (deployment_id, key, timestamp, value))\(clustered)
                    """,
                    """
                    CREATE TABLE incidents (
                      id TEXT PRIMARY KEY, deployment_id TEXT NOT NULL, note TEXT NOT NULL, opened_by TEXT NOT NULL,
                      opened_time BIGINT NOT NULL, status TEXT NOT NULL, closed_by TEXT, closed_time BIGINT, resolution TEXT)
                    """,
                    "CREATE INDEX incidents_by_deployment ON incidents (deployment_id, opened_time)",
                ]),
            // Found by bench/ui.py at 100,000 runs: the model version and prompt pages scanned every
            // tag (child runs, runs that loaded a prompt) and every audit event of any type. Partial
            // indexes cost only the writes of their own key.
            SQLMigration(
                version: 14, name: "page indexes",
                statements: [
                    "CREATE INDEX tags_by_parent ON tags (value) WHERE key = 'mlflow.parentRunId'",
                    "CREATE INDEX tags_by_linked_prompts ON tags (run_uuid) WHERE key = 'mlflow.linkedPrompts'",
                    "DROP INDEX audit_events_by_entity",
                    "CREATE INDEX audit_events_by_entity ON audit_events (entity_id, seq)",
                ]),
            // A chart of a 1,000,000-point history read every point (bench/ui.py: 577 ms); tiles of
            // 256 points, kept as points are written, let it read about 3,900 rows (MetricTiles).
            SQLMigration(
                version: 15, name: "metric tiles",
                statements: [MetricTiles.createSQL(clustered), MetricTiles.rebuildSQL(scope: "1 = 1")]),
        ]
    }
}
