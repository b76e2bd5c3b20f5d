import Foundation
import Logging
import RepriseCore
import RepriseSQL
import RepriseSQLite
import ReprisePostgres
import RepriseTestSupport
import Testing

/// A store backend the conformance suites run on. Every suite's test takes the list below as
/// arguments, so a test added to a suite runs on every backend without being listed per backend.
struct Backend: Sendable, CustomTestStringConvertible {
    let name: String
    let make: @Sendable () async throws -> SQLTrackingStore
    var testDescription: String { name }

    /// SQLite always; PostgreSQL at `REPRISE_TEST_POSTGRES_URL` (the test command starts a throwaway
    /// cluster and sets it, with `REPRISE_REQUIRE_POSTGRES=1` so it cannot be left out unnoticed).
    static let all: [Backend] = {
        var out = [Backend(name: "SQLite", make: makeSQLite)]
        if postgresURL != nil { out.append(Backend(name: "PostgreSQL", make: makePostgres)) }
        return out
    }()

    static let postgresURL = ProcessInfo.processInfo.environment["REPRISE_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }

    /// The same store with its schema not yet made (`migrate()` not run).
    func makeEmpty() async throws -> SQLTrackingStore {
        name == "PostgreSQL" ? try await Self.makePostgres(migrated: false) : try await Self.makeSQLite(migrated: false)
    }

    /// A fresh SQLite file per store; the folder is left for the OS temp cleaner.
    @Sendable static func makeSQLite() async throws -> SQLTrackingStore { try await makeSQLite(migrated: true) }

    static func makeSQLite(migrated: Bool) async throws -> SQLTrackingStore {
        let dir = try TempDirectory(prefix: "reprise-sqlite")
        let store = SQLTrackingStore(
            driver: try SQLiteDriver(path: dir.path + "/reprise.db"),
            artifacts: ArtifactRootPolicy(defaultRoot: "mlflow-artifacts:/", workingDirectory: dir.path))
        if migrated { try await store.migrate() }
        return store
    }

    /// A database of its own per store, on the test server.
    @Sendable static func makePostgres() async throws -> SQLTrackingStore { try await makePostgres(migrated: true) }

    static func makePostgres(migrated: Bool) async throws -> SQLTrackingStore {
        guard let postgresURL else { throw PostgresLocationError("REPRISE_TEST_POSTGRES_URL is not set") }
        var location = try PostgresLocation(uri: postgresURL)
        let name = "reprise_t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(20)
        let logger = Logger(label: "pg-test")
        // A database whose default collation is a natural-language one (as most production
        // databases have): text must still sort byte by byte, as on SQLite and in MLflow.
        try await PostgresDriver.createDatabase(
            String(name), options: "TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.utf8'", at: location,
            logger: logger)
        location.database = String(name)
        let dir = try TempDirectory(prefix: "reprise-pg")
        let store = SQLTrackingStore(
            driver: try PostgresDriver(location: location, maxConnections: 8, logger: logger),
            artifacts: ArtifactRootPolicy(defaultRoot: "mlflow-artifacts:/", workingDirectory: dir.path))
        if migrated { try await store.migrate() }
        return store
    }
}

@Suite("Backends under test")
struct BackendListTests {
    /// The test command requires PostgreSQL: its conformance runs cannot silently drop out.
    @Test func postgresIsPresentWhenRequired() {
        if ProcessInfo.processInfo.environment["REPRISE_REQUIRE_POSTGRES"] == "1" {
            #expect(Backend.all.contains { $0.name == "PostgreSQL" }, "REPRISE_REQUIRE_POSTGRES=1 but REPRISE_TEST_POSTGRES_URL is not set")
        }
        print("store backends under test: \(Backend.all.map(\.name).joined(separator: ", "))")
    }
}

@Suite("Store conformance")
struct StoreConformanceTests {
    func suite(_ b: Backend) -> StoreConformance { StoreConformance(make: b.make) }
    @Test(arguments: Backend.all) func experiments(_ b: Backend) async throws { try await suite(b).experiments() }
    @Test(arguments: Backend.all) func experimentSearch(_ b: Backend) async throws { try await suite(b).experimentSearch() }
    @Test(arguments: Backend.all) func runsLifecycle(_ b: Backend) async throws { try await suite(b).runsLifecycle() }
    @Test(arguments: Backend.all) func paramsAndMetrics(_ b: Backend) async throws { try await suite(b).paramsAndMetrics() }
    @Test(arguments: Backend.all) func inputRules(_ b: Backend) async throws { try await suite(b).inputRules() }
    @Test(arguments: Backend.all) func metricSeries(_ b: Backend) async throws { try await suite(b).metricSeries() }
    @Test(arguments: Backend.all) func runSearch(_ b: Backend) async throws { try await suite(b).runSearch() }
    @Test(arguments: Backend.all) func inputsAndOutputs(_ b: Backend) async throws { try await suite(b).inputsAndOutputs() }
    @Test(arguments: Backend.all) func loggedModels(_ b: Backend) async throws { try await suite(b).loggedModels() }
    @Test(arguments: Backend.all) func concurrentWrites(_ b: Backend) async throws { try await suite(b).concurrentWrites() }
    @Test(arguments: Backend.all) func concurrentLoggedModelHistory(_ b: Backend) async throws { try await suite(b).concurrentLoggedModelHistory() }
    @Test(arguments: Backend.all) func artifactDigests(_ b: Backend) async throws { try await suite(b).artifactDigests() }
}

@Suite("Registry conformance")
struct RegistryConformanceTests {
    func suite(_ b: Backend) -> RegistryConformance { RegistryConformance(make: b.make) }
    @Test(arguments: Backend.all) func registeredModels(_ b: Backend) async throws { try await suite(b).registeredModels() }
    @Test(arguments: Backend.all) func versionsStagesAndAliases(_ b: Backend) async throws { try await suite(b).versionsStagesAndAliases() }
    @Test(arguments: Backend.all) func registrySearch(_ b: Backend) async throws { try await suite(b).registrySearch() }
}

@Suite("Governance conformance")
struct GovernanceConformanceTests {
    func suite(_ b: Backend) -> GovernanceConformance { GovernanceConformance(make: b.make) }
    @Test(arguments: Backend.all) func protectedAliasNeedsApprovals(_ b: Backend) async throws { try await suite(b).protectedAliasNeedsApprovals() }
    @Test(arguments: Backend.all) func serverWidePolicyAndChecks(_ b: Backend) async throws { try await suite(b).serverWidePolicyAndChecks() }
    @Test(arguments: Backend.all) func sealedRuns(_ b: Backend) async throws { try await suite(b).sealedRuns() }
    @Test(arguments: Backend.all) func auditChain(_ b: Backend) async throws {
        try await suite(b).auditChain { store, sql in
            let driver = try #require((store as? SQLTrackingStore)?.driver)
            _ = try await driver.write { db in try await db.execute(sql, []) }
        }
    }
}

@Suite("Identity conformance")
struct IdentityConformanceTests {
    func suite(_ b: Backend) -> IdentityConformance { IdentityConformance(make: b.make) }
    @Test(arguments: Backend.all) func usersRolesAndGrants(_ b: Backend) async throws { try await suite(b).usersRolesAndGrants() }
    @Test(arguments: Backend.all) func tokens(_ b: Backend) async throws { try await suite(b).tokens() }
    @Test(arguments: Backend.all) func governanceOnIdentities(_ b: Backend) async throws { try await suite(b).governanceOnIdentities() }
    @Test(arguments: Backend.all) func approversFollowIdentities(_ b: Backend) async throws { try await suite(b).approversFollowIdentities() }
}

@Suite("Webhook conformance")
struct WebhookConformanceTests {
    func suite(_ b: Backend) -> WebhookConformance { WebhookConformance(make: b.make) }
    @Test(arguments: Backend.all) func definitions(_ b: Backend) async throws { try await suite(b).definitions() }
    @Test(arguments: Backend.all) func outbox(_ b: Backend) async throws { try await suite(b).outbox() }
    @Test(arguments: Backend.all) func leasingAndOutcomes(_ b: Backend) async throws { try await suite(b).leasingAndOutcomes() }

