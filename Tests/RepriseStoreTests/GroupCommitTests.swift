import Foundation
import RepriseCore
@testable import RepriseSQL
@testable import ReprisePostgres
import RepriseTestSupport
import Testing

/// How each driver commits concurrent write bodies together (group commit), on every backend: a
/// body that fails undoes itself alone, whatever its neighbours in the batch did, and what one body
/// of a batch remembers for the next (the audit chain's head) never outlives a rolled-back body.
@Suite("Group commit")
struct GroupCommitTests {
    struct Refused: Error {}

    /// 60 bodies at once, every fifth failing after it has written a row and an audit event (half
    /// by throwing, half by a statement the database refuses): exactly the others' rows and events
    /// are stored, and the chain verifies link by link.
    @Test(arguments: Backend.all) func aFailingBodyUndoesOnlyItself(_ b: Backend) async throws {
        let store = try await b.make()
        _ = try await store.driver.write { db in try await db.execute("CREATE TABLE gc_probe (k TEXT PRIMARY KEY)", []) }
        let before = try await store.auditEvents(entityType: nil, entityID: nil, afterSeq: 0, limit: 100_000).count
        let outcomes = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            for i in 0..<60 {
                group.addTask {
                    do {
                        try await store.write { db, audit in
                            try await db.execute("INSERT INTO gc_probe (k) VALUES (?)", [.text("k\(i)")])
                            try await audit.record(db, "probe.write", "probe", "k\(i)")
                            if i % 5 == 0 {
                                if i % 10 == 0 { throw Refused() }
                                // A statement the database itself refuses (a duplicate key), after the writes.
                                try await db.execute("INSERT INTO gc_probe (k) VALUES (?)", [.text("k\(i)")])
                            }
                        }
                        return (i, true)
                    } catch is Refused {
                        return (i, false)
                    } catch let e as RepriseError where e.code == .resourceAlreadyExists {
                        return (i, false)
                    }
                }
            }
            var out: [Int: Bool] = [:]
            for try await (i, ok) in group { out[i] = ok }
            return out
        }
        let expected = Set((0..<60).filter { $0 % 5 != 0 }.map { "k\($0)" })
        #expect(Set(outcomes.filter(\.value).map { "k\($0.key)" }) == expected)
        let stored = try await store.driver.read { db in try await db.query("SELECT k FROM gc_probe", []).map { $0.string(0) } }
        #expect(Set(stored) == expected && stored.count == expected.count)
        let events = try await store.auditEvents(entityType: "probe", entityID: nil, afterSeq: 0, limit: 1000)
        #expect(Set(events.map(\.entityID)) == expected && events.count == expected.count)
        let all = try await store.auditEvents(entityType: nil, entityID: nil, afterSeq: 0, limit: 100_000)
        #expect(all.count == before + expected.count)
        #expect(all.map(\.seq) == Array(1...Int64(all.count)))
        let verdict = try await store.verifyAudit()
        #expect(verdict.ok && verdict.checked == Int64(all.count))
    }

    /// A write whose audit event holds what the database cannot store (NUL, in an actor's name) is
    /// refused alone, with MLflow's 400; the writes committed beside it are unharmed. (Audit events
    /// are inserted once per batch, so such a value must be caught while its body runs.)
    @Test(arguments: Backend.all) func anUnstorableAuditValueFailsOnlyItsWrite(_ b: Backend) async throws {
        let store = try await b.make()
        let outcomes = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            for i in 0..<24 {
                group.addTask {
                    let context = WriteContext(actor: i == 7 ? "bad\u{0}actor" : "writer\(i)", authenticated: false, requestID: "r\(i)")
                    do {
                        _ = try await WriteContext.$current.withValue(context) {
                            try await store.createExperiment(name: "nul-\(i)", artifactLocation: nil, tags: [])
                        }
                        return (i, true)
                    } catch let e as RepriseError {
                        #expect(e.code == .invalidParameterValue && i == 7)
                        return (i, false)
                    }
                }
            }
            var out: [Int: Bool] = [:]
            for try await (i, ok) in group { out[i] = ok }
            return out
        }
        #expect(outcomes.filter { !$0.value }.map(\.key) == [7])
        for i in 0..<24 where i != 7 { _ = try await store.getExperiment(name: "nul-\(i)") }
        #expect(try await store.verifyAudit().ok)
    }

    /// Ids come from counters: concurrent experiment creations get distinct ids, and an id is not
    /// handed out again after its experiment is gone from the table.
    @Test(arguments: Backend.all) func idsAreDrawnOnceEach(_ b: Backend) async throws {
        let store = try await b.make()
        let ids = try await withThrowingTaskGroup(of: String.self) { group in
            for i in 0..<24 { group.addTask { try await store.createExperiment(name: "e\(i)", artifactLocation: nil, tags: []) } }
            var out: [String] = []
            for try await id in group { out.append(id) }
            return out
        }
        #expect(Set(ids).count == 24 && !ids.contains("0"))
        let highest = ids.compactMap { Int64($0) }.max()!
        _ = try await store.driver.write { db in
            try await db.execute("DELETE FROM experiments WHERE experiment_id = ?", [.int(highest)])
        }
        let next = try await store.createExperiment(name: "after", artifactLocation: nil, tags: [])
        #expect(Int64(next)! == highest + 1)
    }
}

