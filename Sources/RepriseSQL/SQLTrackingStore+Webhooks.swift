import Foundation
import RepriseCore

extension SQLTrackingStore: WebhookStore {
    static let webhookColumns = "webhook_id, name, description, url, events, status, creation_time, last_updated_time"

    static func decodeEvents(_ text: String) -> [WebhookEvent] {
        guard case .array(let items)? = try? JSONValue.parse(text) else { return [] }
        return items.compactMap { item in
            guard let e = item["entity"]?.stringValue, let a = item["action"]?.stringValue else { return nil }
            return WebhookEvent(entity: e, action: a)
        }
    }

    static func encodeEvents(_ events: [WebhookEvent]) -> String { JSONValue.array(events.map(\.json)).jsonString }

    static func webhook(_ row: SQLRow) -> Webhook {
        Webhook(
            id: row.string(0), name: row.string(1), description: row.string(2), url: row.string(3),
            events: decodeEvents(row.string(4)), status: WebhookStatus(rawValue: row.string(5)) ?? .disabled,
            creationTime: row.int(6), lastUpdatedTime: row.int(7))
    }

    static func requireWebhook(_ db: any SQLConnection, _ id: String) async throws -> Webhook {
        guard let row = try await db.queryOne("SELECT \(webhookColumns) FROM webhooks WHERE webhook_id = ?", [.text(id)]) else {
            throw RepriseError.notFound("Webhook with ID \(id) not found.")
        }
        return webhook(row)
    }

    static func validateWebhookName(_ name: String) throws {
        if name.isEmpty { throw RepriseError.missing("name") }
        if name.count > 256 { throw RepriseError.invalid("Webhook name is longer than 256 characters.") }
    }

