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
