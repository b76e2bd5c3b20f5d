import Foundation
import RepriseCore

extension SQLTrackingStore: RegistryStore {
    static let versionColumns =
        "mv.name, mv.version, mv.creation_time, mv.last_updated_time, mv.description, mv.user_id, mv.current_stage, mv.source, mv.run_id, mv.run_link, mv.status, mv.status_message, mv.model_id, mv.storage_location"
    static let notDeleted = "mv.current_stage <> '\(ModelStage.deletedInternal)'"

    static func loadVersions(_ db: any SQLConnection, where clause: String, _ binds: [SQLValue], order: String = "mv.version") async throws -> [ModelVersion]
    {
        let rows = try await db.query("SELECT \(versionColumns) FROM model_versions mv WHERE \(clause) ORDER BY \(order)", binds)
        // Tags and aliases are read per model for the versions found, not per version.
        var versionsByName: [String: [Int64]] = [:]
        for row in rows { versionsByName[row.string(0), default: []].append(row.int(1)) }
        var tags: [String: [KeyValue]] = [:]
        var aliases: [String: [String]] = [:]
        for (name, versions) in versionsByName {
            for start in stride(from: 0, to: versions.count, by: 500) {
                let chunk = versions[start..<min(start + 500, versions.count)]
                let binds = [SQLValue.text(name)] + chunk.map(SQLValue.int)
                let inList = placeholders(chunk.count)
                for t in try await db.query(
                    "SELECT version, key, value FROM model_version_tags WHERE name = ? AND version IN (\(inList)) ORDER BY version, key", binds)
                {
                    tags["\(name)/\(t.int(0))", default: []].append(KeyValue(t.string(1), t.string(2)))
                }
                for a in try await db.query(
                    "SELECT version, alias FROM registered_model_aliases WHERE name = ? AND version IN (\(inList)) ORDER BY version, alias", binds)
                {
                    aliases["\(name)/\(a.int(0))", default: []].append(a.string(1))
                }
            }
        }
        return rows.map { row in
            let key = "\(row.string(0))/\(row.int(1))"
            return ModelVersion(
                name: row.string(0), version: row.int(1), creationTime: row.int(2), lastUpdatedTime: row.int(3),
                description: row.string(4), userID: row.string(5), currentStage: row.string(6), source: row.string(7),
                runID: row.string(8), runLink: row.string(9), status: row.string(10), statusMessage: row.string(11),
                modelID: row.string(12), storageLocation: row.string(13), tags: tags[key] ?? [], aliases: aliases[key] ?? [])
        }
    }

    static func requireVersion(_ db: any SQLConnection, _ name: String, _ version: Int64) async throws -> ModelVersion {
        guard let v = try await loadVersions(db, where: "mv.name = ? AND mv.version = ? AND \(notDeleted)", [.text(name), .int(version)]).first
        else { throw RepriseError.notFound("Model Version (name=\(name), version=\(version)) not found") }
        return v
    }

    static func latestPerStage(_ db: any SQLConnection, _ name: String, stages: [ModelStage]) async throws -> [ModelVersion] {
        let wanted = Set((stages.isEmpty ? ModelStage.allCases : stages).map(\.rawValue))
        let latest = try await db.query(
            "SELECT mv.current_stage, MAX(mv.version) FROM model_versions mv WHERE mv.name = ? AND \(notDeleted) GROUP BY mv.current_stage",
            [.text(name)]
        ).filter { wanted.contains($0.string(0)) }.map { $0.int(1) }
        if latest.isEmpty { return [] }
        return try await loadVersions(
            db, where: "mv.name = ? AND mv.version IN (\(placeholders(latest.count)))", [.text(name)] + latest.map(SQLValue.int))
    }

