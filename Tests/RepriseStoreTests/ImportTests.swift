import Foundation
import RepriseCore
@testable import RepriseSQL
import Testing

/// The one store operation every import writes through (`importBatch`), on every backend: ids kept,
/// nothing duplicated when it runs again, all or nothing per batch, provenance recorded.
@Suite("Imports")
struct ImportTests {
    static let provenance = ImportProvenance(source: "sqlite:////data/mlflow.db", kind: "mlflow-database", time: 1_700_000_000_000)
    static let runID = "0123456789abcdef0123456789abcdef"

    static func batch() -> ImportBatch {
        var b = ImportBatch()
        b.experiments = [
            Experiment(
                experimentID: "42", name: "imported", artifactLocation: "mlflow-artifacts:/42", lifecycleStage: .active, creationTime: 5,
                lastUpdateTime: 6, tags: [KeyValue("team", "vision")])
        ]
        // 1,500 points: PostgreSQL loads them with COPY.
        var history = (0..<1500).map { Metric(key: "loss", value: 1.0 / Double($0 + 1), timestamp: 1000 + Int64($0), step: Int64($0)) }
        history.append(Metric(key: "odd", value: .nan, timestamp: 7, step: 0))
        b.runs = [
            ImportedRun(
                info: RunInfo(
                    runID: runID, experimentID: "42", runName: "old-run", userID: "ana", status: .finished, startTime: 10, endTime: 20,
                    artifactURI: "mlflow-artifacts:/42/\(runID)/artifacts", lifecycleStage: .active),
                params: [KeyValue("lr", "0.1")],
                tags: [KeyValue("mlflow.user", "ana"), KeyValue("reprise.compliant", "true"), KeyValue("reprise.import.source", "forged")],
                history: history,
                latest: [history[1499], history[1500]],
                datasetInputs: [
                    DatasetInput(
                        tags: [KeyValue("mlflow.data.context", "training")],
                        dataset: Dataset(name: "iris", digest: "abc", sourceType: "local", source: "{}", schema: nil, profile: nil))
                ],
                modelOutputs: [ModelOutput(modelID: "m-1", step: 0)])
        ]
        b.loggedModels = [
            LoggedModel(
                modelID: "m-1", experimentID: "42", name: "model", creationTime: 11, lastUpdatedTime: 12,
                artifactURI: "mlflow-artifacts:/42/models/m-1/artifacts", status: .ready, statusMessage: nil, modelType: "", sourceRunID: runID,
                lifecycleStage: .active, tags: [], params: [], metrics: [])
        ]
        b.registeredModels = [
            ImportedRegisteredModel(
                model: RegisteredModel(
                    name: "clf", creationTime: 30, lastUpdatedTime: 31, description: "", userID: "", latestVersions: [],
                    tags: [KeyValue("owner", "vision")], aliases: [("champion", 2)]),
                versions: [1, 2].map { v in
                    ModelVersion(
                        name: "clf", version: v, creationTime: 30 + v, lastUpdatedTime: 30 + v, description: "", userID: "ana",
                        currentStage: v == 2 ? "Staging" : "None", source: "models:/m-1", runID: runID, runLink: "", status: "READY",
                        statusMessage: "", modelID: "m-1", storageLocation: "mlflow-artifacts:/42/models/m-1/artifacts",
                        tags: [KeyValue("v", "\(v)")], aliases: [])
                })
        ]
        b.webhooks = [
            ImportedWebhook(
                webhook: Webhook(
                    id: "hook-1", name: "deploy", description: "", url: "https://example.com/h", events: [WebhookEvent(entity: "model_version", action: "created")],
                    status: .active, creationTime: 40, lastUpdatedTime: 40),
                hadSecret: true)
        ]
        return b
    }

