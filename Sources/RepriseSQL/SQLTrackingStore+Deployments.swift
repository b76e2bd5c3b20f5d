import Crypto
import Foundation
import RepriseCore

/// Deployments (resolved to exact versions when recorded), their production measurements and
/// incidents.
extension SQLTrackingStore: DeploymentStore {
    static let deploymentColumns =
        "id, environment, model_name, model_version, model_alias, endpoint, config_sha256, config, note, deployed_by, deployed_time, previous_id"

    static func loadDeployments(_ db: any SQLConnection, _ ids: [String]) async throws -> [Deployment] {
        var out: [String: Deployment] = [:]
        for chunk in ids.chunked(500) {
            let binds = chunk.map(SQLValue.text)
            let list = placeholders(chunk.count)
            for r in try await db.query("SELECT \(deploymentColumns) FROM deployments WHERE id IN (\(list))", binds) {
                out[r.string(0)] = Deployment(
                    id: r.string(0), environment: r.string(1), model: DeployedVersion(name: r.string(2), version: r.int(3), alias: r.optionalString(4)),
                    prompts: [], endpoint: r.optionalString(5), configDigest: r.optionalString(6), config: r.optionalString(7),
                    note: r.optionalString(8), deployedBy: r.string(9), deployedTime: r.int(10), previousID: r.optionalString(11))
            }
            for r in try await db.query(
                "SELECT deployment_id, name, version, alias FROM deployment_prompts WHERE deployment_id IN (\(list)) ORDER BY deployment_id, name", binds)
            {
                out[r.string(0)]?.prompts.append(DeployedVersion(name: r.string(1), version: r.int(2), alias: r.optionalString(3)))
            }
        }
        return ids.compactMap { out[$0] }
    }

    static func requireDeployment(_ db: any SQLConnection, _ id: String) async throws -> Deployment {
        guard let d = try await loadDeployments(db, [id]).first else { throw RepriseError.notFound("Deployment '\(id)' not found.") }
        return d
    }

    /// The version a reference names now, checked to be a prompt or not, as asked.
    static func resolve(_ db: any SQLConnection, _ ref: RegistryReference, prompt: Bool) async throws -> DeployedVersion {
        let what = prompt ? "Prompt" : "Registered model"
        guard try await db.queryOne("SELECT 1 FROM registered_models WHERE name = ?", [.text(ref.name)]) != nil else {
            throw RepriseError.notFound("\(what) '\(ref.name)' not found.")
        }
        if try await isPrompt(db, ref.name) != prompt {
            throw RepriseError.invalid(
                prompt ? "'\(ref.name)' is a model, not a prompt: name it with --model." : "'\(ref.name)' is a prompt, not a model: name it with --prompt.")
        }
        if let alias = ref.alias {
            guard let row = try await db.queryOne(
                "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?", [.text(ref.name), .text(alias)])
            else {
                throw RepriseError.notFound("\(what) '\(ref.name)' has no alias '\(alias)'.")
            }
            return DeployedVersion(name: ref.name, version: row.int(0), alias: alias)
        }
        let version = ref.version ?? 0
        guard try await db.queryOne("SELECT 1 FROM model_versions WHERE name = ? AND version = ?", [.text(ref.name), .int(version)]) != nil else {
            throw RepriseError.notFound("\(what) '\(ref.name)' has no version \(version).")
        }
        return DeployedVersion(name: ref.name, version: version, alias: nil)
    }