    static func loadRegisteredModel(_ db: any SQLConnection, _ name: String) async throws -> RegisteredModel? {
        guard let row = try await db.queryOne(
            "SELECT name, creation_time, last_updated_time, description, user_id FROM registered_models WHERE name = ?", [.text(name)])
        else { return nil }
        let tags = try await db.query("SELECT key, value FROM registered_model_tags WHERE name = ? ORDER BY key", [.text(name)])
            .map { KeyValue($0.string(0), $0.string(1)) }
        let aliases = try await db.query(
            "SELECT alias, version FROM registered_model_aliases WHERE name = ? ORDER BY alias", [.text(name)]
        ).map { ($0.string(0), $0.int(1)) }
        return await RegisteredModel(
            name: row.string(0), creationTime: row.int(1), lastUpdatedTime: row.int(2), description: row.string(3),
            userID: row.string(4), latestVersions: try latestPerStage(db, name, stages: []), tags: tags, aliases: aliases)
    }

    static func requireRegisteredModel(_ db: any SQLConnection, _ name: String) async throws -> RegisteredModel {
        guard let m = try await loadRegisteredModel(db, name) else {
            throw RepriseError.notFound("Registered Model with name=\(name) not found")
        }
        return m
    }

    static func touchModel(_ db: any SQLConnection, _ name: String, _ now: Int64) async throws {
        try await db.execute("UPDATE registered_models SET last_updated_time = ? WHERE name = ?", [.int(now), .text(name)])
    }

    // MARK: - Registered models

    public func createRegisteredModel(name: String, tags: [KeyValue], description: String?, userID: String) async throws
        -> RegisteredModel
    {
        let name = try Validation.validateRegisteredModelName(name)
        for t in tags { try Validation.validateRegistryTag(t) }
        return try await write { db, audit in
            if try await db.queryOne("SELECT 1 FROM registered_models WHERE name = ?", [.text(name)]) != nil {
                throw RepriseError.exists("Registered Model (name=\(name)) already exists.")
            }
            try await audit.record(db, "registered_model.create", "registered_model", name)
            let now = Self.now()
            try await db.execute(
                "INSERT INTO registered_models (name, creation_time, last_updated_time, description, user_id) VALUES (?, ?, ?, ?, ?)",
                [.text(name), .int(now), .int(now), .text(description ?? ""), .text(userID)])
            for t in tags {
                try await db.execute(
                    "INSERT INTO registered_model_tags (name, key, value) VALUES (?, ?, ?) ON CONFLICT (name, key) DO UPDATE SET value = excluded.value",
                    [.text(name), .text(t.key), .text(t.value)])
            }
            let model = try await Self.requireRegisteredModel(db, name)
            try await Self.emitWebhookEvent(db, model: name, entity: "registered_model", action: "created") { prompt in
                ["name": .string(name), "tags": Self.payloadTags(model.tags, prompt: prompt), "description": .string(model.description)]
            }
            return model
        }
    }

    public func getRegisteredModel(name: String) async throws -> RegisteredModel {
        let name = try Validation.validateRegisteredModelName(name)
        return try await read { db in try await Self.requireRegisteredModel(db, name) }
    }

    public func renameRegisteredModel(name: String, newName: String) async throws -> RegisteredModel {
        let newName = try Validation.validateRegisteredModelName(newName)
        return try await write { db, audit in
            _ = try await Self.requireRegisteredModel(db, name)
            if newName != name {
                try await Self.refuseIfGoverned(db, model: name, version: nil, "renaming registered model '\(name)'")
                try await Self.refuseIfModelHasPolicies(db, model: name, "renaming registered model '\(name)'")
            }
            try await audit.record(db, "registered_model.rename", "registered_model", name, ["before": .string(name), "after": .string(newName)])
            if newName != name, try await db.queryOne("SELECT 1 FROM registered_models WHERE name = ?", [.text(newName)]) != nil {
                throw RepriseError.exists("Registered Model (name=\(newName)) already exists.")
            }
            for table in ["registered_models", "registered_model_tags", "model_versions", "model_version_tags", "registered_model_aliases"] {
                try await db.execute("UPDATE \(table) SET name = ? WHERE name = ?", [.text(newName), .text(name)])
            }
            for table in ["alias_policies", "approval_requests", "alias_history"] {
                try await db.execute("UPDATE \(table) SET model = ? WHERE model = ?", [.text(newName), .text(name)])
            }
            try await Self.touchModel(db, newName, Self.now())
            return try await Self.requireRegisteredModel(db, newName)
        }
    }

