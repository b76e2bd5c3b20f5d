import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import RepriseSQL

/// Where and how to reach a PostgreSQL database, read from the URI a user gives
/// `--backend-store-uri`: `postgresql://user:password@host:port/database?sslmode=require`, and the
/// dialect spellings MLflow users already have in their scripts (`postgresql+psycopg2://…`,
/// `postgres://…`).
public struct PostgresLocation: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    /// libpq's `sslmode`: disable, prefer (the default), require, verify-ca, verify-full.
    public var sslMode: String
    /// `sslrootcert`: a PEM file of trusted roots for verify-ca / verify-full.
    public var rootCertificate: String?

    /// Whether `uri` names PostgreSQL at all (so the caller can try another backend otherwise).
    public static func isPostgres(_ uri: String) -> Bool {
        guard let scheme = uri.split(separator: ":", maxSplits: 1).first?.lowercased() else { return false }
        return scheme == "postgresql" || scheme == "postgres" || scheme.hasPrefix("postgresql+")
    }

    /// Parses the URI; the error names what is wrong and never repeats the password.
    public init(uri: String) throws {
        guard Self.isPostgres(uri), let colon = uri.firstIndex(of: ":") else {
            throw PostgresLocationError("'\(Self.redacted(uri))' is not a postgresql:// URI")
        }
        // URLComponents does not take `postgresql+psycopg2` as a scheme with every Foundation; parse
        // the rest under a plain one.
        guard let parts = URLComponents(string: "postgresql" + uri[colon...]), let host = parts.host, !host.isEmpty else {
            throw PostgresLocationError("'\(Self.redacted(uri))' has no host: write postgresql://user:password@host:port/database")
        }
        self.host = host
        self.port = parts.port ?? 5432
        guard let user = parts.percentEncodedUser.flatMap({ $0.removingPercentEncoding }), !user.isEmpty else {
            throw PostgresLocationError("'\(Self.redacted(uri))' names no user: write postgresql://user:password@host:port/database")
        }
        self.username = user
        self.password = parts.percentEncodedPassword.flatMap { $0.removingPercentEncoding }
        let database = String(parts.percentEncodedPath.drop(while: { $0 == "/" })).removingPercentEncoding ?? ""
        guard !database.isEmpty else {
            throw PostgresLocationError("'\(Self.redacted(uri))' names no database: write postgresql://user:password@host:port/database")
        }
        self.database = database
        var sslMode = "prefer"
        var root: String? = nil
        for item in parts.queryItems ?? [] {
            switch item.name {
            case "sslmode": sslMode = item.value ?? sslMode
            case "sslrootcert": root = item.value
            default: break
            }
        }
        guard ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"].contains(sslMode) else {
            throw PostgresLocationError("sslmode '\(sslMode)' is not one of disable, prefer, require, verify-ca, verify-full")
        }
        self.sslMode = sslMode
        self.rootCertificate = root
    }

    /// The URI with its password replaced, for messages and logs.
    public static func redacted(_ uri: String) -> String {
        guard let at = uri.lastIndex(of: "@"), let schemeEnd = uri.range(of: "://")?.upperBound, schemeEnd < at else { return uri }
        let userInfo = uri[schemeEnd..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return uri }
        return String(uri[..<colon]) + ":***" + String(uri[at...])
    }

    var tls: PostgresClient.Configuration.TLS {
        get throws {
            var tls = TLSConfiguration.makeClientConfiguration()
            if let rootCertificate { tls.trustRoots = .file(rootCertificate) }
            switch sslMode {
            case "disable": return .disable
            case "allow", "prefer":
                tls.certificateVerification = .none
                return .prefer(tls)
            case "require":
                tls.certificateVerification = .none
                return .require(tls)
            case "verify-ca":
                tls.certificateVerification = .noHostnameVerification
                return .require(tls)
            default:
                tls.certificateVerification = .fullVerification
                return .require(tls)
            }
        }
    }
}

public struct PostgresLocationError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}