@Suite("Create-run answers")
struct CreateRunAnswerTests {
    /// create-run answers the run without reading it back; the answer must be what `getRun` reads:
    /// repeated tag keys (the last value wins), keys that sort differently by byte and by Unicode
    /// rules, and the tags a soft policy adds, with and without a policy.
    @Test(arguments: Backend.all) func theAnswerIsWhatIsStored(_ b: Backend) async throws {
        let store = try await b.make()
        for withPolicy in [false, true] {
            let exp = try await store.createExperiment(name: "answer-\(withPolicy)", artifactLocation: nil, tags: [])
            if withPolicy {
                _ = try await store.setExperimentPolicy(ExperimentPolicy(experimentID: exp, mode: .soft, required: [.data, .seed]))
            }
            let tags = [KeyValue("b", "1"), KeyValue("a", "x"), KeyValue("b", "2"), KeyValue("Z", "z"), KeyValue("é", "e"), KeyValue("z", "y")]
            let created = try await store.createRun(CreateRunInput(experimentID: exp, userID: "u", runName: "r", startTime: 5, tags: tags))
            let read = try await store.getRun(id: created.info.runID)
            #expect(created == read)
            #expect(created.tags.first { $0.key == "b" }?.value == "2")
            #expect(created.tags.contains { $0.key == PassportTag.compliant } == withPolicy)
        }
    }
}

@Suite("PostgreSQL statements")
struct PostgresStatementTests {
    /// `?` becomes `$n` outside quotes only, and text around it survives byte for byte (multi-byte
    /// characters included).
    @Test func placeholdersAreNumberedOutsideQuotes() {
        #expect(PostgresSQLConnection.numbered("SELECT ?, '?', \"a?\", ? FROM t WHERE x = 'é?ü' AND y = ?")
            == "SELECT $1, '?', \"a?\", $2 FROM t WHERE x = 'é?ü' AND y = $3")
        #expect(PostgresSQLConnection.numbered("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)").hasSuffix("$10, $11)"))
        #expect(PostgresSQLConnection.numbered("SELECT '日本' || ?") == "SELECT '日本' || $1")
    }
}