    public func updateRegisteredModel(name: String, description: String) async throws -> RegisteredModel {
        try await write { db, audit in
            _ = try await Self.requireRegisteredModel(db, name)
            try await audit.record(db, "registered_model.update", "registered_model", name, ["description": .string(description)])
            try await db.execute(
                "UPDATE registered_models SET description = ?, last_updated_time = ? WHERE name = ?",
                [.text(description), .int(Self.now()), .text(name)])
            return try await Self.requireRegisteredModel(db, name)
        }
    }

    public func deleteRegisteredModel(name: String) async throws {
        try await write { db, audit in
            _ = try await Self.requireRegisteredModel(db, name)
            try await Self.refuseIfGoverned(db, model: name, version: nil, "deleting registered model '\(name)'")
            try await Self.refuseIfModelHasPolicies(db, model: name, "deleting registered model '\(name)'")
            try await audit.record(db, "registered_model.delete", "registered_model", name)
            for table in ["registered_model_aliases", "model_version_tags", "model_versions", "registered_model_tags", "registered_models"] {
                try await db.execute("DELETE FROM \(table) WHERE name = ?", [.text(name)])
            }
        }
    }

    public func setRegisteredModelTag(name: String, tag: KeyValue) async throws {
        try Validation.validateRegistryTag(tag)
        try await write { db, audit in
            _ = try await Self.requireRegisteredModel(db, name)
            try await audit.record(db, "registered_model.set_tag", "registered_model", name, ["key": .string(tag.key)])
            try await db.execute(
                "INSERT INTO registered_model_tags (name, key, value) VALUES (?, ?, ?) ON CONFLICT (name, key) DO UPDATE SET value = excluded.value",
                [.text(name), .text(tag.key), .text(tag.value)])
            try await Self.touchModel(db, name, Self.now())
            try await Self.emitWebhookEvent(db, model: name, entity: "registered_model_tag", action: "set") { _ in
                ["name": .string(name), "key": .string(tag.key), "value": .string(tag.value)]
            }
        }
    }

    public func deleteRegisteredModelTag(name: String, key: String) async throws {
        try await write { db, audit in
            _ = try await Self.requireRegisteredModel(db, name)
            try await audit.record(db, "registered_model.delete_tag", "registered_model", name, ["key": .string(key)])
            try await db.execute("DELETE FROM registered_model_tags WHERE name = ? AND key = ?", [.text(name), .text(key)])
            try await Self.emitWebhookEvent(db, model: name, entity: "registered_model_tag", action: "deleted") { _ in
                ["name": .string(name), "key": .string(key)]
            }
        }
    }

    public func latestVersions(name: String, stages: [ModelStage]) async throws -> [ModelVersion] {
        try await read { db in
            _ = try await Self.requireRegisteredModel(db, name)
            return try await Self.latestPerStage(db, name, stages: stages)
        }
    }

    /// Excludes models tagged as prompts.
    static func notPrompt(_ nameColumn: String) -> String {
        "NOT EXISTS (SELECT 1 FROM registered_model_tags p WHERE p.name = \(nameColumn) AND p.key = '\(PromptFilter.tagKey)' AND p.value = 'true')"
    }

