import Foundation
import GRDB
import GRDBSQLite
import RepriseSQL

/// `SQLDriver` over SQLite with GRDB: WAL, pooled readers, one writer with group commit.
///
/// Concurrent `write` calls are coalesced: every body queued while a transaction commits runs in the
/// next transaction, each inside its own savepoint, and all of them are acknowledged after that one
/// commit (and its fsync) succeeds. A body that throws rolls back only its own savepoint.
public final class SQLiteDriver: SQLDriver, @unchecked Sendable {
    public let dialect = SQLDialect.sqlite
    let pool: DatabasePool
    public let path: String

    private let queue = GroupCommitQueue<Job>()
    private let writerQueue = DispatchQueue(label: "reprise.sqlite.writer", qos: .userInitiated)

    struct Job {
        let run: (Database, WriteMemo) -> Void
        let complete: ((any Error)?) -> Void
    }

    /// Opens (creating if needed) the database file at `path`.
    public init(path: String) throws {
        self.path = path
        var config = Configuration()
        config.busyMode = .timeout(10)
        config.maximumReaderCount = 4
        config.prepareDatabase { db in
            // LIKE is case-sensitive in MLflow's search grammar.
            try db.execute(sql: "PRAGMA case_sensitive_like = ON")
            // A commit returns only once the WAL is synced: acknowledged writes survive power loss.
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try db.execute(sql: "PRAGMA cache_size = -8000")
            // SQLite's default checkpoint interval (1000 pages) keeps each checkpoint, which runs on the
            // committing writer, short; larger intervals raised single-write p99 from ~4 to ~20 ms.
            // After a checkpoint the WAL file is cut back to at most 64 MiB.
            try db.execute(sql: "PRAGMA journal_size_limit = 67108864")
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
        }
        pool = try DatabasePool(path: path, configuration: config)
    }

    /// Bodies are async (the seam serves PostgreSQL too), but GRDB hands out a database only inside
    /// its own synchronous closures, on its own thread. So the body runs there, on that thread:
    /// `InlineExecutor` drives the body's task on the calling thread until it finishes. An
    /// SQLite statement never suspends, so a body normally runs start to end in one go.
    public func read<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection) async throws -> T) async throws -> T {
        do {
            return try await pool.read { db in
                let connection = GRDBConnection(db: db, memo: nil)
                return try InlineExecutor.run { try await body(connection) }
            }
        } catch let e as DatabaseError {
            throw GRDBConnection.mapped(e)
        }
    }

    public func write<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection) async throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<T, any Error>) in
            let box = ResultBox<T>()
            let job = Job(
                run: { db, memo in
                    memo.beginBody()
                    do {
                        try db.inSavepoint {
                            let connection = GRDBConnection(db: db, memo: memo)
                            box.result = .success(try InlineExecutor.run { try await body(connection) })
                            return .commit
                        }
                    } catch let e as DatabaseError {
                        memo.bodyFailed()
                        box.result = .failure(GRDBConnection.mapped(e))
                    } catch {
                        memo.bodyFailed()
                        box.result = .failure(error)
                    }
                },
                complete: { commitError in
                    if let commitError {
                        cont.resume(throwing: commitError)
                    } else {
                        cont.resume(with: box.result ?? .failure(SQLiteDriverError.noResult))
                    }
                })
            enqueue(job)
        }
    }

    private func enqueue(_ job: Job) {
        switch queue.add(job) {
        case .closed: job.complete(SQLDriverError.closed)
        case .startDrain: writerQueue.async { self.drain() }
        case .queued: break
        }
    }

    /// Commits everything queued, batch after batch, until the queue is empty.
    private func drain() {
        while true {
            let jobs = queue.nextBatch()
            if jobs.isEmpty { return }
            var commitError: (any Error)?
            do {
                try pool.writeWithoutTransaction { db in
                    try db.inTransaction(.immediate) {
                        let memo = WriteMemo()
                        for job in jobs { job.run(db, memo) }
                        let connection = GRDBConnection(db: db, memo: memo)
                        try InlineExecutor.run { try await memo.flush(connection) }
                        return .commit
                    }
                }
            } catch let e as DatabaseError {
                commitError = GRDBConnection.mapped(e)
            } catch {
                commitError = error
            }
            for job in jobs { job.complete(commitError) }
        }
    }

    /// Waits for queued writes to commit, then closes the database.
    public func shutdown() async throws {
        // Let in-flight batches finish: a barrier write runs after everything queued before it.
        _ = try? await write { _ in true }
        queue.close()
        try pool.close()
    }
}

