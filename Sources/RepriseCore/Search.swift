import Foundation

/// Comparators of the search grammar (spec §5).
public enum Comparator: String, Sendable, CaseIterable {
    case eq = "=", ne = "!=", gt = ">", ge = ">=", lt = "<", le = "<="
    case like = "LIKE", ilike = "ILIKE", `in` = "IN", notIn = "NOT IN"
    case isNull = "IS NULL", isNotNull = "IS NOT NULL"

    public static let numeric: Set<Comparator> = [.eq, .ne, .gt, .ge, .lt, .le]
    public static let string: Set<Comparator> = [.eq, .ne, .like, .ilike]
}

/// A literal on the right-hand side of a comparison.
public enum FilterValue: Sendable, Equatable {
    case string(String)
    case number(Double, text: String)
    case list([String])
    case none

    var display: String {
        switch self {
        case .string(let s): return s
        case .number(_, let t): return t
        case .list(let l): return "(" + l.map { "'\($0)'" }.joined(separator: ", ") + ")"
        case .none: return ""
        }
    }
}

/// One parsed comparison, before it is checked against a search's entity rules.
public struct RawClause: Sendable, Equatable {
    /// The entity word before the first `.`, or nil for a bare attribute.
    public var entity: String?
    public var key: String
    public var comparator: Comparator
    public var value: FilterValue
    /// Whether the value was written in quotes.
    public var quoted: Bool

    public init(entity: String?, key: String, comparator: Comparator, value: FilterValue, quoted: Bool) {
        self.entity = entity
        self.key = key
        self.comparator = comparator
        self.value = value
        self.quoted = quoted
    }
}

/// The entity kinds of a checked clause.
public enum FilterEntity: String, Sendable {
    case metric, param, tag, attribute, dataset
}

/// A checked comparison, ready to be turned into SQL.
public struct FilterClause: Sendable, Equatable {
    public var entity: FilterEntity
    public var key: String
    public var comparator: Comparator
    public var value: FilterValue
    public init(entity: FilterEntity, key: String, comparator: Comparator, value: FilterValue) {
        self.entity = entity
        self.key = key
        self.comparator = comparator
        self.value = value
    }
}

/// One `order_by` term.
public struct OrderTerm: Sendable, Equatable {
    public var entity: FilterEntity
    public var key: String
    public var ascending: Bool
    public init(entity: FilterEntity, key: String, ascending: Bool) {
        self.entity = entity
        self.key = key
        self.ascending = ascending
    }
}

// MARK: - Tokenizing and parsing

/// Parses the filter grammar shared by every search: comparisons joined by `AND`.
public struct FilterParser {
    var s: [Character]
    var i = 0
    let original: String

    init(_ text: String) {
        s = Array(text)
        original = text
    }

    static func bad(_ message: String) -> RepriseError { .invalid(message) }

    /// Most comparisons one filter may join with `AND`, and most values in one `IN` list: bounds on
    /// the SQL a request can make the server build (the database refuses deeper expression trees).
    public static let maxClauses = 200
    public static let maxListItems = 10_000