    public func searchRegisteredModels(_ query: RegisteredModelSearchQuery) async throws -> Page<RegisteredModel> {
        var sql = "SELECT rm.name FROM registered_models rm WHERE 1 = 1"
        var binds: [SQLValue] = []
        let (clauses, includePrompts) = PromptFilter.split(query.filter)
        if !includePrompts { sql += " AND " + Self.notPrompt("rm.name") }
        for c in clauses {
            let (frag, b) =
                c.entity == .tag
                ? tagLikeClause(table: "registered_model_tags", idColumn: "name", outer: "rm.name", c)
                : stringComparison("rm.name", c)
            sql += " AND " + frag
            binds += b
        }
        var order = query.orderBy.map { "rm.\($0.key) \($0.ascending ? "ASC" : "DESC")" }
        if !query.orderBy.contains(where: { $0.key == "name" }) { order.append("rm.name ASC") }
        return try await page(sql: sql, binds: binds, order: order, maxResults: query.maxResults, offset: query.offset) { db, names in
            try await names.asyncCompactMap { try await Self.loadRegisteredModel(db, $0) }
        }
    }

    // MARK: - Model versions

    /// Checks a version's source and works out where its files are, its run and its logged model.
    static func resolveSource(_ db: any SQLConnection, _ input: CreateModelVersionInput) async throws
        -> (storage: String, runID: String, modelID: String)
    {
        let source = input.source
        let invalid = RepriseError.invalid(
            "Invalid model version source: '\(source)'. The run_id request parameter must identify the resource that contains the source.")
        let invalidModel = RepriseError.invalid(
            "Invalid model version source: '\(source)'. The model_id request parameter must identify the resource that contains the source.")
        try Validation.rejectControlCharacters(source, field: "source", isURI: true)
        let decoded = Validation.percentDecode(source) ?? source
        if decoded.utf8.contains(0) || Validation.pathComponents(decoded, backslash: true).contains(where: Validation.isDotDot) {
            throw invalid
        }
        var runID = input.runID ?? ""
        var modelID = input.modelID ?? ""
        if source.hasPrefix("models:/m-") {
            // The request names the logged model its source is (3.17 rules).
            let sourceModel = Validation.pathComponents(source.dropFirst("models:/".count), omittingEmpty: false).first ?? ""
            if modelID != sourceModel { throw invalidModel }
        }
        if !modelID.isEmpty {
            let model = try await requireModel(db, modelID)
            if runID.isEmpty { runID = model.sourceRunID ?? "" }
            let storage = source.hasPrefix("models:/") ? model.artifactURI : source
            if !source.hasPrefix("models:/"), source.hasPrefix("mlflow-artifacts:"), !source.hasPrefix(model.artifactURI) {
                throw invalid
            }
            return (storage, runID, modelID)
        }
        if source.hasPrefix("runs:/") {
            let rest = source.dropFirst("runs:/".count)
            let parts = Validation.pathComponents(rest, omittingEmpty: false)
            let sourceRun = parts.first ?? ""
            let path = parts.dropFirst().drop { $0.isEmpty }.joined(separator: "/")
            // The run named in the URI must be the run_id of the request (3.17 rules).
            if runID != sourceRun { throw invalid }
            guard let row = try await db.queryOne("SELECT artifact_uri FROM runs WHERE run_uuid = ?", [.text(sourceRun)]) else {
                // A run this store does not have (MLflow 3.17 accepts it): the files are wherever
                // the URI says, and nothing here serves them.
                return (source, sourceRun, "")
            }
            let root = row.string(0)
            return (path.isEmpty ? root : root + "/" + path, sourceRun, "")
        }
        let isLocal = source.hasPrefix("/") || source.hasPrefix("file:") || !source.contains(":")
        if isLocal {
            var path = source
            if path.hasPrefix("file://") {
                let afterScheme = path.dropFirst("file://".count)
                if !afterScheme.hasPrefix("/") {  // file://host/path
                    throw RepriseError.invalid("'\(source)' is not a valid remote uri. For remote access on windows, please consider using a different scheme such as SMB (e.g. smb://<hostname>/<path>).")
                }
                path = String(afterScheme)
            } else if path.hasPrefix("file:") {
                path = String(path.dropFirst("file:".count))
            }
            let localError = RepriseError.invalid(
                "Invalid model version source: '\(source)'. To use a local path as a model version source, the run_id request parameter has to be specified and the local path has to be contained within the artifact directory of the run specified by the run_id."
            )
            guard !runID.isEmpty, let row = try await db.queryOne("SELECT artifact_uri FROM runs WHERE run_uuid = ?", [.text(runID)]) else {
                throw localError
            }
            var root = row.string(0)
            if root.hasPrefix("file://") { root = String(root.dropFirst("file://".count)) }
            guard Validation.startsWithSlash(root), Validation.relativePath(Validation.normpath(path), under: Validation.normpath(root)) != nil else {
                throw localError
            }
            return (source, runID, "")
        }
        if source.hasPrefix("mlflow-artifacts:") {
            // Proxied artifacts must lie inside the artifact root of the run the version comes from.
            guard !runID.isEmpty, let row = try await db.queryOne("SELECT artifact_uri FROM runs WHERE run_uuid = ?", [.text(runID)]),
                source == row.string(0) || source.hasPrefix(row.string(0) + "/")
            else { throw invalid }
        }
        return (source, runID, "")
    }