    public func createWebhook(
        name: String, description: String, url: String, events: [WebhookEvent], secret: String?, status: WebhookStatus
    ) async throws -> Webhook {
        try Self.validateWebhookName(name)
        if events.isEmpty { throw RepriseError.invalid("Webhook events must be a non-empty list of WebhookEvent objects: [].") }
        let sealed = try secret.flatMap { $0.isEmpty ? nil : try secrets.seal($0) } ?? ""
        let id = RandomID.uuid()
        return try await write { db, audit in
            let now = Self.now()
            try await db.execute(
                "INSERT INTO webhooks (\(Self.webhookColumns), secret) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [.text(id), .text(name), .text(description), .text(url), .text(Self.encodeEvents(events)), .text(status.rawValue),
                 .int(now), .int(now), .text(sealed)])
            try await audit.record(
                db, "webhook.create", "webhook", id,
                ["name": .string(name), "url": .string(url), "events": .array(events.map { .string($0.dottedName) }),
                 "status": .string(status.rawValue), "signed": .bool(!sealed.isEmpty)])
            return try await Self.requireWebhook(db, id)
        }
    }

    public func listWebhooks(maxResults: Int, pageToken: String?) async throws -> Page<Webhook> {
        guard (1...1000).contains(maxResults) else { throw RepriseError.invalid("max_results must be between 1 and 1000.") }
        let offset = try PageToken.decode(pageToken)
        return try await read { db in
            let rows = try await db.query(
                "SELECT \(Self.webhookColumns) FROM webhooks ORDER BY creation_time DESC, webhook_id DESC LIMIT ? OFFSET ?",
                [.int(Int64(maxResults + 1)), .int(Int64(offset))])
            let items = rows.prefix(maxResults).map(Self.webhook)
            return Page(items: Array(items), nextOffset: rows.count > maxResults ? offset + maxResults : nil)
        }
    }

    public func getWebhook(id: String) async throws -> Webhook {
        try await read { db in try await Self.requireWebhook(db, id) }
    }

    public func updateWebhook(id: String, _ update: WebhookUpdate) async throws -> Webhook {
        if let name = update.name { try Self.validateWebhookName(name) }
        let sealed = try update.secret.map { $0.isEmpty ? "" : try secrets.seal($0) }
        return try await write { db, audit in
            let before = try await Self.requireWebhook(db, id)
            var sets: [String] = []
            var binds: [SQLValue] = []
            var changes = JSONObject()
            if let v = update.name, v != before.name {
                sets.append("name = ?")
                binds.append(.text(v))
                changes["name"] = ["before": .string(before.name), "after": .string(v)]
            }
            if let v = update.description, v != before.description {
                sets.append("description = ?")
                binds.append(.text(v))
                changes["description"] = .string(v)
            }
            if let v = update.url, v != before.url {
                sets.append("url = ?")
                binds.append(.text(v))
                changes["url"] = ["before": .string(before.url), "after": .string(v)]
            }
            if let v = update.events, v != before.events {
                sets.append("events = ?")
                binds.append(.text(Self.encodeEvents(v)))
                changes["events"] = .array(v.map { .string($0.dottedName) })
            }
            if let v = update.status, v != before.status {
                sets.append("status = ?")
                binds.append(.text(v.rawValue))
                changes["status"] = ["before": .string(before.status.rawValue), "after": .string(v.rawValue)]
            }
            if let sealed {
                sets.append("secret = ?")
                binds.append(.text(sealed))
                changes["secret"] = .string(sealed.isEmpty ? "removed" : "replaced")  // never the secret itself
            }
            sets.append("last_updated_time = ?")
            binds.append(.int(Self.now()))
            binds.append(.text(id))
            try await db.execute("UPDATE webhooks SET \(sets.joined(separator: ", ")) WHERE webhook_id = ?", binds)
            try await audit.record(db, "webhook.update", "webhook", id, .object(changes))
            return try await Self.requireWebhook(db, id)
        }
    }

    public func deleteWebhook(id: String) async throws {
        try await write { db, audit in
            let w = try await Self.requireWebhook(db, id)
            try await db.execute("DELETE FROM webhook_deliveries WHERE webhook_id = ?", [.text(id)])
            try await db.execute("DELETE FROM webhooks WHERE webhook_id = ?", [.text(id)])
            try await audit.record(db, "webhook.delete", "webhook", id, ["name": .string(w.name), "url": .string(w.url)])
        }
    }

    public func webhookSecret(id: String) async throws -> String? {
        let sealed = try await read { db -> String in
            _ = try await Self.requireWebhook(db, id)
            return try await db.queryOne("SELECT secret FROM webhooks WHERE webhook_id = ?", [.text(id)])?.string(0) ?? ""
        }
        return sealed.isEmpty ? nil : try secrets.open(sealed)
    }

    // MARK: - Outbox

    static let deliveryColumns =
        "delivery_id, webhook_id, entity, action, payload, timestamp, state, attempts, next_attempt_time, last_status, last_error, creation_time, last_updated_time"

    static func delivery(_ row: SQLRow) -> WebhookDelivery {
        WebhookDelivery(
            id: row.string(0), webhookID: row.string(1), event: WebhookEvent(entity: row.string(2), action: row.string(3)),
            payload: row.string(4), timestamp: row.int(5), state: WebhookDeliveryState(rawValue: row.string(6)) ?? .failed,
            attempts: Int(row.int(7)), nextAttemptTime: row.int(8), lastStatus: row.optionalInt(9).map { Int($0) },
            lastError: row.string(10), creationTime: row.int(11), lastUpdatedTime: row.int(12))
    }

    /// Whether `model` is an MLflow prompt (prompts share the registry tables).
    static func isPrompt(_ db: any SQLConnection, _ model: String) async throws -> Bool {
        try await db.queryOne(
            "SELECT 1 FROM registered_model_tags WHERE name = ? AND key = 'mlflow.prompt.is_prompt' AND value = 'true'",
            [.text(model)]) != nil
    }

    /// Tags as the payload shows them; a prompt's own bookkeeping tags are left out.
    static func payloadTags(_ tags: [KeyValue], prompt: Bool) -> JSONValue {
        var o = JSONObject()
        for t in tags where !(prompt && t.key.hasPrefix("mlflow.prompt.")) { o[t.key] = .string(t.value) }
        return .object(o)
    }

    /// Queues one registry event for every active webhook that subscribes to it, inside the caller's
    /// write transaction. `entity` is the model-registry name (`model_version`, …); a prompt's events
    /// are renamed to their prompt twins (`prompt_version`, …) as MLflow does.
    static func emitWebhookEvent(
        _ db: any SQLConnection, model: String, entity: String, action: String,
        data: (_ prompt: Bool) async throws -> JSONValue
    ) async throws {
        let hooks = try await db.query("SELECT webhook_id, events FROM webhooks WHERE status = 'ACTIVE'", [])
        if hooks.isEmpty { return }
        let prompt = try await isPrompt(db, model)
        var wireEntity = entity
        if prompt {
            switch entity {
            case "registered_model": wireEntity = "prompt"
            case "registered_model_tag": wireEntity = "prompt_tag"
            case "model_version": wireEntity = "prompt_version"
            case "model_version_tag": wireEntity = "prompt_version_tag"
            case "model_version_alias": wireEntity = "prompt_alias"
            default: break
            }
        } else if entity == "registered_model_tag" {
            return  // MLflow has no event for a model's own tags
        }
        let event = WebhookEvent(entity: wireEntity, action: action)
        let subscribers = hooks.filter { decodeEvents($0.string(1)).contains(event) }
        if subscribers.isEmpty { return }
        try await enqueue(db, event, data: try await data(prompt), to: subscribers.map { $0.string(0) })
    }

    /// Queues `event` for every active webhook subscribed to it (in the caller's transaction, so a
    /// change and its deliveries commit together).
    static func enqueueWebhookEvent(_ db: any SQLConnection, _ event: WebhookEvent, data: JSONValue) async throws {
        let hooks = try await db.query("SELECT webhook_id, events FROM webhooks WHERE status = 'ACTIVE'", [])
        let subscribers = hooks.filter { decodeEvents($0.string(1)).contains(event) }.map { $0.string(0) }
        if subscribers.isEmpty { return }
        try await enqueue(db, event, data: data, to: subscribers)
    }

    static func enqueue(_ db: any SQLConnection, _ event: WebhookEvent, data: JSONValue, to subscribers: [String]) async throws {
        let now = Date()
        let body = event.payload(data: data, at: now)
        let ms = Int64((now.timeIntervalSince1970 * 1000).rounded(.down))
        for hook in subscribers {
            try await db.execute(
                "INSERT INTO webhook_deliveries (\(deliveryColumns), lease_until) VALUES (?, ?, ?, ?, ?, ?, 'PENDING', 0, ?, NULL, '', ?, ?, 0)",
                [.text(RandomID.uuid()), .text(hook), .text(event.entity), .text(event.action),
                 .text(body), .int(ms / 1000), .int(ms), .int(ms), .int(ms)])
        }
    }

    public func claimDeliveries(limit: Int, leaseMillis: Int64) async throws -> [ClaimedDelivery] {
        let now = Self.now()
        // A cheap read first: most polls find nothing and must not take the writer.
        let due = try await read { db in
            try await db.queryOne(
                "SELECT 1 FROM webhook_deliveries WHERE state = 'PENDING' AND next_attempt_time <= ? AND lease_until <= ? LIMIT 1",
                [.int(now), .int(now)]) != nil
        }
        if !due { return [] }
        let claimSQL = """
            SELECT \(qualified(Self.deliveryColumns, "d")),
              w.url, w.secret, w.status
            FROM webhook_deliveries d JOIN webhooks w ON w.webhook_id = d.webhook_id
            WHERE d.state = 'PENDING' AND d.next_attempt_time <= ? AND d.lease_until <= ?
            ORDER BY d.next_attempt_time LIMIT ?\(dialect.claimRows("d"))
            """
        // Due deliveries are claimed (rows another claimer holds are skipped, not waited for) and
        // leased in the same transaction, so each is sent by one deliverer, on one server.
        let claimed = try await write { db, _ -> [(WebhookDelivery, String, String, String)] in
            let rows = try await db.query(claimSQL, [.int(now), .int(now), .int(Int64(limit))])
            if rows.isEmpty { return [] }
            let out = rows.map { row in (Self.delivery(row), row.string(13), row.string(14), row.string(15)) }
            try await db.execute(
                "UPDATE webhook_deliveries SET lease_until = ? WHERE delivery_id IN (\(placeholders(out.count)))",
                [.int(now + leaseMillis)] + out.map { .text($0.0.id) })
            return out
        }
        var result: [ClaimedDelivery] = []
        for (d, url, sealed, status) in claimed {
            if status != WebhookStatus.active.rawValue {
                try await finishDelivery(id: d.id, outcome: .failed(status: nil, error: "the webhook was disabled before delivery"))
                continue
            }
            do {
                result.append(ClaimedDelivery(delivery: d, url: url, secret: sealed.isEmpty ? nil : try secrets.open(sealed)))
            } catch let e as RepriseError {
                try await finishDelivery(id: d.id, outcome: .failed(status: nil, error: e.message))
            }
        }
        return result
    }

    public func finishDelivery(id: String, outcome: DeliveryOutcome) async throws {
        let now = Self.now()
        try await write { db, _ in
            switch outcome {
            case .delivered(let status):
                try await db.execute(
                    "UPDATE webhook_deliveries SET state = 'DELIVERED', attempts = attempts + 1, last_status = ?, last_error = '', lease_until = 0, last_updated_time = ? WHERE delivery_id = ?",
                    [.int(Int64(status)), .int(now), .text(id)])
            case .retry(let status, let error, let next):
                try await db.execute(
                    "UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = ?, last_error = ?, next_attempt_time = ?, lease_until = 0, last_updated_time = ? WHERE delivery_id = ?",
                    [status.map { .int(Int64($0)) } ?? .null, .text(error), .int(next), .int(now), .text(id)])
            case .failed(let status, let error):
                try await db.execute(
                    "UPDATE webhook_deliveries SET state = 'FAILED', attempts = attempts + 1, last_status = ?, last_error = ?, lease_until = 0, last_updated_time = ? WHERE delivery_id = ?",
                    [status.map { .int(Int64($0)) } ?? .null, .text(error), .int(now), .text(id)])
            }
        }
    }

    public func deliveries(webhookID: String, limit: Int) async throws -> [WebhookDelivery] {
        try await read { db in
            _ = try await Self.requireWebhook(db, webhookID)
            return try await db.query(
                "SELECT \(Self.deliveryColumns) FROM webhook_deliveries WHERE webhook_id = ? ORDER BY creation_time DESC, delivery_id DESC LIMIT ?",
                [.text(webhookID), .int(Int64(max(1, min(limit, 1000))))]
            ).map(Self.delivery)
        }
    }

    /// Forgets finished deliveries older than `olderThanMillis`; pending ones are kept.
    public func pendingDeliveryCount() async throws -> Int {
        try await read { db in Int(try await db.queryOne("SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'PENDING'", [])?.int(0) ?? 0) }
    }

    public func pruneDeliveries(olderThanMillis: Int64) async throws {
        let cutoff = Self.now() - olderThanMillis
        try await write { db, _ in
            try await db.execute(
                "DELETE FROM webhook_deliveries WHERE state <> 'PENDING' AND last_updated_time < ?", [.int(cutoff)])
        }
    }
}