    /// Parses a whole filter string into raw clauses. Empty or blank filters give no clauses.
    public static func parse(_ filter: String?) throws -> [RawClause] {
        guard let filter, !filter.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return [] }
        var p = FilterParser(filter)
        var clauses: [RawClause] = []
        while true {
            p.skipSpace()
            clauses.append(try p.parseClause())
            if clauses.count > maxClauses {
                throw bad("Invalid filter: it has more than \(maxClauses) comparisons joined by AND, the most one search accepts. Narrow it, or split the search.")
            }
            p.skipSpace()
            if p.atEnd { break }
            let word = p.peekWord().uppercased()
            if word == "AND" {
                p.i += 3
                p.skipSpace()
                if p.atEnd { throw bad("Invalid filter '\(filter)'. Filter cannot end with AND.") }
                continue
            }
            if word == "OR" { throw bad("Invalid clause(s) in filter string: 'OR'") }
            throw bad("Invalid filter '\(filter)'. Could not be parsed near '\(String(p.s[p.i...]))'.")
        }
        return clauses
    }

    /// Parses one `order_by` string into (entity word, key, ascending).
    public static func parseOrderBy(_ text: String) throws -> (entity: String?, key: String, ascending: Bool) {
        var p = FilterParser(text)
        p.skipSpace()
        guard !p.atEnd else { throw bad("Invalid order_by clause '\(text)'. Could not be parsed.") }
        let (entity, key) = try p.parseIdentifier()
        p.skipSpace()
        var ascending = true
        if !p.atEnd {
            let w = p.peekWord().uppercased()
            if w == "ASC" || w == "DESC" {
                ascending = w == "ASC"
                p.i += w.count
                p.skipSpace()
            }
        }
        guard p.atEnd else { throw bad("Invalid order_by clause '\(text)'. Could not be parsed.") }
        return (entity, key, ascending)
    }

    var atEnd: Bool { i >= s.count }

    mutating func skipSpace() { while i < s.count, s[i].isWhitespace { i += 1 } }

    func peekWord() -> String {
        var j = i
        var w = ""
        while j < s.count, s[j].isLetter { w.append(s[j]); j += 1 }
        return w
    }

    static func isIdentChar(_ c: Character) -> Bool {
        c.isLetter || c.isNumber || c == "_" || c == "." || c == "-" || c == ":" || c == "/"
    }

    mutating func parseQuoted() throws -> String {
        let q = s[i]
        i += 1
        var out = ""
        while i < s.count {
            if s[i] == q {
                if q != "`", i + 1 < s.count, s[i + 1] == q {  // doubled quote is a literal quote
                    out.append(q)
                    i += 2
                    continue
                }
                i += 1
                return out
            }
            if s[i] == "\\", i + 1 < s.count, s[i + 1] == q || s[i + 1] == "\\" {
                out.append(s[i + 1])
                i += 2
                continue
            }
            out.append(s[i])
            i += 1
        }
        throw FilterParser.bad("Invalid filter '\(original)'. Unterminated quoted string.")
    }

    mutating func parseIdentifier() throws -> (String?, String) {
        if i < s.count, s[i] == "`" || s[i] == "\"" {
            return (nil, try parseQuoted())
        }
        var word = ""
        while i < s.count, FilterParser.isIdentChar(s[i]) { word.append(s[i]); i += 1 }
        if word.isEmpty {
            throw FilterParser.bad("Invalid filter '\(original)'. Expected an identifier near '\(String(s[i...]))'.")
        }
        if word.hasSuffix("."), i < s.count, s[i] == "`" || s[i] == "\"" {
            return (String(word.dropLast()), try parseQuoted())
        }
        if let dot = word.firstIndex(of: ".") {
            let entity = String(word[..<dot])
            let key = String(word[word.index(after: dot)...])
            guard !key.isEmpty else { throw FilterParser.bad("Invalid identifier '\(word)'.") }
            return (entity, key)
        }
        return (nil, word)
    }

    mutating func parseComparator() throws -> Comparator {
        skipSpace()
        guard i < s.count else { throw FilterParser.bad("Invalid filter '\(original)'. Expected a comparator.") }
        let two = i + 1 < s.count ? String(s[i...i + 1]) : String(s[i])
        for op in ["!=", ">=", "<=", "<>"] where two == op {
            i += 2
            return op == "<>" ? .ne : Comparator(rawValue: op)!
        }
        switch s[i] {
        case "=": i += 1; return .eq
        case ">": i += 1; return .gt
        case "<": i += 1; return .lt
        default: break
        }
        let w1 = peekWord().uppercased()
        switch w1 {
        case "LIKE": i += 4; return .like
        case "ILIKE": i += 5; return .ilike
        case "IN": i += 2; return .in
        case "NOT":
            i += 3
            skipSpace()
            if peekWord().uppercased() == "IN" { i += 2; return .notIn }
        case "IS":
            i += 2
            skipSpace()
            var w = peekWord().uppercased()
            var negated = false
            if w == "NOT" {
                negated = true
                i += 3
                skipSpace()
                w = peekWord().uppercased()
            }
            if w == "NULL" {
                i += 4
                return negated ? .isNotNull : .isNull
            }
        default: break
        }
        throw FilterParser.bad("Invalid filter '\(original)'. Expected a comparator near '\(String(s[i...]))'.")
    }

    mutating func parseValue() throws -> (FilterValue, Bool) {
        skipSpace()
        guard i < s.count else { throw FilterParser.bad("Invalid filter '\(original)'. Expected a value.") }
        let c = s[i]
        if c == "'" || c == "\"" { return (.string(try parseQuoted()), true) }
        if c == "(" {
            i += 1
            var items: [String] = []
            while true {
                skipSpace()
                guard i < s.count else { throw FilterParser.bad("Invalid filter '\(original)'. Unterminated list.") }
                if s[i] == ")" { i += 1; break }
                guard s[i] == "'" || s[i] == "\"" else {
                    throw FilterParser.bad(
                        "While parsing a list in the query, expected string value, punctuation, or whitespace, but got different type in list: \(String(s[i...]))"
                    )
                }
                items.append(try parseQuoted())
                if items.count > FilterParser.maxListItems {
                    throw FilterParser.bad("Invalid filter: an IN list has more than \(FilterParser.maxListItems) values, the most one search accepts.")
                }
                skipSpace()
                if i < s.count, s[i] == "," { i += 1 }
            }
            if items.isEmpty { throw FilterParser.bad("While parsing a list in the query, expected a non-empty list of string values, but got empty list") }
            return (.list(items), true)
        }
        var text = ""
        while i < s.count, !s[i].isWhitespace, s[i] != ")" { text.append(s[i]); i += 1 }
        if let d = Double(text) { return (.number(d, text: text), false) }
        return (.string(text), false)
    }

    mutating func parseClause() throws -> RawClause {
        let (entity, key) = try parseIdentifier()
        let comp = try parseComparator()
        if comp == .isNull || comp == .isNotNull {
            return RawClause(entity: entity, key: key, comparator: comp, value: .none, quoted: false)
        }
        let (value, quoted) = try parseValue()
        return RawClause(entity: entity, key: key, comparator: comp, value: value, quoted: quoted)
    }
}

// MARK: - Page tokens

/// Opaque page tokens: base64 of `{"offset": N}`, as the reference uses.
public enum PageToken {
    public static func encode(offset: Int) -> String {
        Data("{\"offset\": \(offset)}".utf8).base64EncodedString()
    }

    /// Decodes a token into an offset. Empty or missing means 0.
    public static func decode(_ token: String?) throws -> Int {
        guard let token, !token.isEmpty else { return 0 }
        guard let data = Data(base64Encoded: token) ?? Data(base64Encoded: token + String(repeating: "=", count: (4 - token.count % 4) % 4)) else {
            throw RepriseError.invalid("Invalid page token, could not base64-decode")
        }
        guard let json = try? JSONValue.parse(Array(data)), case .int(let offset)? = json["offset"], offset >= 0,
            offset <= Int64(Int32.max)
        else {
            throw RepriseError.invalid("Invalid page token, decoded value=\(String(decoding: data, as: UTF8.self))")
        }
        return Int(offset)
    }
}