    public func createModelVersion(_ input: CreateModelVersionInput) async throws -> ModelVersion {
        if input.source.isEmpty { throw RepriseError.missing("source") }
        for t in input.tags { try Validation.validateRegistryTag(t) }
        return try await write { db, audit in
            _ = try await Self.requireRegisteredModel(db, input.name)
            // A prompt version's source is not a location (the client sends a placeholder); the
            // reference checks it only for models.
            let isPrompt = input.tags.contains { $0.key == PromptFilter.tagKey && $0.value == "true" }
            let (storage, runID, modelID) = isPrompt ? (input.source, input.runID ?? "", "") : try await Self.resolveSource(db, input)
            let version = try await db.queryOne("SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE name = ?", [.text(input.name)])!.int(0)
            try await audit.record(
                db, "model_version.create", "model_version", "\(input.name)/\(version)",
                ["source": .string(input.source), "run_id": .string(runID), "model_id": .string(modelID)])
            let now = Self.now()
            try await db.execute(
                "INSERT INTO model_versions (name, version, creation_time, last_updated_time, description, user_id, current_stage, source, storage_location, run_id, run_link, status, status_message, model_id) VALUES (?, ?, ?, ?, ?, ?, 'None', ?, ?, ?, ?, 'READY', '', ?)",
                [.text(input.name), .int(version), .int(now), .int(now), .text(input.description ?? ""), .text(input.userID),
                 .text(input.source), .text(storage), .text(runID), .text(input.runLink ?? ""), .text(modelID)])
            for t in input.tags {
                try await db.execute(
                    "INSERT INTO model_version_tags (name, version, key, value) VALUES (?, ?, ?, ?) ON CONFLICT (name, version, key) DO UPDATE SET value = excluded.value",
                    [.text(input.name), .int(version), .text(t.key), .text(t.value)])
            }
            try await Self.touchModel(db, input.name, now)
            if !modelID.isEmpty {
                // The logged model lists the versions registered from it.
                var list: [JSONValue] = []
                if let row = try await db.queryOne(
                    "SELECT value FROM logged_model_tags WHERE model_id = ? AND key = 'mlflow.modelVersions'", [.text(modelID)]),
                    case .array(let items)? = try? JSONValue.parse(row.string(0))
                {
                    list = items
                }
                list.append(["name": .string(input.name), "version": .int(version)])
                try await db.execute(
                    "INSERT INTO logged_model_tags (model_id, key, value) VALUES (?, 'mlflow.modelVersions', ?) ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
                    [.text(modelID), .text(JSONValue.array(list).pythonDumps)])
            }
            let created = try await Self.requireVersion(db, input.name, version)
            try await Self.emitWebhookEvent(db, model: input.name, entity: "model_version", action: "created") { prompt in
                if prompt {
                    return [
                        "name": .string(input.name), "version": .string(String(version)),
                        "template": .string(created.tags.first { $0.key == "mlflow.prompt.text" }?.value ?? ""),
                        "tags": Self.payloadTags(created.tags, prompt: true), "description": .string(created.description),
                    ]
                }
                return [
                    "name": .string(input.name), "version": .string(String(version)), "source": .string(created.source),
                    "run_id": created.runID.isEmpty ? .null : .string(created.runID),
                    "tags": Self.payloadTags(created.tags, prompt: false), "description": .string(created.description),
                ]
            }
            return created
        }
    }