/// `SQLDriver` over PostgreSQL with PostgresNIO.
///
/// Writes keep the seam's contract, "as if no other write ran", across every server sharing the
/// database: each server commits its queued write bodies in batches (group commit), one
/// transaction per batch (a savepoint per body only when one fails; see `drain`), and every batch
/// transaction first takes one cluster-wide advisory lock. Under READ COMMITTED, every statement
/// after the lock sees what the previous holder committed, so the store's read-decide-write bodies
/// (the audit chain's next link, a vote count, a per-model version number) need no locking of
/// their own and never fail to serialize. What does not depend on the lock: ids come from counters
/// updated in one statement (`SQLTrackingStore.nextID`), webhook deliveries are claimed with
/// `FOR UPDATE SKIP LOCKED`, and per-parent numbers sit under primary keys (a race would be a
/// unique violation, retried by the store). Reads run on one REPEATABLE READ snapshot each,
/// without the lock.
///
/// The price is one writing transaction at a time across the cluster; batching is what keeps that
/// fast (a batch costs one lock, one commit and one WAL flush for all its bodies).
public final class PostgresDriver: SQLDriver, Sendable {
    public let dialect = SQLDialect.postgres
    let client: PostgresClient
    let logger: Logger
    let runner: Task<Void, Never>
    /// The event loops of this driver's connections, its own: transactions run on them
    /// (`EventLoopTaskExecutor`), so a long body (a search decoding many rows, an audit
    /// verification) holds up only other database work, never the HTTP server's loops.
    let loops: MultiThreadedEventLoopGroup

    /// The key of the cluster-wide write lock (`pg_advisory_xact_lock`).
    static let writeLockKey: Int64 = 7_233_174_116_210_229_250
    /// At most this many bodies share one transaction, so the lock is never held for long.
    static let maxBatch = 64

    private let queue = GroupCommitQueue<Job>(maxBatch: PostgresDriver.maxBatch)

    struct Job: Sendable {
        /// Runs the body; false when it failed (its error is in its result).
        let run: @Sendable (PostgresSQLConnection) async -> Bool
        let complete: @Sendable ((any Error)?) -> Void
    }

    /// Settings for every connection, sent at start-up. The server's queries are many short ones
    /// (a search walks an index and stops after a page); PostgreSQL's defaults are tuned for long
    /// analytical ones. Measured on 1,000,000 runs (docs/benchmarks.md): a filtered and ordered
    /// search took 96 ms with two parallel workers (most of it starting them) and 25 ms without;
    /// JIT compilation added ~45 ms to plans PostgreSQL thought expensive. Concurrent requests
    /// already keep the cores busy, so parallel workers buy no throughput either.
    static let sessionSettings: [(String, String)] = [("jit", "off"), ("max_parallel_workers_per_gather", "0")]

    /// - Parameters:
    ///   - location: the database.
    ///   - maxConnections: the pool's size (`--db-pool-size`).
    public init(location: PostgresLocation, maxConnections: Int = 20, logger: Logger) throws {
        var configuration = PostgresClient.Configuration(
            host: location.host, port: location.port, username: location.username, password: location.password,
            database: location.database, tls: try location.tls)
        configuration.options.maximumConnections = max(1, maxConnections)
        configuration.options.connectTimeout = .seconds(10)
        configuration.options.additionalStartupParameters = Self.sessionSettings
        let loops = MultiThreadedEventLoopGroup(numberOfThreads: max(1, System.coreCount))
        let client = PostgresClient(configuration: configuration, eventLoopGroup: loops, backgroundLogger: logger)
        self.loops = loops
        self.client = client
        self.logger = logger
        self.runner = Task { await client.run() }
    }