enum SQLiteDriverError: Error, CustomStringConvertible {
    case noResult
    case readOnly(String)
    case unreadable(String)
    var description: String {
        switch self {
        case .noResult: return "the write produced no result"
        case .readOnly(let path): return "\(path) is open read-only"
        case .unreadable(let path): return "no readable database file at \(path)"
        }
    }
}

/// Runs an async body to completion on the calling thread.
///
/// The body's task prefers this executor, so every part of it that is not isolated to an actor
/// (the body and the connection's methods) runs here, on the thread that called `run`; a part
/// that hops to an actor comes back here when it resumes. `run` blocks this thread until the body
/// finishes, so it must be called only on a thread that may block (GRDB's writer and reader
/// queues), never on a Swift concurrency or NIO thread.
final class InlineExecutor: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var finished = false

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func finish() {
        condition.lock()
        finished = true
        condition.signal()
        condition.unlock()
    }

    /// Runs jobs on this thread until the body has finished and nothing is left to run.
    private func drive() {
        while true {
            condition.lock()
            while jobs.isEmpty && !finished { condition.wait() }
            if jobs.isEmpty {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }

    static func run<T>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        let executor = InlineExecutor()
        let box = ResultBox<T>()
        Task(executorPreference: executor) {
            do {
                box.result = .success(try await body())
            } catch {
                box.result = .failure(error)
            }
            executor.finish()
        }
        executor.drive()
        return try (box.result ?? .failure(SQLiteDriverError.noResult)).get()
    }
}


/// A GRDB database handle seen through the driver seam. It is used only on the thread GRDB
/// handed it out on (see `InlineExecutor`), which is what makes the unchecked `Sendable` sound.
struct GRDBConnection: SQLConnection, @unchecked Sendable {
    let db: Database
    let memo: WriteMemo?

    /// SQLite's refusals in the seam's terms: a unique or primary-key constraint, and a database
    /// still locked after the busy timeout. Anything else stays GRDB's error.
    static func mapped(_ e: DatabaseError) -> any Error {
        switch e.extendedResultCode {
        case .SQLITE_CONSTRAINT_UNIQUE, .SQLITE_CONSTRAINT_PRIMARYKEY: return SQLDriverError.uniqueViolation(e.message ?? "\(e.extendedResultCode)")
        default: break
        }
        switch e.resultCode {
        case .SQLITE_BUSY, .SQLITE_LOCKED: return SQLDriverError.busy(e.message ?? "\(e.resultCode)")
        default: return e
        }
    }

    func statement(_ sql: String, _ binds: [SQLValue]) throws -> Statement {
        // Cache the fixed statements of hot paths; statements built with variable IN lists are not reused.
        if !Self.hasInList(sql) {
            return try db.cachedStatement(sql: sql)
        }
        return try db.makeStatement(sql: sql)
    }

    /// Whether the SQL has an `IN (?` list, by a byte scan (Foundation's `contains` is slow on Linux).
    static func hasInList(_ sql: String) -> Bool {
        let needle: [UInt8] = Array("IN (?".utf8)
        var sql = sql
        return sql.withUTF8 { bytes in
            guard bytes.count >= needle.count else { return false }
            var i = 0
            while i <= bytes.count - needle.count {
                if bytes[i] == needle[0] {
                    var k = 1
                    while k < needle.count && bytes[i + k] == needle[k] { k += 1 }
                    if k == needle.count { return true }
                }
                i += 1
            }
            return false
        }
    }