    public func getModelVersion(name: String, version: Int64) async throws -> ModelVersion {
        try await read { db in try await Self.requireVersion(db, name, version) }
    }

    public func updateModelVersion(name: String, version: Int64, description: String) async throws -> ModelVersion {
        try await write { db, audit in
            _ = try await Self.requireVersion(db, name, version)
            try await audit.record(db, "model_version.update", "model_version", "\(name)/\(version)", ["description": .string(description)])
            let now = Self.now()
            try await db.execute(
                "UPDATE model_versions SET description = ?, last_updated_time = ? WHERE name = ? AND version = ?",
                [.text(description), .int(now), .text(name), .int(version)])
            return try await Self.requireVersion(db, name, version)
        }
    }

    public func transitionStage(name: String, version: Int64, stage: ModelStage, archiveExisting: Bool) async throws -> ModelVersion {
        if archiveExisting && stage != .staging && stage != .production {
            throw RepriseError.invalid(
                "Model version transition cannot archive existing model versions because '\(stage.rawValue)' is not an Active stage. Valid stages are Staging, Production")
        }
        return try await write { db, audit in
            let before = try await Self.requireVersion(db, name, version)
            try await Self.refuseProtectedStage(db, model: name, version: version, from: before.currentStage, to: stage.rawValue)
            if archiveExisting {
                for row in try await db.query(
                    "SELECT version FROM model_versions WHERE name = ? AND version <> ? AND current_stage = ?",
                    [.text(name), .int(version), .text(stage.rawValue)])
                {
                    try await Self.refuseProtectedStage(db, model: name, version: row.int(0), from: stage.rawValue, to: "Archived")
                }
            }
            try await audit.record(
                db, "model_version.transition_stage", "model_version", "\(name)/\(version)",
                ["before": .string(before.currentStage), "after": .string(stage.rawValue), "archive_existing": .bool(archiveExisting)])
            let now = Self.now()
            if archiveExisting {
                try await db.execute(
                    "UPDATE model_versions SET current_stage = 'Archived', last_updated_time = ? WHERE name = ? AND version <> ? AND current_stage = ?",
                    [.int(now), .text(name), .int(version), .text(stage.rawValue)])
            }
            try await db.execute(
                "UPDATE model_versions SET current_stage = ?, last_updated_time = ? WHERE name = ? AND version = ?",
                [.text(stage.rawValue), .int(now), .text(name), .int(version)])
            try await Self.touchModel(db, name, now)
            return try await Self.requireVersion(db, name, version)
        }
    }

    public func deleteModelVersion(name: String, version: Int64) async throws {
        try await write { db, audit in
            let existing = try await Self.requireVersion(db, name, version)
            try await Self.refuseIfGoverned(db, model: name, version: version, "deleting version \(version) of '\(name)'")
            // Deleting a version leaves its stage too: a guarded stage changes only through approval.
            try await Self.refuseProtectedStage(db, model: name, version: version, from: existing.currentStage, to: "None")
            try await audit.record(db, "model_version.delete", "model_version", "\(name)/\(version)")
            let now = Self.now()
            try await db.execute(
                "UPDATE model_versions SET current_stage = ?, source = 'REDACTED-SOURCE-PATH', run_id = 'REDACTED-RUN-ID', run_link = 'REDACTED-RUN-LINK', status_message = '', last_updated_time = ? WHERE name = ? AND version = ?",
                [.text(ModelStage.deletedInternal), .int(now), .text(name), .int(version)])
            try await db.execute("DELETE FROM registered_model_aliases WHERE name = ? AND version = ?", [.text(name), .int(version)])
            try await Self.touchModel(db, name, now)
        }
    }

