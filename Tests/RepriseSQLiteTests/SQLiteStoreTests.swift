import Foundation
import RepriseCore
@testable import RepriseSQL
import RepriseSQLite
import RepriseTestSupport
import Testing

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
        let versions = try await driver.read { db in try await db.query("SELECT version FROM reprise_schema_migrations", []).map { $0.int(0) } }
        #expect(versions == TrackingSchema.migrations(driver.dialect).map { Int64($0.version) } && versions.count >= 9)
        try await driver.shutdown()
    }

    /// A database made before ids came from counters keeps its numbering: the experiment counter
    /// starts after the highest id stored, the identity counters where reprise_meta had them (past
    /// ids of deleted users), and those old keys are gone.
    @Test func idCountersContinueAnOlderDatabase() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let driver = try SQLiteDriver(path: dir.path + "/old.db")
        let store = SQLTrackingStore(driver: driver, artifacts: ArtifactRootPolicy(defaultRoot: "mlflow-artifacts:/", workingDirectory: dir.path))
        try await store.applyMigrations(TrackingSchema.migrations(driver.dialect).filter { $0.version <= 8 })
        _ = try await driver.write { db in
            try await db.execute("INSERT INTO experiments VALUES (41, 'old', 'x', 'active', 0, 0)", [])
            try await db.execute("INSERT INTO auth_users (id, username, password_hash, is_admin, is_service, can_act_as, generation, created_time) VALUES (3, 'u', '', 0, 0, 0, 0, 0)", [])
            // Users up to 9 existed once; 4 to 9 were deleted.
            try await db.execute("INSERT INTO reprise_meta (key, value) VALUES ('next_id.auth_users', '10')", [])
        }
        try await store.migrate()
        #expect(try await store.createExperiment(name: "new", artifactLocation: nil, tags: []) == "42")
        let ids = try await store.write { db, _ in
            (try await SQLTrackingStore.nextID(db, .authUsers), try await SQLTrackingStore.nextID(db, .authRoles))
        }
        #expect(ids.0 == 10 && ids.1 == 1)
        let leftovers = try await driver.read { db in try await db.query("SELECT key FROM reprise_meta WHERE key LIKE 'next%'", []).count }
        #expect(leftovers == 0)
        try await driver.shutdown()
    }

    /// A text list is one JSON bind on SQLite, so its statement reads the same for any count (and
    /// is prepared once per connection); every value comes back exactly, whatever it holds.
    @Test func textListIsOneStatementAndKeepsEveryValue() async throws {
        let dialect = SQLDialect.sqlite
        #expect(dialect.textList(["a"]).sql == dialect.textList(["a", "b", "c"]).sql)
        #expect(dialect.textList(["a", "b"]).binds.count == 1)
        #expect(SQLDialect.postgres.textList(["a", "b", "c"]).sql == "(?, ?, ?)")

        let dir = try TempDirectory()
        defer { dir.remove() }
        let driver = try SQLiteDriver(path: dir.path + "/list.db")
        let stored = ["plain", "quote\"inside", "back\\slash", "line\nbreak", "tab\tand\u{1}control", "nul\u{0}inside", "ünïcødé ✓", "", "[\"json\"]", "a,b"]
        _ = try await driver.write { db in
            try await db.execute("CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER NOT NULL)", [])
            for (n, v) in stored.enumerated() { try await db.execute("INSERT INTO t VALUES (?, ?)", [.text(v), .int(Int64(n))]) }
        }
        for wanted in [stored, Array(stored.prefix(1)), ["not stored", "quote\"inside"], []] {
            let (list, binds) = dialect.textList(wanted)
            let found = try await driver.read { db in
                try await db.query("SELECT id FROM t WHERE id IN \(list) ORDER BY n", binds).map { $0.string(0) }
            }
            #expect(found == stored.filter { wanted.contains($0) })
        }
        try await driver.shutdown()
    }

    @Test func failedBodyRollsBackOnlyItself() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let driver = try SQLiteDriver(path: dir.path + "/t.db")
        _ = try await driver.write { db in try await db.execute("CREATE TABLE t (v INTEGER)", []) }
        let ok = Task { try await driver.write { db in try await db.execute("INSERT INTO t VALUES (1)", []) } }
        let bad = Task {
            try await driver.write { db in
                try await db.execute("INSERT INTO t VALUES (2)", [])
                throw RepriseError.invalid("no")
            }
        }
        _ = try await ok.value
        await #expect(throws: RepriseError.self) { _ = try await bad.value }
        let values = try await driver.read { db in try await db.query("SELECT v FROM t", []).map { $0.int(0) } }
        #expect(values == [1])
        try await driver.shutdown()
    }
}

/// The driver seam's error contract on SQLite, and the store's one answer to each error.
@Suite("SQL seam errors on SQLite")
struct SQLiteSeamErrorTests {
    @Test func uniqueViolationsAreTypedAndNeverA500() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let driver = try SQLiteDriver(path: dir.path + "/t.db")
        _ = try await driver.write { db in try await db.execute("CREATE TABLE t (k TEXT PRIMARY KEY)", []) }
        _ = try await driver.write { db in try await db.execute("INSERT INTO t VALUES ('a')", []) }
        do {
            _ = try await driver.write { db in try await db.execute("INSERT INTO t VALUES ('a')", []) }
            Issue.record("a duplicate key was accepted")
        } catch let e as SQLDriverError {
            guard case .uniqueViolation = e else { throw e }
        }
        // Through the store: retried, then MLflow's RESOURCE_ALREADY_EXISTS (400), not a 500.
        let store = SQLTrackingStore(driver: driver, artifacts: ArtifactRootPolicy(defaultRoot: "mlflow-artifacts:/", workingDirectory: dir.path))
        let attempts = Counter()
        do {
            try await store.write { db, _ in
                attempts.add()
                try await db.execute("INSERT INTO t VALUES ('a')", [])
            }
            Issue.record("the store accepted a duplicate key")
        } catch let e as RepriseError {
            #expect(e.code == .resourceAlreadyExists)
            #expect(e.code.httpStatus == 400)
        }
        #expect(attempts.value == SQLTrackingStore.writeAttempts)
        try await driver.shutdown()
    }

    /// A transient refusal runs the body again from the start; what the failed attempt wrote is
    /// gone (its savepoint rolled back), so the retry does not write twice.
    @Test func transientFailuresRetryTheWholeBody() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let driver = try SQLiteDriver(path: dir.path + "/t.db")
        _ = try await driver.write { db in try await db.execute("CREATE TABLE t (v INTEGER)", []) }
        let store = SQLTrackingStore(driver: driver, artifacts: ArtifactRootPolicy(defaultRoot: "mlflow-artifacts:/", workingDirectory: dir.path))
        let attempts = Counter()
        let result = try await store.write { db, _ -> Int in
            attempts.add()
            try await db.execute("INSERT INTO t VALUES (1)", [])
            if attempts.value < 3 { throw SQLDriverError.serializationFailure("test") }
            return attempts.value
        }
        #expect(result == 3)
        let rows = try await driver.read { db in try await db.query("SELECT v FROM t", []).count }
        #expect(rows == 1)
        try await driver.shutdown()
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.withLock { n += 1 } }
    var value: Int { lock.withLock { n } }
}
