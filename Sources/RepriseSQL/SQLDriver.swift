import RepriseCore

/// A value bound to or read from a SQL statement.
public enum SQLValue: Sendable, Equatable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
}

extension SQLValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    public init(stringLiteral value: String) { self = .text(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(_ s: String?) { self = s.map(SQLValue.text) ?? .null }
    public init(_ i: Int64?) { self = i.map(SQLValue.int) ?? .null }
    public init(_ d: Double?) { self = d.map(SQLValue.double) ?? .null }
}

/// One result row, read by column position.
public struct SQLRow: Sendable {
    public var values: [SQLValue]
    public init(_ values: [SQLValue]) { self.values = values }

    public func string(_ i: Int) -> String {
        switch values[i] {
        case .text(let s): return s
        case .int(let v): return String(v)
        case .double(let d): return String(d)
        case .null: return ""
        }
    }
    public func optionalString(_ i: Int) -> String? {
        if case .null = values[i] { return nil }
        return string(i)
    }
    public func int(_ i: Int) -> Int64 {
        switch values[i] {
        case .int(let v): return v
        // A REAL where an integer belongs (another program's database): never a trap.
        case .double(let d): return d.isFinite && abs(d) < 9.2e18 ? Int64(d) : 0
        case .text(let s): return Int64(s) ?? 0
        case .null: return 0
        }
    }
    public func optionalInt(_ i: Int) -> Int64? {
        if case .null = values[i] { return nil }
        return int(i)
    }
    public func optionalDouble(_ i: Int) -> Double? {
        if case .null = values[i] { return nil }
        return double(i)
    }
    public func double(_ i: Int) -> Double {
        switch values[i] {
        case .double(let d): return d
        case .int(let v): return Double(v)
        case .text(let s): return Double(s) ?? 0
        case .null: return 0
        }
    }
}

/// A connection inside a transaction. SQL uses `?` placeholders; drivers whose database uses
/// another style rewrite them.
///
/// The methods are async so one store serves a driver whose database is in-process (SQLite, where a
/// statement runs on the calling thread and never suspends) and one that talks to a server
/// (PostgreSQL, where each statement is a round trip).
public protocol SQLConnection {
    /// Runs a statement that returns no rows.
    /// - Returns: the number of rows it changed.
    @discardableResult
    func execute(_ sql: String, _ binds: [SQLValue]) async throws -> Int
    /// Runs a query and returns every row.
    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow]
    /// Runs a query and hands each row to `visit` as it is read; a driver may reuse one row's
    /// storage for the next, so `visit` reads what it needs and keeps no reference to the row.
    func scan(_ sql: String, _ binds: [SQLValue], _ visit: (SQLRow) throws -> Void) async throws
    /// What the write transaction this connection is in remembers across the bodies it commits
    /// together; nil in a read.
    var memo: WriteMemo? { get }
}

/// A connection that can load many rows faster than multi-row INSERTs (PostgreSQL's COPY).
public protocol SQLBulkInsert {
    /// Inserts `rows` (values in `columns` order) into `table`, skipping rows whose key is already
    /// stored, as `INSERT … ON CONFLICT DO NOTHING` would. `table` and `columns` are the store's own
    /// names, never a client's; the schema gives `table` a keyless twin `<table>_staging` on the
    /// databases whose driver conforms (PostgreSQL: migration 10).
    /// Returns the rows inserted.
    @discardableResult
    func insertIgnoringDuplicates(into table: String, columns: [String], rows: [[SQLValue]]) async throws -> Int
}

/// What a write transaction carries from one body to the next of the same batch (group commit),
/// where no other writer can interleave: the driver runs a batch's bodies one after another, alone
/// (SQLite's single writer; PostgreSQL's cluster-wide write lock).
///
/// - The audit chain's head, so only a batch's first event reads it.
/// - The batch's audit events themselves, inserted together by `flush` just before the commit: one
///   statement per batch instead of one per body (each a round trip on PostgreSQL). Nothing reads
///   `audit_events` inside a write body, so holding them back until the commit changes nothing a
///   body or a reader can see.
///
/// The driver calls `beginBody()` before each body, `bodyFailed()` when one is rolled back (what it
/// added is dropped and the head goes back), and `flush(_:)` before committing. Used from one body
/// at a time only, which is what makes the unchecked `Sendable` sound.
public final class WriteMemo: @unchecked Sendable {
    /// The newest audit event, `(seq, hash)`, pending ones included, once known.
    public var auditHead: (seq: Int64, hash: String)? = nil
    /// Audit events recorded and not yet inserted, as rows of `SQLTrackingStore.auditColumns`.
    var pendingAudit: [[SQLValue]] = []
    private var mark: (pending: Int, head: (seq: Int64, hash: String)?) = (0, nil)

