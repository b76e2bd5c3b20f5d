import Foundation
import RepriseCore
import Testing

/// Deployment behaviour every backend must show: references resolved at record time, history and
/// the previous deployment, measurements, incidents, their webhook events and their lineage.
public struct DeploymentConformance: Sendable {
    public typealias Store = any TrackingStore & RegistryStore & DeploymentStore & WebhookStore & ReproStore
    let make: @Sendable () async throws -> Store

    /// - Parameter make: returns a new, empty, migrated store each time it is called.
    public init(make: @escaping @Sendable () async throws -> Store) { self.make = make }

    public func recordResolveAndTrace() async throws {
        let s = try await make()
        let hook = try await s.createWebhook(
            name: "ops", description: "", url: "https://ops.example/",
            events: [WebhookEvent(entity: "deployment", action: "created"), WebhookEvent(entity: "incident", action: "created"),
                     WebhookEvent(entity: "incident", action: "closed")],
            secret: nil, status: .active)
        let exp = try await s.createExperiment(name: "deploy", artifactLocation: nil, tags: [])
        let run = try await s.createRun(CreateRunInput(experimentID: exp, userID: "u", runName: "train", startTime: 1, tags: []))
        _ = try await s.createRegisteredModel(name: "churn", tags: [], description: nil, userID: "")
        for _ in 0..<2 {
            _ = try await s.createModelVersion(
                CreateModelVersionInput(name: "churn", source: "s3://b/churn", runID: run.info.runID, tags: [], runLink: nil, description: nil, modelID: nil))
        }
        _ = try await s.createRegisteredModel(name: "bot", tags: [KeyValue("mlflow.prompt.is_prompt", "true")], description: nil, userID: "")
        _ = try await s.createModelVersion(
            CreateModelVersionInput(
                name: "bot", source: "dummy", runID: nil, tags: [KeyValue("mlflow.prompt.is_prompt", "true")], runLink: nil, description: nil, modelID: nil))
        try await s.setAlias(name: "churn", alias: "production", version: 1)

        let first = try await s.recordDeployment(
            DeploymentInput(
                environment: "prod", model: try RegistryReference(parsing: "churn@production", what: "model"),
                prompts: [try RegistryReference(parsing: "prompts:/bot/1", what: "prompt")], endpoint: "https://api/churn", config: "a: 1\n",
                note: nil), user: "ana")
        #expect(first.model == DeployedVersion(name: "churn", version: 1, alias: "production") && first.prompts.map(\.version) == [1])
        #expect(first.configDigest?.count == 64 && first.deployedBy == "ana" && first.previousID == nil)
        try await s.setAlias(name: "churn", alias: "production", version: 2)
        let second = try await s.recordDeployment(
            DeploymentInput(environment: "prod", model: RegistryReference(name: "churn", alias: "production"), prompts: [], endpoint: nil, config: nil, note: "v2"),
            user: "bo")
        #expect(second.model.version == 2 && second.previousID == first.id)
        #expect(try await s.getDeployment(id: first.id).model.version == 1, "a recorded deployment keeps what it resolved to")
        _ = try await s.recordDeployment(
            DeploymentInput(environment: "staging", model: RegistryReference(name: "churn", version: 2), prompts: [], endpoint: nil, config: nil, note: nil),
            user: "bo")
        #expect(try await s.deployments(environment: "prod", maxResults: 10, offset: 0).items.map(\.id) == [second.id, first.id])
        #expect(try await s.deployments(environment: nil, maxResults: 10, offset: 0).items.count == 3)

        for bad in [
            DeploymentInput(environment: "prod", model: RegistryReference(name: "bot", version: 1), prompts: [], endpoint: nil, config: nil, note: nil),
            DeploymentInput(environment: "prod", model: RegistryReference(name: "churn", alias: "nope"), prompts: [], endpoint: nil, config: nil, note: nil),
            DeploymentInput(environment: "prod", model: RegistryReference(name: "churn", version: 1), prompts: [RegistryReference(name: "churn", version: 1)], endpoint: nil, config: nil, note: nil),
            DeploymentInput(environment: "pr od", model: RegistryReference(name: "churn", version: 1), prompts: [], endpoint: nil, config: nil, note: nil),
        ] {
            await #expect(throws: RepriseError.self) { _ = try await s.recordDeployment(bad, user: "x") }
        }
        #expect(try await s.deployments(environment: "prod", maxResults: 10, offset: 0).items.count == 2, "a refused record leaves nothing")

        try await s.logDeploymentMeasurements(id: second.id, [
            DeploymentMeasurement(key: "latency_ms", value: 120, timestamp: 1), DeploymentMeasurement(key: "latency_ms", value: 140, timestamp: 2),
        ])
        await #expect(throws: RepriseError.self) {
            try await s.logDeploymentMeasurements(id: second.id, [DeploymentMeasurement(key: "x", value: .nan, timestamp: 1)])
        }
        #expect(try await s.deploymentMeasurements(id: second.id, key: "latency_ms", maxResults: 10).map(\.value) == [120, 140])

        let incident = try await s.openIncident(deploymentID: second.id, note: "refusals up", user: "ops")
        #expect(try await s.incidents(deploymentID: nil, environment: "prod", status: "open", maxResults: 10).map(\.id) == [incident.id])
        let closed = try await s.closeIncident(id: incident.id, resolution: "rolled back", user: "ops")
        #expect(closed.status == "closed" && closed.closedBy == "ops")
        await #expect(throws: RepriseError.self) { _ = try await s.closeIncident(id: incident.id, resolution: "again", user: "ops") }
        #expect(try await s.incidents(deploymentID: nil, environment: "prod", status: "open", maxResults: 10).isEmpty)

        let events = try await s.deliveries(webhookID: hook.id, limit: 10).map(\.event.dottedName).sorted()
        #expect(events == ["deployment.created", "deployment.created", "deployment.created", "incident.closed", "incident.created"])

        let g = try await s.lineage(entity: "incident:\(incident.id)", depth: 10)
        let keys = Set(g.nodes.map(\.key))
        #expect(keys.isSuperset(of: ["deployment:\(second.id)", "model_version:churn/2", "run:\(run.info.runID)"]))
        #expect(!keys.contains("deployment:\(first.id)"), "the incident's path is its own deployment's")
    }
}
