import Foundation
import RepriseCore
import Testing

/// Webhook behaviour every backend must show: definitions, the outbox written with each registry
/// change, leasing, outcomes, and secrets that never come back out of the API.
public struct WebhookConformance: Sendable {
    public typealias Store = any TrackingStore & RegistryStore & GovernanceStore & WebhookStore
    let make: @Sendable () async throws -> Store

    /// - Parameter make: returns a new, empty, migrated store each time it is called.
    public init(make: @escaping @Sendable () async throws -> Store) { self.make = make }

    static let mvCreated = WebhookEvent(entity: "MODEL_VERSION", action: "CREATED")
    static let aliasCreated = WebhookEvent(entity: "MODEL_VERSION_ALIAS", action: "CREATED")

    public func definitions() async throws {
        let s = try await make()
        let a = try await s.createWebhook(
            name: "ci", description: "d", url: "https://ci.example/hook", events: [Self.mvCreated], secret: "s3cret", status: .active)
        #expect(a.status == .active && a.events == [Self.mvCreated] && a.creationTime == a.lastUpdatedTime)
        try await Task.sleep(for: .milliseconds(3))  // "newest first" needs distinct creation times
        let b = try await s.createWebhook(
            name: "ci", description: "", url: "https://other.example/", events: [Self.aliasCreated], secret: nil, status: .disabled)
        #expect(a.id != b.id, "names need not be unique; ids are")
        #expect(try await s.webhookSecret(id: a.id) == "s3cret")
        #expect(try await s.webhookSecret(id: b.id) == nil)
        #expect(a.json["secret"] == nil)

        let page1 = try await s.listWebhooks(maxResults: 1, pageToken: nil)
        #expect(page1.items.map(\.id) == [b.id], "newest first")
        let page2 = try await s.listWebhooks(maxResults: 1, pageToken: PageToken.encode(offset: page1.nextOffset ?? -1))
        #expect(page2.items.map(\.id) == [a.id] && page2.nextOffset == nil)
        for bad in [0, 1001] {
            await #expect(throws: RepriseError.self) { _ = try await s.listWebhooks(maxResults: bad, pageToken: nil) }
        }

        let updated = try await s.updateWebhook(
            id: a.id, WebhookUpdate(name: "ci2", events: [Self.aliasCreated, Self.mvCreated], status: .disabled, secret: "new"))
        #expect(updated.name == "ci2" && updated.status == .disabled && updated.events.count == 2 && updated.description == "d")
        #expect(try await s.webhookSecret(id: a.id) == "new")
        _ = try await s.updateWebhook(id: a.id, WebhookUpdate(secret: ""))
        #expect(try await s.webhookSecret(id: a.id) == nil)

        try await s.deleteWebhook(id: a.id)
        let missing = await GovernanceConformance.error { _ = try await s.getWebhook(id: a.id) }
        #expect(missing?.code == .resourceDoesNotExist && missing?.message == "Webhook with ID \(a.id) not found.")
        #expect(await GovernanceConformance.error { try await s.deleteWebhook(id: a.id) }?.code == .resourceDoesNotExist)
        #expect(await GovernanceConformance.error { _ = try await s.updateWebhook(id: "nope", WebhookUpdate()) }?.code == .resourceDoesNotExist)

        // Every change to a webhook is in the audit trail, without the secret.
        let events = try await s.auditEvents(entityType: "webhook", entityID: nil, afterSeq: 0, limit: 100)
        #expect(events.map(\.action) == ["webhook.create", "webhook.create", "webhook.update", "webhook.update", "webhook.delete"])
        #expect(!events.contains { $0.summary.contains("s3cret") || $0.summary.contains("\"new\"") })
    }

