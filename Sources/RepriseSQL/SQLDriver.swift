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
        case .double(let d): return Int64(d)
        case .text(let s): return Int64(s) ?? 0
        case .null: return 0
        }
    }
    public func optionalInt(_ i: Int) -> Int64? {
        if case .null = values[i] { return nil }
        return int(i)
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
public protocol SQLConnection {
    /// Runs a statement that returns no rows.
    /// - Returns: the number of rows it changed.
    @discardableResult
    func execute(_ sql: String, _ binds: [SQLValue]) throws -> Int
    /// Runs a query and returns every row.
    func query(_ sql: String, _ binds: [SQLValue]) throws -> [SQLRow]
}

extension SQLConnection {
    public func queryOne(_ sql: String, _ binds: [SQLValue]) throws -> SQLRow? {
        try query(sql, binds).first
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
    public static let sqlite = SQLDialect(
        name: "sqlite", clusteredTableSuffix: " WITHOUT ROWID",
        caseSensitiveLike: { "\($0) LIKE ?" }, caseInsensitiveLike: { "LOWER(\($0)) LIKE LOWER(?)" })

    /// PostgreSQL: `LIKE` is case-sensitive and `ILIKE` is native.
    public static let postgres = SQLDialect(
        name: "postgres", clusteredTableSuffix: "",
        caseSensitiveLike: { "\($0) LIKE ?" }, caseInsensitiveLike: { "\($0) ILIKE ?" })
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
/// `write` bodies run inside a transaction and are acknowledged only after that transaction
/// commits; a driver may commit several concurrent bodies in one transaction (group commit), each
/// isolated in a savepoint so one body's failure does not undo another's.
public protocol SQLDriver: Sendable {
    var dialect: SQLDialect { get }
    /// Runs a read-only body on a consistent snapshot.
    func read<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection) throws -> T) async throws -> T
    /// Runs a body atomically and returns once its effects are durable.
    func write<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection) throws -> T) async throws -> T
    /// Applies the migrations not yet applied, in version order.
    func migrate(_ migrations: [SQLMigration]) async throws
    /// Finishes pending writes and closes the database.
    func shutdown() async throws
}

/// Builds `?, ?, ?` for `n` binds.
public func placeholders(_ n: Int) -> String {
    String(repeating: "?, ", count: max(n - 1, 0)) + (n > 0 ? "?" : "")
}