    @Test(arguments: Backend.all) func secretsAreSealedAtRest(_ b: Backend) async throws {
        let store = try await b.make()
        _ = try await store.createWebhook(
            name: "h", description: "", url: "https://a.example/", events: [WebhookEvent(entity: "MODEL_VERSION", action: "CREATED")],
            secret: "plain-secret-value", status: .active)
        let stored = try await store.driver.read { db in try await db.query("SELECT secret FROM webhooks", []).map { $0.string(0) } }
        #expect(stored.count == 1 && !stored[0].contains("plain-secret-value") && stored[0].hasPrefix("aesgcm1:"))
        // Another key cannot open it, and says what to do.
        let other = SecretSealer(keyMaterial: Array("another key".utf8))
        #expect(throws: RepriseError.self) { _ = try other.open(stored[0]) }
    }
}

@Suite("Reproducibility conformance")
struct ReproConformanceTests {
    func suite(_ b: Backend) -> ReproConformance { ReproConformance(make: b.make) }
    @Test(arguments: Backend.all) func policies(_ b: Backend) async throws { try await suite(b).policies() }
    @Test(arguments: Backend.all) func reproductionsChecksAndLineage(_ b: Backend) async throws { try await suite(b).reproductionsChecksAndLineage() }
}

@Suite("PostgreSQL sessions")
struct PostgresSessionTests {
    /// Every pooled connection runs without JIT and parallel workers (short queries; see
    /// `PostgresDriver.sessionSettings`), whatever the cluster's defaults are.
    @Test func connectionsTurnOffJITAndParallelWorkers() async throws {
        guard Backend.postgresURL != nil else { return }  // PostgreSQL runs only where the test command started it
        let store = try await Backend.makePostgres()
        let settings = try await store.driver.read { db in
            try await (db.queryOne("SHOW jit", [])?.string(0), db.queryOne("SHOW max_parallel_workers_per_gather", [])?.string(0))
        }
        #expect(settings.0 == "off" && settings.1 == "0")
    }
}

@Suite("Trace conformance")
struct TraceConformanceTests {
    func suite(_ b: Backend) -> TraceConformance { TraceConformance(make: b.make) }
    @Test(arguments: Backend.all) func spansAndInfoInEitherOrder(_ b: Backend) async throws { try await suite(b).spansAndInfoInEitherOrder() }
    @Test(arguments: Backend.all) func searchTagsAssessmentsAndDeletion(_ b: Backend) async throws {
        try await suite(b).searchTagsAssessmentsAndDeletion()
    }
    @Test(arguments: Backend.all) func metricsAndCorrelation(_ b: Backend) async throws { try await suite(b).metricsAndCorrelation() }
    @Test(arguments: Backend.all) func duplicateKeysInOneWrite(_ b: Backend) async throws { try await suite(b).duplicateKeysInOneWrite() }
}

@Suite("Deployment conformance")
struct DeploymentConformanceTests {
    @Test(arguments: Backend.all) func recordResolveAndTrace(_ b: Backend) async throws {
        try await DeploymentConformance(make: b.make).recordResolveAndTrace()
    }
}