    public init() {}

    public func beginBody() { mark = (pendingAudit.count, auditHead) }

    public func bodyFailed() {
        pendingAudit.removeSubrange(mark.pending...)
        auditHead = mark.head
    }

    /// Forgets the head (a body rewrote the chain); events already pending stay.
    public func forgetHead() { auditHead = nil }

    /// Inserts the pending audit events.
    public func flush(_ db: any SQLConnection) async throws {
        try await Self.insertAudit(pendingAudit, db)
        pendingAudit.removeAll(keepingCapacity: true)
        mark = (0, auditHead)
    }

    /// The one statement that stores audit events (rows of `auditColumns`).
    static func insertAudit(_ rows: [[SQLValue]], _ db: any SQLConnection) async throws {
        try await db.executeRows(rows) { n in "INSERT INTO audit_events (\(auditColumns)) VALUES \(valueRows(n, width: 12))" }
    }

    static let auditColumns = "seq, time, actor, authenticated, action, entity_type, entity_id, summary, request_id, prev_hash, hash, auth"
}

extension SQLConnection {
    /// Every row first, then the visits: for drivers that receive a result whole.
    public func scan(_ sql: String, _ binds: [SQLValue], _ visit: (SQLRow) throws -> Void) async throws {
        for row in try await query(sql, binds) { try visit(row) }
    }

    public func queryOne(_ sql: String, _ binds: [SQLValue]) async throws -> SQLRow? {
        try await query(sql, binds).first
    }

    /// Writes `rows` with one multi-row statement per `chunk` of them (a hundred rows stay within
    /// every database's limit on bound values): `statement(n)` is the statement for `n` rows.
    /// Returns the rows the statements changed.
    @discardableResult
    public func executeRows(_ rows: [[SQLValue]], chunk: Int = 100, _ statement: (Int) -> String) async throws -> Int {
        var start = 0
        var changed = 0
        while start < rows.count {
            let part = rows[start..<min(start + chunk, rows.count)]
            changed += try await execute(statement(part.count), part.flatMap { $0 })
            start += chunk
        }
        return changed
    }
}

/// `(?, ?, …), (?, ?, …)`: the VALUES list of `rows` rows of `width` columns.
public func valueRows(_ rows: Int, width: Int) -> String {
    Array(repeating: "(" + placeholders(width) + ")", count: rows).joined(separator: ", ")
}

/// A column list qualified by a table alias: `qualified("a, b", "t")` is `t.a, t.b`.
public func qualified(_ columns: String, _ alias: String) -> String {
    columns.split(separator: ",").map { alias + "." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", ")
}

/// What a driver reports when the database refuses a statement, in terms the store can act on;
/// drivers map their own errors (SQLite result codes, PostgreSQL SQLSTATEs) to these, so no store
/// code inspects a driver's error type.
public enum SQLDriverError: Error, CustomStringConvertible, Sendable {
    /// A unique or primary-key constraint refused the row (a concurrent writer inserted it first).
    case uniqueViolation(String)
    /// The transaction could not be serialized with a concurrent one (or was chosen as a deadlock
    /// victim); running the whole body again may succeed.
    case serializationFailure(String)
    /// The database stayed locked or unavailable longer than the driver waits.
    case busy(String)
    /// The database cannot store a value it was given (PostgreSQL text cannot hold the NUL
    /// character); the request is at fault.
    case invalidValue(String)
    /// The driver is shut down.
    case closed

    /// Refuses text a database cannot store (PostgreSQL text cannot hold NUL); the one place this
    /// rule and its message live, for every path a value takes to the database.
    public static func refuseUnstorable(_ text: String) throws {
        if text.utf8.contains(0) { throw SQLDriverError.invalidValue("Text values cannot contain the NUL character (\\u0000).") }
    }

    /// Whether running the whole write body again may succeed.
    public var isTransient: Bool {
        switch self {
        case .uniqueViolation, .serializationFailure, .busy: return true
        case .closed, .invalidValue: return false
        }
    }

    public var description: String {
        switch self {
        case .uniqueViolation(let m): return "unique constraint violated: \(m)"
        case .serializationFailure(let m): return "could not serialize with a concurrent transaction: \(m)"
        case .busy(let m): return "database busy: \(m)"
        case .invalidValue(let m): return "value refused: \(m)"
        case .closed: return "the database is closed"
        }
    }
}