    static func importing<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        try await WriteContext.$current.withValue(WriteContext(actor: "import", authenticated: false, requestID: "import-test")) {
            try await body()
        }
    }

    @Test(arguments: Backend.all) func idsAreKeptAndASecondImportAddsNothing(_ b: Backend) async throws {
        let store = try await b.make()
        let first = try await Self.importing { try await store.importBatch(Self.batch(), from: Self.provenance) }
        #expect(first.added[.runs] == 1 && first.added[.metricPoints] == 1501 && first.added[.modelVersions] == 2 && first.added[.aliases] == 1)
        #expect(first.present.isEmpty)

        let run = try await store.getRun(id: Self.runID)
        #expect(run.info.experimentID == "42" && run.info.runName == "old-run" && run.info.startTime == 10 && run.info.status == .finished)
        #expect(try await store.metricHistory(runID: Self.runID, key: "loss", offset: 0, limit: nil).items.count == 1500)
        #expect(run.metrics.first { $0.key == "odd" }?.value.isNaN == true)
        #expect(run.metrics.first { $0.key == "loss" }?.step == 1499)
        let tags = Dictionary(run.tags.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        // The source's own reserved tags are not taken at its word; provenance is the import's.
        #expect(tags["reprise.compliant"] == nil)
        #expect(tags[ImportTag.source] == Self.provenance.source)
        #expect(tags[ImportTag.passportMissing] == "code,environment,seed,purpose,command,baseline")
        #expect(run.datasetInputs.map(\.dataset.digest) == ["abc"] && run.modelOutputs.map(\.modelID) == ["m-1"])
        #expect(try await store.getExperiment(id: "42").tags == [KeyValue("team", "vision")])
        #expect(try await store.versionByAlias(name: "clf", alias: "champion").currentStage == "Staging")
        #expect(try await store.getWebhook(id: "hook-1").status == .disabled)

        // New experiments draw ids after the imported ones.
        #expect(try await store.createExperiment(name: "after", artifactLocation: nil, tags: []) == "43")

        let again = try await Self.importing { try await store.importBatch(Self.batch(), from: Self.provenance) }
        #expect(again.added.values.allSatisfy { $0 == 0 })
        #expect(again.present[.runs] == 1 && again.present[.experiments] == 1 && again.present[.modelVersions] == 2)
        #expect(try await store.metricHistory(runID: Self.runID, key: "loss", offset: 0, limit: nil).items.count == 1500)

        let events = try await store.auditEvents(entityType: "run", entityID: Self.runID, afterSeq: 0, limit: 10)
        #expect(events.map(\.action) == ["import.run"] && events.first?.actor == "import")
        #expect(events.first?.summary.contains("sqlite:////data/mlflow.db") == true)
        #expect(try await store.verifyAudit().ok)
    }

    /// An experiment whose name is taken here by another id refuses the whole batch.
    @Test(arguments: Backend.all) func aNameClashWritesNothing(_ b: Backend) async throws {
        let store = try await b.make()
        _ = try await store.createExperiment(name: "imported", artifactLocation: nil, tags: [])
        await #expect(throws: RepriseError.self) {
            try await Self.importing { try await store.importBatch(Self.batch(), from: Self.provenance, checkpoint: ("import.x.runs", "r")) }
        }
        await #expect(throws: RepriseError.self) { try await store.getRun(id: Self.runID) }
        #expect(try await store.importCheckpoint("import.x.runs") == nil)
        #expect(try await store.auditEvents(entityType: "run", entityID: nil, afterSeq: 0, limit: 10).isEmpty)
    }

    /// The place of an unfinished import is stored with its batch and forgotten at the end, and
    /// forgetting one source's places leaves another's (the prefix is matched literally).
    @Test(arguments: Backend.all) func checkpointsCommitWithTheirBatch(_ b: Backend) async throws {
        let store = try await b.make()
        let empty = ImportBatch()
        _ = try await Self.importing { try await store.importBatch(empty, from: Self.provenance, checkpoint: ("import.a_b.runs", "r1")) }
        _ = try await Self.importing { try await store.importBatch(empty, from: Self.provenance, checkpoint: ("import.aXb.runs", "r2")) }
        #expect(try await store.importCheckpoint("import.a_b.runs") == "r1")
        try await store.clearImportCheckpoints(prefix: "import.a_b.")
        #expect(try await store.importCheckpoint("import.a_b.runs") == nil)
        #expect(try await store.importCheckpoint("import.aXb.runs") == "r2")
    }
}
