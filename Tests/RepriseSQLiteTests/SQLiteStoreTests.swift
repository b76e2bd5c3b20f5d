import Foundation
import RepriseCore
import RepriseSQL
import RepriseSQLite
import RepriseTestSupport
import Testing

/// A fresh SQLite file per store; the folder is left for the OS temp cleaner.
@Sendable func makeSQLiteStore() async throws -> SQLTrackingStore {
    let dir = try TempDirectory(prefix: "reprise-sqlite")
    let store = SQLTrackingStore(
        driver: try SQLiteDriver(path: dir.path + "/reprise.db"),
        artifacts: ArtifactRootPolicy(defaultRoot: "mlflow-artifacts:/", workingDirectory: dir.path))
    try await store.migrate()
    return store
}

@Suite("Store conformance on SQLite")
struct SQLiteStoreConformanceTests {
    let suite = StoreConformance(make: { try await makeSQLiteStore() })

    @Test func experiments() async throws { try await suite.experiments() }
    @Test func experimentSearch() async throws { try await suite.experimentSearch() }
    @Test func runsLifecycle() async throws { try await suite.runsLifecycle() }
    @Test func paramsAndMetrics() async throws { try await suite.paramsAndMetrics() }
    @Test func runSearch() async throws { try await suite.runSearch() }
    @Test func inputsAndOutputs() async throws { try await suite.inputsAndOutputs() }
    @Test func loggedModels() async throws { try await suite.loggedModels() }
    @Test func concurrentWrites() async throws { try await suite.concurrentWrites() }
}

@Suite("SQLite driver")
struct SQLiteDriverTests {
    @Test func reopenKeepsCommittedWritesAndMigratesOnce() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let path = dir.path + "/reprise.db"
        let policy = ArtifactRootPolicy(defaultRoot: "mlflow-artifacts:/", workingDirectory: dir.path)
        var driver = try SQLiteDriver(path: path)
        var store = SQLTrackingStore(driver: driver, artifacts: policy)
        try await store.migrate()
        let exp = try await store.createExperiment(name: "durable", artifactLocation: nil, tags: [])
        let run = try await store.createRun(CreateRunInput(experimentID: exp, userID: "u", runName: "r", startTime: 1, tags: []))
        try await store.logBatch(
            runID: run.info.runID, metrics: [Metric(key: "m", value: 1, timestamp: 1)], params: [], tags: [], conflictStyle: .single)
        try await driver.shutdown()

        driver = try SQLiteDriver(path: path)
        store = SQLTrackingStore(driver: driver, artifacts: policy)
        try await store.migrate()
        #expect(try await store.getExperiment(name: "durable").experimentID == exp)
        #expect(try await store.getRun(id: run.info.runID).metrics.map(\.value) == [1])
        let versions = try await driver.read { db in try db.query("SELECT version FROM reprise_schema_migrations", []).map { $0.int(0) } }
        #expect(versions == [1, 2, 3, 4, 5, 6, 7])
        try await driver.shutdown()
    }

    @Test func failedBodyRollsBackOnlyItself() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let driver = try SQLiteDriver(path: dir.path + "/t.db")
        try await driver.write { db in try db.execute("CREATE TABLE t (v INTEGER)", []) }
        let ok = Task { try await driver.write { db in try db.execute("INSERT INTO t VALUES (1)", []) } }
        let bad = Task {
            try await driver.write { db in
                try db.execute("INSERT INTO t VALUES (2)", [])
                throw RepriseError.invalid("no")
            }
        }
        _ = try await ok.value
        await #expect(throws: RepriseError.self) { _ = try await bad.value }
        let values = try await driver.read { db in try db.query("SELECT v FROM t", []).map { $0.int(0) } }
        #expect(values == [1])
        try await driver.shutdown()
    }
}

@Suite("Registry conformance on SQLite")
struct SQLiteRegistryConformanceTests {
    let suite = RegistryConformance(make: { try await makeSQLiteStore() })

    @Test func registeredModels() async throws { try await suite.registeredModels() }
    @Test func versionsStagesAndAliases() async throws { try await suite.versionsStagesAndAliases() }
    @Test func registrySearch() async throws { try await suite.registrySearch() }
}

@Suite("Governance conformance on SQLite")
struct SQLiteGovernanceConformanceTests {
    let suite = GovernanceConformance(make: { try await makeSQLiteStore() })

    @Test func protectedAliasNeedsApprovals() async throws { try await suite.protectedAliasNeedsApprovals() }
    @Test func serverWidePolicyAndChecks() async throws { try await suite.serverWidePolicyAndChecks() }
    @Test func sealedRuns() async throws { try await suite.sealedRuns() }
    @Test func auditChain() async throws {
        try await suite.auditChain { store, sql in
            let driver = try #require((store as? SQLTrackingStore)?.driver)
            try await driver.write { db in try db.execute(sql, []) }
        }
    }
}

@Suite("Identity conformance on SQLite")
struct SQLiteIdentityConformanceTests {
    let suite = IdentityConformance(make: { try await makeSQLiteStore() })

    @Test func usersRolesAndGrants() async throws { try await suite.usersRolesAndGrants() }
    @Test func tokens() async throws { try await suite.tokens() }
    @Test func governanceOnIdentities() async throws { try await suite.governanceOnIdentities() }
    @Test func approversFollowIdentities() async throws { try await suite.approversFollowIdentities() }
}

@Suite("Webhook conformance on SQLite")
struct SQLiteWebhookConformanceTests {
    let suite = WebhookConformance(make: { try await makeSQLiteStore() })

    @Test func definitions() async throws { try await suite.definitions() }
    @Test func outbox() async throws { try await suite.outbox() }
    @Test func leasingAndOutcomes() async throws { try await suite.leasingAndOutcomes() }

    @Test func secretsAreSealedAtRest() async throws {
        let store = try await makeSQLiteStore()
        _ = try await store.createWebhook(
            name: "h", description: "", url: "https://a.example/", events: [WebhookEvent(entity: "MODEL_VERSION", action: "CREATED")],
            secret: "plain-secret-value", status: .active)
        let stored = try await store.driver.read { db in try db.query("SELECT secret FROM webhooks", []).map { $0.string(0) } }
        #expect(stored.count == 1 && !stored[0].contains("plain-secret-value") && stored[0].hasPrefix("aesgcm1:"))
        // Another key cannot open it, and says what to do.
        let other = SecretSealer(keyMaterial: Array("another key".utf8))
        #expect(throws: RepriseError.self) { _ = try other.open(stored[0]) }
    }
}

@Suite("Reproducibility conformance on SQLite")
struct SQLiteReproConformanceTests {
    let suite = ReproConformance(make: { try await makeSQLiteStore() })

    @Test func policies() async throws { try await suite.policies() }
    @Test func reproductionsChecksAndLineage() async throws { try await suite.reproductionsChecksAndLineage() }
}