    public func searchModelVersions(_ query: ModelVersionSearchQuery) async throws -> Page<ModelVersion> {
        var sql = "SELECT mv.name || '\u{1}' || CAST(mv.version AS TEXT) FROM model_versions mv WHERE \(Self.notDeleted)"
        var binds: [SQLValue] = []
        let (clauses, includePrompts) = PromptFilter.split(query.filter)
        for c in clauses {
            let frag: String
            let b: [SQLValue]
            switch (c.entity, c.key) {
            case (.tag, _):
                let base = "SELECT 1 FROM model_version_tags t WHERE t.name = mv.name AND t.version = mv.version AND t.key = ?"
                let (cmp, cb) = stringComparison("t.value", c)
                (frag, b) = ("EXISTS (\(base) AND \(cmp))", [.text(c.key)] + cb)
            case (_, "version_number"):
                guard case .number(let d, _) = c.value else { continue }
                (frag, b) = ("mv.version \(c.comparator.rawValue) ?", [.double(d)])
            case (_, "source_path"):
                (frag, b) = stringComparison("mv.source", c)
            default:
                (frag, b) = stringComparison("mv.\(c.key)", c)
            }
            sql += " AND " + frag
            binds += b
        }
        if !includePrompts { sql += " AND " + Self.notPrompt("mv.name") }
        let column = ["name": "mv.name", "version_number": "mv.version", "creation_timestamp": "mv.creation_time",
                      "last_updated_timestamp": "mv.last_updated_time"]
        var order = query.orderBy.map { "\(column[$0.key]!) \($0.ascending ? "ASC" : "DESC")" }
        if query.orderBy.isEmpty { order.append("mv.last_updated_time DESC") }
        if !query.orderBy.contains(where: { $0.key == "name" }) { order.append("mv.name ASC") }
        if !query.orderBy.contains(where: { $0.key == "version_number" }) { order.append("mv.version DESC") }
        return try await page(sql: sql, binds: binds, order: order, maxResults: query.maxResults, offset: query.offset) { db, keys in
            // Load the page model by model, then put it back in the page's order.
            var byName: [String: [Int64]] = [:]
            for key in keys {
                let parts = key.split(separator: "\u{1}", omittingEmptySubsequences: false)
                if parts.count == 2, let v = Int64(parts[1]) { byName[String(parts[0]), default: []].append(v) }
            }
            var loaded: [String: ModelVersion] = [:]
            for (name, versions) in byName {
                for start in stride(from: 0, to: versions.count, by: 500) {
                    let chunk = versions[start..<min(start + 500, versions.count)]
                    for v in try await Self.loadVersions(
                        db, where: "mv.name = ? AND mv.version IN (\(placeholders(chunk.count)))",
                        [.text(name)] + chunk.map(SQLValue.int))
                    {
                        loaded["\(v.name)\u{1}\(v.version)"] = v
                    }
                }
            }
            return keys.compactMap { loaded[$0] }
        }
    }