    /// SQLite's "copy the bytes now" destructor (a macro in C, so not imported).
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    /// Resets the prepared statement and binds `binds` to its parameters with SQLite's C API.
    ///
    /// By hand rather than through GRDB's `StatementArguments`: converting each value to a
    /// `DatabaseValue` and binding it through GRDB's generic path was 16 % of a 1,000-point
    /// log-batch's server CPU and 3 % of a run creation's (perf, 2026-12-03). GRDB still prepares,
    /// caches and owns the statement; this only sets its parameters, and `step` runs it.
    static func bind(_ statement: Statement, _ binds: [SQLValue], sql: String, in db: Database) throws {
        let stmt = statement.sqliteStatement
        sqlite3_reset(stmt)
        let expected = Int(sqlite3_bind_parameter_count(stmt))
        guard expected == binds.count else {
            throw DatabaseError(
                resultCode: .SQLITE_MISUSE, message: "wrong number of statement arguments: \(binds.count), expected \(expected)", sql: sql)
        }
        for (i, v) in binds.enumerated() {
            let index = Int32(i + 1)
            let rc: Int32
            switch v {
            case .null: rc = sqlite3_bind_null(stmt, index)
            case .int(let n): rc = sqlite3_bind_int64(stmt, index, n)
            case .double(let d): rc = sqlite3_bind_double(stmt, index, d)
            case .text(var text):
                rc = text.withUTF8 { bytes in
                    // A non-nil pointer even for "", so SQLite stores '' and not NULL.
                    bytes.withMemoryRebound(to: CChar.self) { chars in
                        guard let base = chars.baseAddress else { return "".withCString { sqlite3_bind_text(stmt, index, $0, 0, transient) } }
                        return sqlite3_bind_text(stmt, index, base, Int32(chars.count), transient)
                    }
                }
            }
            guard rc == SQLITE_OK else { throw error(db, sql: sql) }
        }
    }

    /// The connection's last error as GRDB's `DatabaseError` (extended result code and message).
    static func error(_ db: Database, sql: String) -> DatabaseError {
        let connection = db.sqliteConnection
        return DatabaseError(
            resultCode: ResultCode(rawValue: sqlite3_extended_errcode(connection)),
            message: String(cString: sqlite3_errmsg(connection)), sql: sql)
    }

    @discardableResult
    func execute(_ sql: String, _ binds: [SQLValue]) async throws -> Int {
        do {
            let s = try statement(sql, binds)
            try Self.bind(s, binds, sql: sql, in: db)
            let stmt = s.sqliteStatement
            defer { sqlite3_reset(stmt) }
            var rc = sqlite3_step(stmt)
            while rc == SQLITE_ROW { rc = sqlite3_step(stmt) }
            guard rc == SQLITE_DONE else { throw Self.error(db, sql: sql) }
            return Int(sqlite3_changes(db.sqliteConnection))
        } catch let e as DatabaseError {
            throw Self.mapped(e)
        }
    }

    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        do {
            return try rows(sql, binds)
        } catch let e as DatabaseError {
            throw Self.mapped(e)
        }
    }

    private func rows(_ sql: String, _ binds: [SQLValue]) throws -> [SQLRow] {
        var out: [SQLRow] = []
        try forEachRow(sql, binds) { out.append($0) }
        return out
    }

    func scan(_ sql: String, _ binds: [SQLValue], _ visit: (SQLRow) throws -> Void) async throws {
        do {
            try forEachRow(sql, binds, visit)
        } catch let e as DatabaseError {
            throw Self.mapped(e)
        }
    }

    /// Steps the statement and reads each row into one reused `SQLRow` (a visitor that keeps it
    /// gets its own copy on the next write, by copy-on-write).
    private func forEachRow(_ sql: String, _ binds: [SQLValue], _ visit: (SQLRow) throws -> Void) throws {
        let s = try statement(sql, binds)
        try Self.bind(s, binds, sql: sql, in: db)
        let stmt = s.sqliteStatement
        defer { sqlite3_reset(stmt) }
        let width = sqlite3_column_count(stmt)
        var row = SQLRow([])
        row.values.reserveCapacity(Int(width))
        // Stepped and read with SQLite's C API: GRDB's `row[i]` decodes through generic metadata
        // lookups (a third of a 100,000-point history read in a profile).
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw Self.error(db, sql: sql) }
            row.values.removeAll(keepingCapacity: true)
            for i in 0..<width {
                switch sqlite3_column_type(stmt, i) {
                case SQLITE_NULL: row.values.append(.null)
                case SQLITE_INTEGER: row.values.append(.int(sqlite3_column_int64(stmt, i)))
                case SQLITE_FLOAT: row.values.append(.double(sqlite3_column_double(stmt, i)))
                default:
                    // Text, or a blob read as UTF-8 (as before). The pointer first, then the
                    // length (SQLite's documented order).
                    if let bytes = sqlite3_column_blob(stmt, i) {
                        let buffer = UnsafeRawBufferPointer(start: bytes, count: Int(sqlite3_column_bytes(stmt, i)))
                        row.values.append(.text(String(decoding: buffer, as: UTF8.self)))
                    } else {
                        row.values.append(.text(""))
                    }
                }
            }
            try visit(row)
        }
    }

}