/// The differences between SQL databases that the portable store needs to know about.
public struct SQLDialect: Sendable {
    public var name: String
    /// Appended to `CREATE TABLE` for tables keyed for range reads (SQLite: `WITHOUT ROWID`).
    public var clusteredTableSuffix: String
    /// A case-sensitive `LIKE` over `lhs` and a bound pattern.
    public var caseSensitiveLike: @Sendable (_ lhs: String) -> String
    /// A case-insensitive `LIKE` over `lhs` and a bound pattern.
    public var caseInsensitiveLike: @Sendable (_ lhs: String) -> String
    /// An inner join that keeps the left table as the outer loop (SQLite reads `CROSS JOIN` so;
    /// PostgreSQL plans joins itself and refuses `CROSS JOIN … ON`).
    public var orderedJoin: String = "JOIN"
    /// The function giving the 1-based position of a substring, 0 when absent (`instr(h, n)` in
    /// SQLite, `strpos(h, n)` in PostgreSQL).
    public var positionFunction: String = "strpos"
    /// The collation text columns get (`"C"` on PostgreSQL: byte order, as SQLite compares text
    /// and as MLflow's search order expects, whatever locale the database was created with).
    public var textCollation: String? = nil
    /// The largest integer not above a non-negative number `e` (SQLite truncates on a cast, which
    /// is the floor there; PostgreSQL rounds, so it floors first).
    public var floorOfNonNegative: @Sendable (_ e: String) -> String = { "CAST(FLOOR(\($0)) AS BIGINT)" }

    /// A schema statement in this dialect: `TEXT` columns of `CREATE TABLE` / `ALTER TABLE` get the
    /// dialect's collation.
    public func tableDefinition(_ statement: String) -> String {
        guard let textCollation else { return statement }
        let head = statement.drop(while: { $0 == " " || $0 == "\n" }).prefix(12).uppercased()
        guard head.hasPrefix("CREATE TABLE") || head.hasPrefix("ALTER TABLE") else { return statement }
        var out = ""
        var rest = Substring(statement)
        while let r = rest.range(of: "TEXT") {
            let before = r.lowerBound == rest.startIndex ? nil : rest[rest.index(before: r.lowerBound)]
            let after = r.upperBound == rest.endIndex ? nil : rest[r.upperBound]
            let isWord = !(before.map { $0.isLetter || $0 == "_" } ?? false) && !(after.map { $0.isLetter || $0 == "_" } ?? false)
            out += rest[..<r.upperBound]
            if isWord { out += " COLLATE \"\(textCollation)\"" }
            rest = rest[r.upperBound...]
        }
        return out + rest
    }

    /// A query with one bind, a table name, that returns a row when that table exists.
    public var tableExistsSQL = "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?"
    /// A query with two binds, a table and a column name, that returns a row when that column exists.
    public var columnExistsSQL =
        "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? AND column_name = ?"

    /// What ends a `SELECT` that claims rows for this transaction (a work queue's items): on
    /// PostgreSQL `FOR UPDATE OF <alias> SKIP LOCKED`, so a second claimer, on this server or
    /// another, passes over rows a first one holds instead of waiting for it or taking them too;
    /// nothing on SQLite, whose one writer claims alone.
    public var claimRows: @Sendable (_ alias: String) -> String = { _ in "" }

    /// The right-hand side of `expr IN …` for a list of text values, with its binds. On SQLite it is
    /// one bind holding the values as a JSON array, read back with `json_each`, so the statement's
    /// text is the same whatever the count and its prepared form is cached and reused (preparing
    /// the eight statements of a whole run's read anew was about a third of a runs/get's server
    /// CPU). On PostgreSQL, one placeholder per value.
    ///
    /// Only for statements whose text is otherwise fixed: the SQLite driver caches every statement
    /// without a placeholder list, so one shaped by a client's input (a search's filter) must keep
    /// its `IN (?, …)` list, or clients could grow the cache without bound.
    public var textList: @Sendable (_ values: [String]) -> (sql: String, binds: [SQLValue]) = {
        ("(\(placeholders($0.count)))", $0.map(SQLValue.text))
    }

    /// A statement that takes a transaction-scoped lock serializing schema migrations across
    /// servers sharing the database; nil where one writer at a time is already the rule (SQLite).
    public var migrationLock: String? = nil

    /// `needle`'s 1-based position in `haystack` (both SQL expressions), 0 when absent.
    public func position(_ needle: String, in haystack: String) -> String { "\(positionFunction)(\(haystack), \(needle))" }