    public func read<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection) async throws -> T) async throws -> T {
        do {
            return try await client.withConnection { connection in
                try await withTaskExecutorPreference(EventLoopTaskExecutor(connection.eventLoop)) {
                    let c = PostgresSQLConnection(connection: connection, logger: logger, memo: nil)
                    try await c.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", [])
                    do {
                        let result = try await body(c)
                        try await c.execute("COMMIT", [])
                        return result
                    } catch {
                        _ = try? await c.execute("ROLLBACK", [])
                        throw error
                    }
                }
            }
        } catch let e as PSQLError {
            throw PostgresSQLConnection.mapped(e)
        }
    }

    public func write<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection) async throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let box = ResultBox<T>()
            let job = Job(
                run: { c in
                    do {
                        box.result = .success(try await body(c))
                        return true
                    } catch {
                        box.result = .failure(error)
                        return false
                    }
                },
                complete: { commitError in
                    if let commitError {
                        continuation.resume(throwing: commitError)
                    } else {
                        continuation.resume(with: box.result ?? .failure(SQLDriverError.closed))
                    }
                })
            enqueue(job)
        }
    }

    private func enqueue(_ job: Job) {
        switch queue.add(job) {
        case .closed: job.complete(SQLDriverError.closed)
        case .startDrain: Task { await self.drain() }
        case .queued: break
        }
    }

    /// Commits what is queued, batch after batch, until nothing is left.
    ///
    /// Every statement is a round trip (PostgresNIO neither pipelines nor speaks the simple-query
    /// protocol that could send several at once), and the batch holds the cluster-wide lock while
    /// it runs, so round trips are what limits write throughput. A savepoint around each body costs
    /// two of them (SAVEPOINT, RELEASE), as many as a log-metric's own work. So a batch first runs
    /// optimistically, its bodies one after another with no savepoints; only when one of them fails
    /// (a refusal: a missing run, a taken name) is that transaction rolled back and the batch run
    /// again with each body in its own savepoint, so the failure undoes that body alone. Bodies may
    /// run more than once (the seam's contract), and a failure does not escape the batch it occurred
    /// in: nothing of the optimistic attempt is committed.
    private func drain() async {
        while true {
            let jobs = queue.nextBatch()
            if jobs.isEmpty { return }
            var failure: (any Error)? = nil
            do {
                // A lone body that fails needs no second run: its rollback is the whole transaction's.
                if try await runBatch(jobs, savepoints: false) == false && jobs.count > 1 {
                    _ = try await runBatch(jobs, savepoints: true)
                }
            } catch let e as PSQLError {
                failure = PostgresSQLConnection.mapped(e)
            } catch {
                failure = error
            }
            for job in jobs { job.complete(failure) }
        }
    }

    /// Runs the bodies in one transaction under the write lock and commits it.
    /// - Returns: false when, without savepoints, a body failed and the transaction was rolled back.
    private func runBatch(_ jobs: [Job], savepoints: Bool) async throws -> Bool {
        try await client.withConnection { connection in try await withTaskExecutorPreference(EventLoopTaskExecutor(connection.eventLoop)) {
            let memo = WriteMemo()
            let c = PostgresSQLConnection(connection: connection, logger: logger, memo: memo)
            try await c.execute("BEGIN ISOLATION LEVEL READ COMMITTED", [])
            do {
                try await c.execute("SELECT pg_advisory_xact_lock(\(Self.writeLockKey))", [])
                for job in jobs {
                    if savepoints { try await c.execute("SAVEPOINT reprise_body", []) }
                    memo.beginBody()
                    if await job.run(c) {
                        if savepoints { try await c.execute("RELEASE SAVEPOINT reprise_body", []) }
                    } else if savepoints {
                        // Undo this body only (and clear PostgreSQL's aborted state after an error).
                        memo.bodyFailed()
                        try await c.execute("ROLLBACK TO SAVEPOINT reprise_body", [])
                    } else {
                        _ = try? await c.execute("ROLLBACK", [])
                        return false
                    }
                }
                try await memo.flush(c)
                try await c.execute("COMMIT", [])
                return true
            } catch {
                _ = try? await c.execute("ROLLBACK", [])
                throw error
            }
        } }
    }

    public func shutdown() async throws {
        // Let queued writes commit: a barrier write runs after everything queued before it.
        _ = try? await write { _ in true }
        queue.close()
        runner.cancel()
        _ = await runner.value
        try? await loops.shutdownGracefully()
    }

    /// Creates a database (outside any transaction, as PostgreSQL requires) through the server at
    /// `location`: for tests, which give every store a database of its own.
    /// - Parameters:
    ///   - name: letters, digits and `_` only.
    ///   - options: what follows `CREATE DATABASE name` (a template, a locale), written by the caller.
    public static func createDatabase(_ name: String, options: String = "", at location: PostgresLocation, logger: Logger) async throws {
        guard !name.isEmpty, name.utf8.allSatisfy({ $0 == 95 || ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 122) }) else {
            throw PostgresLocationError("a database name of lower-case letters, digits and '_' only: \(name)")
        }
        let driver = try PostgresDriver(location: location, maxConnections: 1, logger: logger)
        do {
            try await driver.client.withConnection { connection in
                _ = try await PostgresSQLConnection(connection: connection, logger: logger, memo: nil).execute("CREATE DATABASE \(name) \(options)", [])
            }
        } catch {
            try? await driver.shutdown()
            throw error
        }
        try await driver.shutdown()
    }
}