@Suite("Bulk metric loads")
struct BulkMetricTests {
    /// A batch large enough to be bulk-loaded where the driver can (PostgreSQL's COPY) stores the
    /// same points as small batches would: duplicates within the batch and of points stored before
    /// are kept once, NaN and ±inf are kept as they are elsewhere, the latest value per key is the greatest (step,
    /// timestamp, value), and a refused batch stores nothing.
    @Test(arguments: Backend.all) func largeBatchesStoreEachPointOnce(_ b: Backend) async throws {
        let store = try await b.make()
        let exp = try await store.createExperiment(name: "bulk", artifactLocation: nil, tags: [])
        let run = try await store.createRun(CreateRunInput(experimentID: exp, userID: "u", runName: "r", startTime: 1, tags: []))
        let id = run.info.runID
        // 100 points stored first, as small batches.
        for step in stride(from: 0, to: 100, by: 50) {
            try await store.logBatch(
                runID: id, metrics: (step..<step + 50).map { Metric(key: "a", value: Double($0), timestamp: 10, step: Int64($0)) },
                params: [], tags: [], conflictStyle: .batch)
        }
        // 1,000 points: a.0 … a.499 (the first 100 again), b's 500 with one of them twice, NaN and ±inf.
        var points = (0..<500).map { Metric(key: "a", value: Double($0), timestamp: 10, step: Int64($0)) }
        points += (0..<499).map { Metric(key: "b", value: Double($0) / 2, timestamp: 20, step: Int64($0)) }
        points.append(Metric(key: "b", value: 0, timestamp: 20, step: 0))
        points[900] = Metric(key: "b", value: .nan, timestamp: 21, step: 1_000)
        points[901] = Metric(key: "b", value: .infinity, timestamp: 21, step: 1_001)
        points[902] = Metric(key: "b", value: -.infinity, timestamp: 21, step: 1_002)
        try await store.logBatch(runID: id, metrics: points, params: [], tags: [], conflictStyle: .batch)
        let a = try await store.metricHistory(runID: id, key: "a", offset: 0, limit: nil).items
        #expect(a.count == 500 && Set(a.map(\.step)).count == 500)
        let bs = try await store.metricHistory(runID: id, key: "b", offset: 0, limit: nil).items
        #expect(bs.count == 499)
        #expect(bs.contains { $0.step == 1_000 && $0.value.isNaN })
        // ±inf are stored as the largest finite doubles (spec §6.4), on every backend.
        #expect(bs.contains { $0.step == 1_001 && $0.value == .greatestFiniteMagnitude })
        #expect(bs.contains { $0.step == 1_002 && $0.value == -.greatestFiniteMagnitude })
        let latest = try await store.getRun(id: id).metrics
        #expect(latest.first { $0.key == "a" }?.step == 499)
        #expect(latest.first { $0.key == "b" }?.step == 1_002 && latest.first { $0.key == "b" }?.value == -.greatestFiniteMagnitude)
        // A refused large batch (a param that conflicts, found before any point is written) stores no
        // point; a body failing after a bulk load is `copyTextKeepsEveryCharacter`'s case.
        try await store.logBatch(runID: id, metrics: [], params: [KeyValue("p", "1")], tags: [], conflictStyle: .batch)
        let refused = (0..<600).map { Metric(key: "c", value: Double($0), timestamp: 1, step: Int64($0)) }
        await #expect(throws: RepriseError.self) {
            try await store.logBatch(runID: id, metrics: refused, params: [KeyValue("p", "2")], tags: [], conflictStyle: .batch)
        }
        #expect(try await store.metricHistory(runID: id, key: "c", offset: 0, limit: nil).items.isEmpty)
    }

    /// COPY's text format: tab, newline, carriage return and backslash in a value arrive intact;
    /// NUL is refused as a bound statement refuses it.
    @Test func copyTextKeepsEveryCharacter() async throws {
        guard Backend.postgresURL != nil else { return }  // PostgreSQL runs only where the test command started it
        let store = try await Backend.makePostgres()
        let awkward = "tab\there\nnew\rline\\back\\\\slash \\N é"
        let row: [SQLValue] = [.text("r1"), .text("k"), .int(1), .int(2), .double(0.1), .int(0), .null, .text(awkward), .text("d")]
        let stored = try await store.driver.write { db -> [SQLRow] in
            let bulk = try #require(db as? any SQLBulkInsert)
            try await bulk.insertIgnoringDuplicates(into: "metrics", columns: SQLTrackingStore.metricColumns, rows: [row, row])
            return try await db.query("SELECT dataset_name, model_id, value FROM metrics WHERE run_uuid = 'r1'", [])
        }
        #expect(stored.count == 1)
        #expect(stored.first?.string(0) == awkward && stored.first?.optionalString(1) == nil && stored.first?.double(2) == 0.1)
        // A body that fails after a bulk load leaves neither the rows nor anything in staging.
        struct Refused: Error {}
        await #expect(throws: Refused.self) {
            _ = try await store.driver.write { db in
                try await (db as! any SQLBulkInsert).insertIgnoringDuplicates(
                    into: "metrics", columns: SQLTrackingStore.metricColumns,
                    rows: (0..<600).map { [.text("r3"), .text("k"), .int($0), .int($0), .double(1), .int(0), .null, .null, .null] })
                throw Refused()
            }
        }
        let left = try await store.driver.read { db in
            (try await db.queryOne("SELECT COUNT(*) FROM metrics WHERE run_uuid = 'r3'", [])!.int(0),
             try await db.queryOne("SELECT COUNT(*) FROM metrics_staging", [])!.int(0))
        }
        #expect(left.0 == 0 && left.1 == 0)
        await #expect(throws: SQLDriverError.self) {
            _ = try await store.driver.write { db in
                try await (db as! any SQLBulkInsert).insertIgnoringDuplicates(
                    into: "metrics", columns: SQLTrackingStore.metricColumns,
                    rows: [[.text("r2"), .text("k"), .int(1), .int(2), .double(1), .int(0), .null, .text("nul\u{0}"), .null]])
            }
        }
    }
}

@Suite("Databases MLflow made")
struct MLflowDatabaseTests {
    /// A database with MLflow's alembic_version table is refused before anything changes: no table
    /// of Reprise's appears, on either backend.
    @Test(arguments: Backend.all) func migrationsRefuseAnMLflowSchema(_ b: Backend) async throws {
        let store = try await b.makeEmpty()
        _ = try await store.driver.write { db in
            try await db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)", [])
            try await db.execute("CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY, name TEXT)", [])
        }
        await #expect(throws: MLflowDatabaseError.self) { try await store.migrate() }
        let dialect = store.driver.dialect
        let created = try await store.driver.read { db in
            let ledger = try await db.queryOne(dialect.tableExistsSQL, [.text("reprise_schema_migrations")]) != nil
            let runs = try await db.queryOne(dialect.tableExistsSQL, [.text("runs")]) != nil
            return ledger || runs
        }
        #expect(!created)
        // A database Reprise made is never taken for one (its own tables and no alembic_version).
        let ours = try await b.make()
        try await ours.migrate()
    }
}