    public init(
        name: String, clusteredTableSuffix: String, caseSensitiveLike: @escaping @Sendable (String) -> String,
        caseInsensitiveLike: @escaping @Sendable (String) -> String
    ) {
        self.name = name
        self.clusteredTableSuffix = clusteredTableSuffix
        self.caseSensitiveLike = caseSensitiveLike
        self.caseInsensitiveLike = caseInsensitiveLike
    }

    /// SQLite with `PRAGMA case_sensitive_like = ON` on every connection.
    public static let sqlite: SQLDialect = {
        var d = SQLDialect(
            name: "sqlite", clusteredTableSuffix: " WITHOUT ROWID",
            caseSensitiveLike: { "\($0) LIKE ?" }, caseInsensitiveLike: { "LOWER(\($0)) LIKE LOWER(?)" })
        d.orderedJoin = "CROSS JOIN"
        d.positionFunction = "instr"
        d.floorOfNonNegative = { "CAST((\($0)) AS INTEGER)" }
        d.tableExistsSQL = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        d.columnExistsSQL = "SELECT 1 FROM pragma_table_info(?) WHERE name = ?"
        d.textList = { values in
            // SQLite's JSON functions end a string at an escaped NUL (`\u0000`), so such a value
            // could never match; a list holding one keeps its placeholders (exact, not cached).
            if values.contains(where: { $0.utf8.contains(0) }) {
                return ("(\(placeholders(values.count)))", values.map(SQLValue.text))
            }
            var json: [UInt8] = []
            JSONValue.writeArray(values, to: &json) { v, o in JSONValue.writeString(v, to: &o) }
            return ("(SELECT value FROM json_each(?))", [.text(String(decoding: json, as: UTF8.self))])
        }
        return d
    }()

    /// PostgreSQL: `LIKE` is case-sensitive and `ILIKE` is native.
    public static let postgres: SQLDialect = {
        var d = SQLDialect(
            name: "postgres", clusteredTableSuffix: "",
            caseSensitiveLike: { "\($0) LIKE ?" }, caseInsensitiveLike: { "\($0) ILIKE ?" })
        // A fixed application-wide key ("reprise" + 1) for pg_advisory_xact_lock.
        d.migrationLock = "SELECT pg_advisory_xact_lock(7233174116210229249)"
        d.claimRows = { " FOR UPDATE OF \($0) SKIP LOCKED" }
        d.textCollation = "C"
        return d
    }()
}

/// One schema step. Statements run in one transaction, and the version is recorded with them.
public struct SQLMigration: Sendable {
    public var version: Int
    public var name: String
    public var statements: [String]
    public init(version: Int, name: String, statements: [String]) {
        self.version = version
        self.name = name
        self.statements = statements
    }
}

/// The seam between the portable store and a database.
///
/// The isolation contract every driver keeps, and the store relies on:
/// - A `read` body sees one consistent snapshot for all its statements.
/// - A `write` body runs atomically and as if no other write ran concurrently (serializable): it
///   may read, decide and write without locking. It is acknowledged only once its transaction
///   commits durably. A driver may commit several concurrent bodies in one transaction (group
///   commit), each isolated in a savepoint so one body's failure does not undo another's.
/// - A driver may run a write body more than once (after a serialization failure), so a body does
///   database work only: no network calls, no side effects outside the connection, and it never
///   calls the driver again (a nested write would wait for itself).
/// - Refusals come back as `SQLDriverError`, never as a driver's own error type.
public protocol SQLDriver: Sendable {
    var dialect: SQLDialect { get }
    /// Runs a read-only body on a consistent snapshot.
    func read<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection) async throws -> T) async throws -> T
    /// Runs a body atomically and returns once its effects are durable.
    func write<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection) async throws -> T) async throws -> T
    /// Finishes pending writes and closes the database.
    func shutdown() async throws
}

/// Builds `?, ?, ?` for `n` binds.
public func placeholders(_ n: Int) -> String {
    String(repeating: "?, ", count: max(n - 1, 0)) + (n > 0 ? "?" : "")
}

extension Sequence {
    /// `map` with an async transform, in order, one element at a time.
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        out.reserveCapacity(underestimatedCount)
        for element in self { out.append(try await transform(element)) }
        return out
    }

    /// `compactMap` with an async transform, in order, one element at a time.
    func asyncCompactMap<T>(_ transform: (Element) async throws -> T?) async rethrows -> [T] {
        var out: [T] = []
        for element in self { if let t = try await transform(element) { out.append(t) } }
        return out
    }
}