    public func outbox() async throws {
        let s = try await make()
        let all = try await s.createWebhook(
            name: "all", description: "", url: "https://a.example/",
            events: WebhookEvent.validActions.flatMap { e, actions in actions.map { WebhookEvent(entity: e, action: $0) } }.sorted(),
            secret: "k", status: .active)
        let versionsOnly = try await s.createWebhook(
            name: "versions", description: "", url: "https://b.example/", events: [Self.mvCreated], secret: nil, status: .active)
        let off = try await s.createWebhook(
            name: "off", description: "", url: "https://c.example/", events: [Self.mvCreated], secret: nil, status: .disabled)

        _ = try await s.createRegisteredModel(name: "m", tags: [KeyValue("team", "fraud")], description: "desc", userID: "")
        _ = try await s.createModelVersion(
            CreateModelVersionInput(
                name: "m", source: "s3://bucket/model", runID: nil, tags: [KeyValue("t", "v")], runLink: nil, description: "vd",
                modelID: nil))
        try await s.setModelVersionTag(name: "m", version: 1, tag: KeyValue("k", "v"))
        try await s.deleteModelVersionTag(name: "m", version: 1, key: "k")
        try await s.setAlias(name: "m", alias: "champion", version: 1)
        try await s.deleteAlias(name: "m", alias: "champion")
        try await s.setRegisteredModelTag(name: "m", tag: KeyValue("x", "y"))  // no event for a model's own tags
        // A failed write queues nothing.
        _ = await GovernanceConformance.error { try await s.setModelVersionTag(name: "m", version: 9, tag: KeyValue("k", "v")) }

        let toAll = try await s.deliveries(webhookID: all.id, limit: 100).reversed().map { $0 }
        #expect(
            toAll.map(\.event.dottedName) == [
                "registered_model.created", "model_version.created", "model_version_tag.set", "model_version_tag.deleted",
                "model_version_alias.created", "model_version_alias.deleted",
            ])
        #expect(toAll.allSatisfy { $0.state == .pending && $0.attempts == 0 })
        let toVersions = try await s.deliveries(webhookID: versionsOnly.id, limit: 100)
        #expect(try await s.pendingDeliveryCount() == toAll.count + toVersions.count)
        let created = try JSONValue.parse(toAll[1].payload)
        #expect(created["entity"] == "model_version" && created["action"] == "created")
        #expect(created["timestamp"]?.stringValue?.hasSuffix("+00:00") == true)
        #expect(
            created["data"]
                == [
                    "name": "m", "version": "1", "source": "s3://bucket/model", "run_id": nil, "tags": ["t": "v"],
                    "description": "vd",
                ])
        #expect(try JSONValue.parse(toAll[0].payload)["data"] == ["name": "m", "tags": ["team": "fraud"], "description": "desc"])
        #expect(try JSONValue.parse(toAll[4].payload)["data"] == ["name": "m", "alias": "champion", "version": "1"])
        #expect(try JSONValue.parse(toAll[5].payload)["data"] == ["name": "m", "alias": "champion"])
        #expect(try await s.deliveries(webhookID: versionsOnly.id, limit: 100).map(\.event) == [Self.mvCreated])
        #expect(try await s.deliveries(webhookID: off.id, limit: 100).isEmpty, "a disabled webhook gets nothing")

        // Prompts share the registry tables; their events carry the prompt names.
        _ = try await s.createRegisteredModel(
            name: "greeting", tags: [KeyValue("mlflow.prompt.is_prompt", "true"), KeyValue("a", "b")], description: "c", userID: "")
        _ = try await s.createModelVersion(
            CreateModelVersionInput(
                name: "greeting", source: "s3://prompts/greeting", runID: nil,
                tags: [KeyValue("mlflow.prompt.is_prompt", "true"), KeyValue("mlflow.prompt.text", "Hi {{x}}")], runLink: nil,
                description: "c", modelID: nil))
        try await s.setRegisteredModelTag(name: "greeting", tag: KeyValue("k", "v"))
        let prompt = try await s.deliveries(webhookID: all.id, limit: 3).reversed().map { $0 }
        #expect(prompt.map(\.event.dottedName) == ["prompt.created", "prompt_version.created", "prompt_tag.set"])
        #expect(try JSONValue.parse(prompt[0].payload)["data"] == ["name": "greeting", "tags": ["a": "b"], "description": "c"])
        #expect(try JSONValue.parse(prompt[1].payload)["data"]?["template"] == "Hi {{x}}")
    }

    public func leasingAndOutcomes() async throws {
        let s = try await make()
        let hook = try await s.createWebhook(
            name: "h", description: "", url: "https://a.example/", events: [Self.mvCreated], secret: "k", status: .active)
        _ = try await s.createRegisteredModel(name: "m", tags: [], description: nil, userID: "")
        for _ in 0..<3 {
            _ = try await s.createModelVersion(
                CreateModelVersionInput(name: "m", source: "s3://b/m", runID: nil, tags: [], runLink: nil, description: nil, modelID: nil))
        }
        // Two deliverers asking at once never get the same delivery.
        async let first = s.claimDeliveries(limit: 2, leaseMillis: 60_000)
        async let second = s.claimDeliveries(limit: 2, leaseMillis: 60_000)
        let (a, b) = try await (first, second)
        let ids = (a + b).map(\.delivery.id)
        #expect(ids.count == 3 && Set(ids).count == 3)
        #expect((a + b).allSatisfy { $0.secret == "k" && $0.url == "https://a.example/" })
        #expect(try await s.claimDeliveries(limit: 10, leaseMillis: 60_000).isEmpty, "leased deliveries are not handed out again")

        let sorted = (a + b).map(\.delivery).sorted { $0.payload < $1.payload }
        try await s.finishDelivery(id: sorted[0].id, outcome: .delivered(status: 204))
        try await s.finishDelivery(id: sorted[1].id, outcome: .retry(status: 503, error: "busy", nextAttemptTime: 0))
        try await s.finishDelivery(id: sorted[2].id, outcome: .failed(status: 400, error: "refused"))
        let byID = Dictionary(uniqueKeysWithValues: try await s.deliveries(webhookID: hook.id, limit: 10).map { ($0.id, $0) })
        #expect(byID[sorted[0].id]?.state == .delivered && byID[sorted[0].id]?.lastStatus == 204)
        #expect(byID[sorted[1].id]?.state == .pending && byID[sorted[1].id]?.attempts == 1 && byID[sorted[1].id]?.lastError == "busy")
        #expect(byID[sorted[2].id]?.state == .failed && byID[sorted[2].id]?.lastStatus == 400)
        // The retry is due at once (next attempt 0), keeps its id, payload and timestamp.
        let again = try await s.claimDeliveries(limit: 10, leaseMillis: 60_000)
        #expect(again.map(\.delivery.id) == [sorted[1].id])
        #expect(again.first?.delivery.payload == sorted[1].payload && again.first?.delivery.timestamp == sorted[1].timestamp)

        // Disabling a webhook drops what it had queued; deleting it removes its deliveries.
        try await s.finishDelivery(id: sorted[1].id, outcome: .retry(status: nil, error: "x", nextAttemptTime: 0))
        _ = try await s.updateWebhook(id: hook.id, WebhookUpdate(status: .disabled))
        #expect(try await s.claimDeliveries(limit: 10, leaseMillis: 60_000).isEmpty)
        #expect(try await s.deliveries(webhookID: hook.id, limit: 10).allSatisfy { $0.state != .pending })
        try await s.pruneDeliveries(olderThanMillis: -60_000)
        #expect(try await s.deliveries(webhookID: hook.id, limit: 10).isEmpty)
    }
}