    public func recordDeployment(_ input: DeploymentInput, user: String) async throws -> Deployment {
        try DeploymentInput.validateEnvironment(input.environment)
        if let config = input.config, config.utf8.count > DeploymentInput.maxConfigBytes {
            throw RepriseError.invalid("The configuration is \(config.utf8.count) bytes; the most a deployment records is \(DeploymentInput.maxConfigBytes).")
        }
        if Set(input.prompts.map(\.name)).count != input.prompts.count {
            throw RepriseError.invalid("A deployment names each prompt once.")
        }
        if let endpoint = input.endpoint { try Validation.rejectControlCharacters(endpoint, field: "endpoint", isURI: true) }
        let id = "dep-" + Self.newID()
        let digest = input.config.map { Hex.encode(SHA256.hash(data: Array($0.utf8))) }
        return try await write { db, audit in
            let model = try await Self.resolve(db, input.model, prompt: false)
            var prompts: [DeployedVersion] = []
            for p in input.prompts { prompts.append(try await Self.resolve(db, p, prompt: true)) }
            let last = try await db.queryOne(
                "SELECT id, seq FROM deployments WHERE environment = ? ORDER BY seq DESC LIMIT 1", [.text(input.environment)])
            let seq = (last?.int(1) ?? 0) + 1
            let now = Self.now()
            try await db.execute(
                "INSERT INTO deployments (\(Self.deploymentColumns), seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [.text(id), .text(input.environment), .text(model.name), .int(model.version), SQLValue(model.alias), SQLValue(input.endpoint),
                 SQLValue(digest), SQLValue(input.config), SQLValue(input.note), .text(user), .int(now), SQLValue(last?.string(0)), .int(seq)])
            for p in prompts {
                try await db.execute(
                    "INSERT INTO deployment_prompts (deployment_id, name, version, alias) VALUES (?, ?, ?, ?)",
                    [.text(id), .text(p.name), .int(p.version), SQLValue(p.alias)])
            }
            try await audit.record(
                db, "deployment.record", "deployment", id,
                ["environment": .string(input.environment), "model": .string("\(model.name)/\(model.version)"),
                 "prompts": .array(prompts.map { .string("\($0.name)/\($0.version)") })])
            let deployment = try await Self.requireDeployment(db, id)
            try await Self.enqueueWebhookEvent(db, WebhookEvent(entity: "deployment", action: "created"), data: deployment.json)
            return deployment
        }
    }

    public func getDeployment(id: String) async throws -> Deployment {
        try await read { db in try await Self.requireDeployment(db, id) }
    }

    public func deployments(environment: String?, maxResults: Int, offset: Int) async throws -> Page<Deployment> {
        if let environment { try DeploymentInput.validateEnvironment(environment) }
        var sql = "SELECT id FROM deployments WHERE 1 = 1"
        var binds: [SQLValue] = []
        if let environment {
            sql += " AND environment = ?"
            binds.append(.text(environment))
        }
        return try await page(
            sql: sql, binds: binds, order: ["deployed_time DESC", "seq DESC", "id ASC"], maxResults: maxResults, offset: offset,
            load: Self.loadDeployments)
    }

    public func logDeploymentMeasurements(id: String, _ measurements: [DeploymentMeasurement]) async throws {
        if measurements.count > Validation.maxBatchMetrics {
            throw RepriseError.invalid("A call logs at most \(Validation.maxBatchMetrics) measurements; it sent \(measurements.count).")
        }
        for m in measurements {
            try Validation.validateKey(m.key, lengthLabel: "Measurement key")
            guard m.value.isFinite else { throw RepriseError.invalid("Measurement '\(m.key)' is not a finite number.") }
        }
        try await write { db, _ in
            _ = try await Self.requireDeployment(db, id)
            for m in measurements {
                try await db.execute(
                    "INSERT INTO deployment_measurements (deployment_id, key, timestamp, value) VALUES (?, ?, ?, ?) ON CONFLICT (deployment_id, key, timestamp, value) DO NOTHING",
                    [.text(id), .text(m.key), .int(m.timestamp), .double(m.value)])
            }
        }
    }

    public func deploymentMeasurements(id: String, key: String?, maxResults: Int) async throws -> [DeploymentMeasurement] {
        try await read { db in
            _ = try await Self.requireDeployment(db, id)
            var sql = "SELECT key, value, timestamp FROM deployment_measurements WHERE deployment_id = ?"
            var binds: [SQLValue] = [.text(id)]
            if let key {
                sql += " AND key = ?"
                binds.append(.text(key))
            }
            return try await db.query(sql + " ORDER BY key, timestamp LIMIT ?", binds + [.int(Int64(maxResults))]).map {
                DeploymentMeasurement(key: $0.string(0), value: $0.double(1), timestamp: $0.int(2))
            }
        }
    }

    static let incidentColumns = "id, deployment_id, note, opened_by, opened_time, status, closed_by, closed_time, resolution"

    static func incident(_ r: SQLRow) -> Incident {
        Incident(
            id: r.string(0), deploymentID: r.string(1), note: r.string(2), openedBy: r.string(3), openedTime: r.int(4), status: r.string(5),
            closedBy: r.optionalString(6), closedTime: r.optionalInt(7), resolution: r.optionalString(8))
    }

    static func requireIncident(_ db: any SQLConnection, _ id: String) async throws -> Incident {
        guard let r = try await db.queryOne("SELECT \(incidentColumns) FROM incidents WHERE id = ?", [.text(id)]) else {
            throw RepriseError.notFound("Incident '\(id)' not found.")
        }
        return incident(r)
    }

    static func validateNote(_ note: String, _ what: String) throws {
        guard !note.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw RepriseError.missing(what) }
        if note.utf8.count > 100_000 { throw RepriseError.invalid("The \(what) is longer than 100000 bytes.") }
    }

    public func openIncident(deploymentID: String, note: String, user: String) async throws -> Incident {
        try Self.validateNote(note, "note")
        let id = "inc-" + Self.newID()
        return try await write { db, audit in
            let deployment = try await Self.requireDeployment(db, deploymentID)
            try await db.execute(
                "INSERT INTO incidents (\(Self.incidentColumns)) VALUES (?, ?, ?, ?, ?, 'open', NULL, NULL, NULL)",
                [.text(id), .text(deploymentID), .text(note), .text(user), .int(Self.now())])
            try await audit.record(db, "incident.open", "incident", id, ["deployment_id": .string(deploymentID)])
            let opened = try await Self.requireIncident(db, id)
            var data = opened.json
            if case .object(var o) = data {
                o["deployment"] = deployment.json
                data = .object(o)
            }
            try await Self.enqueueWebhookEvent(db, WebhookEvent(entity: "incident", action: "created"), data: data)
            return opened
        }
    }

    public func closeIncident(id: String, resolution: String, user: String) async throws -> Incident {
        try Self.validateNote(resolution, "resolution")
        return try await write { db, audit in
            let current = try await Self.requireIncident(db, id)
            guard current.status == "open" else { throw RepriseError(.invalidState, "Incident '\(id)' is already closed.") }
            try await db.execute(
                "UPDATE incidents SET status = 'closed', closed_by = ?, closed_time = ?, resolution = ? WHERE id = ?",
                [.text(user), .int(Self.now()), .text(resolution), .text(id)])
            try await audit.record(db, "incident.close", "incident", id, [:])
            let closed = try await Self.requireIncident(db, id)
            try await Self.enqueueWebhookEvent(db, WebhookEvent(entity: "incident", action: "closed"), data: closed.json)
            return closed
        }
    }

    public func getIncident(id: String) async throws -> Incident {
        try await read { db in try await Self.requireIncident(db, id) }
    }

    public func incidents(deploymentID: String?, environment: String?, status: String?, maxResults: Int) async throws -> [Incident] {
        try await read { db in
            var sql = "SELECT \(Self.incidentColumns.split(separator: ",").map { "i." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", ")) FROM incidents i JOIN deployments d ON d.id = i.deployment_id WHERE 1 = 1"
            var binds: [SQLValue] = []
            if let deploymentID {
                sql += " AND i.deployment_id = ?"
                binds.append(.text(deploymentID))
            }
            if let environment {
                sql += " AND d.environment = ?"
                binds.append(.text(environment))
            }
            if let status {
                sql += " AND i.status = ?"
                binds.append(.text(status))
            }
            return try await db.query(sql + " ORDER BY i.opened_time DESC, i.id LIMIT ?", binds + [.int(Int64(maxResults))]).map(Self.incident)
        }
    }
}