extension SQLiteDriver {
    /// The bytes SQLite holds now across every connection of the process: page caches, prepared
    /// statements, sort buffers (`sqlite3_memory_used`).
    public static var memoryInUse: Int64 { sqlite3_memory_used() }

    /// Writes a consistent copy of the database at `path` (what its WAL holds included) to
    /// `destination`, while servers keep writing to it: SQLite's online backup API, in one step under
    /// one read transaction. (A backup in several steps starts over whenever another connection
    /// writes between two of them, so under steady writes it might never finish; one read
    /// transaction does not block writers in WAL mode, it only holds back checkpoints meanwhile.)
    public static func backup(from path: String, to destination: String) throws {
        var readOnly = Configuration()
        readOnly.readonly = true
        readOnly.busyMode = .timeout(10)
        let source = try DatabaseQueue(path: path, configuration: readOnly)
        let target = try DatabaseQueue(path: destination)
        do {
            try source.backup(to: target)
        } catch {
            try? target.close()
            try? source.close()
            throw error
        }
        try target.close()
        try source.close()
    }
}

extension SQLiteDriver {
    /// Whether the file at `path` is a database MLflow made (it has MLflow's `alembic_version`
    /// table), found without changing it: opened read-only, so not even its journal mode is touched
    /// (opening it as a store would switch it to WAL).
    public static func isMLflowDatabase(path: String) throws -> Bool {
        guard let size = try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int, size > 0 else { return false }
        var readOnly = Configuration()
        readOnly.readonly = true
        let db = try DatabaseQueue(path: path, configuration: readOnly)
        defer { try? db.close() }
        return try db.read { db in
            try Row.fetchOne(db, sql: SQLDialect.sqlite.tableExistsSQL, arguments: ["alembic_version"]) != nil
        }
    }
}

/// Another program's SQLite database, read without changing it (an MLflow store being imported):
/// opened read-only, so neither its contents nor its journal mode are touched, and every `read`
/// runs in one transaction (one consistent snapshot). `write` is refused.
public final class SQLiteReadOnlyDriver: SQLDriver, @unchecked Sendable {
    public let dialect = SQLDialect.sqlite
    let queue: DatabaseQueue
    public let path: String

    public init(path: String) throws {
        self.path = path
        guard FileManager.default.isReadableFile(atPath: path) else { throw SQLiteDriverError.unreadable(path) }
        var config = Configuration()
        config.readonly = true
        config.busyMode = .timeout(10)
        queue = try DatabaseQueue(path: path, configuration: config)
    }

    public func read<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection) async throws -> T) async throws -> T {
        do {
            return try await queue.read { db in
                let connection = GRDBConnection(db: db, memo: nil)
                return try InlineExecutor.run { try await body(connection) }
            }
        } catch let e as DatabaseError {
            throw GRDBConnection.mapped(e)
        }
    }

    public func write<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection) async throws -> T) async throws -> T {
        throw SQLiteDriverError.readOnly(path)
    }

    public func shutdown() async throws { try queue.close() }
}
