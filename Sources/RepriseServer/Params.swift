import RepriseCore

/// The fields of one request message, from a JSON body or from query parameters, read with the
/// reference server's rules: snake_case or camelCase names, int64 as number or string, enums by
/// name, and its error messages.
struct Params: Sendable {
    enum Source: Sendable {
        case json(JSONObject)
        case query([String: [String]])
    }
    let source: Source

    /// camelCase spellings of the fields read on hot paths, computed once.
    static let knownCamel: [String: String] = Dictionary(
        uniqueKeysWithValues: [
            "run_id", "run_uuid", "experiment_id", "model_id", "dataset_name", "dataset_digest", "max_results",
            "page_token", "order_by", "view_type", "run_view_type", "experiment_ids", "start_time", "end_time",
            "run_name", "user_id", "metric_key", "source_run_id",
        ].map { ($0, computeCamel($0)) })

    static func camel(_ snake: String) -> String {
        if let known = knownCamel[snake] { return known }
        return computeCamel(snake)
    }

    static func computeCamel(_ snake: String) -> String {
        var out = ""
        var upper = false
        for c in snake {
            if c == "_" {
                upper = true
            } else {
                out.append(upper ? Character(c.uppercased()) : c)
                upper = false
            }
        }
        return out
    }

    /// The raw value of a field, or nil when absent or null.
    func raw(_ name: String) throws -> JSONValue? {
        switch source {
        case .json(let o):
            let snake = o[name]
            let camelName = name.utf8.contains(UInt8(ascii: "_")) ? Params.camel(name) : name
            let camel = camelName == name ? nil : o[camelName]
            if snake != nil && camel != nil {
                throw RepriseError.invalid("Field '\(name)' was given twice, as '\(name)' and as '\(camelName)'.")
            }
            let v = snake ?? camel
            if case .null? = v { return nil }
            return v
        case .query(let q):
            guard let first = (q[name] ?? q[Params.camel(name)])?.first else { return nil }
            return .string(first)
        }
    }

    var isQuery: Bool {
        if case .query = source { return true }
        return false
    }

    func string(_ name: String) throws -> String? {
        guard let v = try raw(name) else { return nil }
        switch v {
        case .string(let s): return s
        default: throw RepriseError.wrongType(name, v, "Expected a string.")
        }
    }

    func requiredString(_ name: String) throws -> String {
        guard let s = try string(name), !s.isEmpty else { throw RepriseError.missing(name) }
        return s
    }

    /// `run_id`, falling back to the legacy `run_uuid`.
    func runID() throws -> String {
        if let s = try string("run_id"), !s.isEmpty { return s }
        if let s = try string("run_uuid"), !s.isEmpty { return s }
        throw RepriseError.missing("run_id")
    }

    /// Fields the protocol declares as int32 (page sizes, limits, depths). Larger values are refused
    /// here, in one place, so no handler or store does arithmetic such as `limit + 1` on Int64.max.
    static let int32Fields: Set<String> = ["max_results", "limit", "depth", "required_approvals"]

    func int64(_ name: String) throws -> Int64? {
        guard let v = try raw(name) else { return nil }
        let i = try Params.int64(v, field: name)
        if Params.int32Fields.contains(name), i > Int64(Int32.max) || i < Int64(Int32.min) {
            throw RepriseError.invalid("Invalid value \(i) for parameter '\(name)' supplied: it must be a 32-bit integer (at most \(Int32.max)).")
        }
        return i
    }

    static func int64(_ v: JSONValue, field: String) throws -> Int64 {
        switch v {
        case .int(let i): return i
        case .double(let d) where d == d.rounded() && abs(d) < 9.2e18: return Int64(d)
        case .string(let s):
            if let i = Int64(s.trimmingCharacters(in: [" "])) { return i }
            throw RepriseError.wrongType(field, v, "Expected an integer.")
        default: throw RepriseError.wrongType(field, v, "Expected an integer.")
        }
    }

    func double(_ name: String) throws -> Double? {
        guard let v = try raw(name) else { return nil }
        return try Params.double(v, field: name)
    }

    static func double(_ v: JSONValue, field: String) throws -> Double {
        switch v {
        case .int(let i): return Double(i)
        case .double(let d): return d
        case .string(let s):
            switch s {
            case "NaN", "nan": return .nan
            case "Infinity", "inf": return .infinity
            case "-Infinity", "-inf": return -.infinity
            default:
                if let d = Double(s) { return d }
                throw RepriseError.wrongType(field, v, "Expected a number.")
            }
        default: throw RepriseError.wrongType(field, v, "Expected a number.")
        }
    }

    func bool(_ name: String) throws -> Bool? {
        guard let v = try raw(name) else { return nil }
        switch v {
        case .bool(let b): return b
        case .string(let s):
            switch s.lowercased() {
            case "true": return true
            case "false": return false
            default: throw RepriseError.invalid("Invalid boolean value: \(s), must be 'true' or 'false'.")
            }
        default: throw RepriseError.wrongType(name, v, "Expected a boolean.")
        }
    }

    /// A repeated string field: a JSON array, or every value of a repeated query key.
    func stringList(_ name: String) throws -> [String] {
        switch source {
        case .query(let q):
            return q[name] ?? q[Params.camel(name)] ?? []
        case .json:
            guard let v = try raw(name) else { return [] }
            guard case .array(let items) = v else { throw RepriseError.wrongType(name, v, "Expected a list.") }
            return try items.map { item in
                switch item {
                case .string(let s): return s
                case .int(let i): return String(i)
                default: throw RepriseError.wrongType(name, v, "Expected a list of strings.")
                }
            }
        }
    }

    func array(_ name: String) throws -> [JSONValue] {
        guard let v = try raw(name) else { return [] }
        guard case .array(let items) = v else { throw RepriseError.wrongType(name, v, "Expected a list.") }
        return items
    }

    /// A list of `{key, value}` objects.
    func keyValues(_ name: String, valueRequired: Bool = false) throws -> [KeyValue] {
        try array(name).enumerated().map { (i, item) in
            guard case .object(let o) = item else { throw RepriseError.wrongType(name, .array([item]), "Expected a list of objects.") }
            let p = Params(source: .json(o))
            guard let key = try p.string("key"), !key.isEmpty else { throw RepriseError.missing("\(name)[\(i)].key") }
            let value = try p.string("value")
            if valueRequired && value == nil { throw RepriseError.missing("\(name)[\(i)].value") }
            return KeyValue(key, value ?? "")
        }
    }
}