    public func setModelVersionTag(name: String, version: Int64, tag: KeyValue) async throws {
        try Validation.validateRegistryTag(tag)
        try await write { db, audit in
            _ = try await Self.requireVersion(db, name, version)
            try await audit.record(db, "model_version.set_tag", "model_version", "\(name)/\(version)", ["key": .string(tag.key)])
            try await db.execute(
                "INSERT INTO model_version_tags (name, version, key, value) VALUES (?, ?, ?, ?) ON CONFLICT (name, version, key) DO UPDATE SET value = excluded.value",
                [.text(name), .int(version), .text(tag.key), .text(tag.value)])
            try await Self.emitWebhookEvent(db, model: name, entity: "model_version_tag", action: "set") { _ in
                ["name": .string(name), "version": .string(String(version)), "key": .string(tag.key), "value": .string(tag.value)]
            }
        }
    }

    public func deleteModelVersionTag(name: String, version: Int64, key: String) async throws {
        try await write { db, audit in
            _ = try await Self.requireVersion(db, name, version)
            try await audit.record(db, "model_version.delete_tag", "model_version", "\(name)/\(version)", ["key": .string(key)])
            try await db.execute(
                "DELETE FROM model_version_tags WHERE name = ? AND version = ? AND key = ?", [.text(name), .int(version), .text(key)])
            try await Self.emitWebhookEvent(db, model: name, entity: "model_version_tag", action: "deleted") { _ in
                ["name": .string(name), "version": .string(String(version)), "key": .string(key)]
            }
        }
    }

    public func downloadURI(name: String, version: Int64) async throws -> String {
        try await getModelVersion(name: name, version: version).storageLocation
    }

    // MARK: - Aliases

    public func setAlias(name: String, alias: String, version: Int64) async throws {
        try Validation.validateAlias(alias)
        let outcome = try await write { db, audit -> ApprovalRequest? in
            _ = try await Self.requireRegisteredModel(db, name)
            _ = try await Self.requireVersion(db, name, version)
            if let policy = try await Self.policy(db, model: name, alias: alias) {
                try Self.refuseCaseVariant(policy, alias: alias, model: name)
                if try await Self.currentAliasVersion(db, model: name, alias: alias) == version { return nil }
                return try await Self.openRequest(
                    db, audit, policy: policy, model: name, alias: alias, version: version, kind: "move",
                    rationale: "requested through the MLflow alias endpoint")
            }
            try await Self.moveAlias(db, audit, model: name, alias: alias, version: version, requestID: "")
            return nil
        }
        if let request = outcome { throw Self.protectedAliasError(request) }
    }

    public func deleteAlias(name: String, alias: String) async throws {
        try await write { db, audit in
            _ = try await Self.requireRegisteredModel(db, name)
            if try await Self.policy(db, model: name, alias: alias) != nil,
                try await Self.currentAliasVersion(db, model: name, alias: alias) != nil
            {
                throw RepriseError(
                    .permissionDenied,
                    "Alias '\(alias)' of model '\(name)' is protected and cannot be deleted. Move it through an approval request (POST /api/reprise/v1/approval-requests) or remove its policy first.")
            }
            let n = try await db.execute("DELETE FROM registered_model_aliases WHERE name = ? AND alias = ?", [.text(name), .text(alias)])
            if n > 0 {
                try await audit.record(db, "alias.delete", "alias", "\(name)@\(alias)")
                try await Self.emitWebhookEvent(db, model: name, entity: "model_version_alias", action: "deleted") { _ in
                    ["name": .string(name), "alias": .string(alias)]
                }
            }
        }
    }

    public func versionByAlias(name: String, alias: String) async throws -> ModelVersion {
        try await read { db in
            _ = try await Self.requireRegisteredModel(db, name)
            if alias.lowercased() == "latest" {
                guard let v = try await Self.loadVersions(db, where: "mv.name = ? AND \(Self.notDeleted)", [.text(name)], order: "mv.version DESC").first
                else { throw RepriseError.invalid("Registered model alias \(alias) not found.") }
                return v
            }
            guard let row = try await db.queryOne(
                "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?", [.text(name), .text(alias)])
            else { throw RepriseError.invalid("Registered model alias \(alias) not found.") }
            return try await Self.requireVersion(db, name, row.int(0))
        }
    }
}