/// Runs a task's jobs on a connection's event loop. A transaction's statements run with this as the
/// task's executor preference, so the code between two statements runs on the thread that reads
/// and writes the connection: sending a statement is a direct channel write and its answer resumes
/// the body in place. Without it every statement crossed threads twice (the cooperative pool to
/// the event loop and back), and those wake-ups were most of the server's CPU per write (a profile
/// of log-metric on PostgreSQL: ~30 % in the scheduler, eventfd and futex calls).
final class EventLoopTaskExecutor: TaskExecutor {
    let loop: any EventLoop

    init(_ loop: any EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// A statement PostgreSQL refused for a reason the seam has no name for: its SQLSTATE and the
/// server's message (never the statement's values).
struct PostgresStatementError: Error, CustomStringConvertible {
    let state: String
    let message: String
    var description: String { "PostgreSQL error \(state): \(message)" }
}

/// One pooled connection inside a transaction, seen through the driver seam.
struct PostgresSQLConnection: SQLConnection {
    let connection: PostgresConnection
    let logger: Logger
    let memo: WriteMemo?

    /// `?` placeholders as PostgreSQL's `$1, $2, …`; a `?` inside a quoted literal or identifier
    /// is left alone. Walks UTF-8 bytes (every character it looks for is ASCII, and no byte of a
    /// multi-byte character is): it runs for every statement, and iterating `Character`s cost
    /// tens of microseconds per statement.
    static func numbered(_ sql: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(sql.utf8.count + 16)
        var n = 0
        var quote: UInt8? = nil
        for byte in sql.utf8 {
            if let q = quote {
                if byte == q { quote = nil }
                out.append(byte)
            } else if byte == UInt8(ascii: "'") || byte == UInt8(ascii: "\"") {
                quote = byte
                out.append(byte)
            } else if byte == UInt8(ascii: "?") {
                n += 1
                out.append(UInt8(ascii: "$"))
                out.append(contentsOf: String(n).utf8)
            } else {
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func query(_ sql: String, _ binds: [SQLValue]) throws -> PostgresQuery {
        var bindings = PostgresBindings(capacity: binds.count)
        for value in binds {
            switch value {
            case .null: bindings.appendNull()
            case .int(let i): bindings.append(i)
            case .double(let d): bindings.append(d)
            case .text(let s):
                // PostgreSQL text cannot hold NUL; say so instead of failing the statement.
                try SQLDriverError.refuseUnstorable(s)
                bindings.append(s)
            }
        }
        return PostgresQuery(unsafeSQL: numbered(sql), binds: bindings)
    }

    /// PostgreSQL's refusals in the seam's terms, by SQLSTATE.
    static func mapped(_ e: PSQLError) -> any Error {
        let state = e.serverInfo?[.sqlState] ?? ""
        let message = e.serverInfo?[.message] ?? "\(e.code)"
        switch state {
        case "23505": return SQLDriverError.uniqueViolation(message)
        case "40001", "40P01": return SQLDriverError.serializationFailure(message)
        case "55P03", "57P03", "53300": return SQLDriverError.busy(message)
        default:
            if e.code == .connectionError || e.code == .serverClosedConnection || e.code == .poolClosed {
                return SQLDriverError.busy("the database connection failed: \(e.code)")
            }
            return PostgresStatementError(state: state, message: message)
        }
    }

    @discardableResult
    func execute(_ sql: String, _ binds: [SQLValue]) async throws -> Int {
        do {
            let future: EventLoopFuture<PostgresQueryResult> = connection.query(try Self.query(sql, binds), logger: logger)
            return try await future.get().metadata.rows ?? 0
        } catch let e as PSQLError {
            throw Self.mapped(e)
        }
    }

    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        do {
            let future: EventLoopFuture<PostgresQueryResult> = connection.query(try Self.query(sql, binds), logger: logger)
            return try await future.get().rows.map(Self.row)
        } catch let e as PSQLError {
            throw Self.mapped(e)
        }
    }

    static func row(_ row: PostgresRow) throws -> SQLRow {
        var values: [SQLValue] = []
        for cell in row {
            guard cell.bytes != nil else {
                values.append(.null)
                continue
            }
            switch cell.dataType {
            case .int2, .int4, .int8: values.append(.int(try cell.decode(Int64.self)))
            case .float4, .float8: values.append(.double(try cell.decode(Double.self)))
            case .bool: values.append(.int(try cell.decode(Bool.self) ? 1 : 0))
            case .numeric:
                let text = try cell.decode(String.self)
                if let i = Int64(text) { values.append(.int(i)) } else { values.append(.double(Double(text) ?? 0)) }
            default: values.append(.text(try cell.decode(String.self)))
            }
        }
        return SQLRow(values)
    }
}

/// Bulk loads through COPY: the rows stream into the target's staging table (`<table>_staging`,
/// made by the schema on PostgreSQL: unlogged, no keys), since COPY has no ON CONFLICT, and one
/// INSERT … SELECT moves them over, skipping duplicates; the staging rows are deleted in the same
/// transaction, so no other transaction ever sees any. Three or four round trips whatever the row
/// count, where multi-row INSERTs take one per hundred rows, each parsed anew.
extension PostgresSQLConnection: SQLBulkInsert {
    @discardableResult
    func insertIgnoringDuplicates(into table: String, columns: [String], rows: [[SQLValue]]) async throws -> Int {
        if rows.isEmpty { return 0 }
        let staging = table + "_staging"
        var text = ByteBuffer()
        text.reserveCapacity(rows.count * 96)
        for row in rows {
            for (i, value) in row.enumerated() {
                if i > 0 { text.writeInteger(UInt8(ascii: "\t")) }
                try Self.writeCopyText(value, to: &text)
            }
            text.writeInteger(UInt8(ascii: "\n"))
        }
        do {
            try await connection.copyFrom(table: staging, columns: columns, logger: logger) { writer in
                try await writer.write(text)
            }
        } catch let e as PSQLError {
            throw Self.mapped(e)
        }
        let list = columns.joined(separator: ", ")
        let inserted = try await execute("INSERT INTO \(table) (\(list)) SELECT \(list) FROM \(staging) ON CONFLICT DO NOTHING", [])
        try await execute("DELETE FROM \(staging)", [])
        return inserted
    }
    /// One value in COPY's text format: `\N` for NULL; in text, backslash, tab, newline and carriage
    /// return escaped; NUL refused as in a bound statement.
    static func writeCopyText(_ value: SQLValue, to out: inout ByteBuffer) throws {
        switch value {
        case .null: out.writeStaticString("\\N")
        case .int(let i): out.writeString(String(i))
        case .double(let d): out.writeString(d.description)
        case .text(let s):
            try SQLDriverError.refuseUnstorable(s)
            for byte in s.utf8 {
                switch byte {
                case UInt8(ascii: "\\"): out.writeStaticString("\\\\")
                case UInt8(ascii: "\t"): out.writeStaticString("\\t")
                case UInt8(ascii: "\n"): out.writeStaticString("\\n")
                case UInt8(ascii: "\r"): out.writeStaticString("\\r")
                default: out.writeInteger(byte)
                }
            }
        }
    }
}
