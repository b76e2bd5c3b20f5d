/// The reference server's validation rules and limits (spec §6), with its messages.
public enum Validation {
    public static let maxParamValueLength = 6000
    public static let maxTagValueLength = 8000
    public static let maxExperimentTagValueLength = 20000
    public static let maxEntityKeyLength = 250
    public static let maxExperimentNameLength = 500
    public static let maxBatchMetrics = 1000
    public static let maxBatchParams = 100
    public static let maxBatchTags = 100
    public static let maxBatchTotal = 1000
    public static let maxBatchBodyBytes = 1_000_000
    public static let maxDatasetNameLength = 500
    public static let maxDatasetDigestLength = 36
    public static let maxDatasetSourceLength = 65535
    public static let maxDatasetSchemaLength = 1_048_575
    public static let maxDatasetProfileLength = 16_777_215
    public static let maxInputTagKeyLength = 255
    public static let maxInputTagValueLength = 500

    /// Whether a character is in Python's `\w` class.
    static func isWord(_ c: Character) -> Bool { c.isLetter || c.isNumber || c == "_" }

    // MARK: Paths, byte by byte
    //
    // Every check on a path splits and compares its UTF-8 bytes, never Swift `Character`s. `String`'s
    // `split`, `contains`, `hasPrefix`, `firstIndex(of:)` and `==` work on grapheme clusters, and a
    // '/' followed by a combining mark (U+0301, an emoji skin-tone modifier, …) or preceded by a
    // prepended mark is one cluster that is not "/": to a `Character` check `../\u{301}x` is one
    // harmless component, to the kernel it is `..` then `\u{301}x`. The helpers below are the one
    // place that splits, joins and compares paths; `ValidationPathTests` holds the class.

    static let slash = UInt8(ascii: "/")
    static let backslash = UInt8(ascii: "\\")
    static let dot = UInt8(ascii: ".")

    /// The components of `path` split on the byte `/` (and on `\` too when `backslash` is set).
    /// - Parameter omittingEmpty: drop empty components (`a//b`, a leading or trailing `/`).
    public static func pathComponents(_ path: some StringProtocol, backslash splitsOnBackslash: Bool = false, omittingEmpty: Bool = true) -> [String] {
        let s = String(path)
        let u = s.utf8
        var out: [String] = []
        var start = u.startIndex
        var i = u.startIndex
        while i != u.endIndex {
            let b = u[i]
            if b == slash || (splitsOnBackslash && b == backslash) {
                if !(omittingEmpty && start == i) { out.append(String(decoding: u[start..<i], as: UTF8.self)) }
                start = u.index(after: i)
            }
            i = u.index(after: i)
        }
        if !(omittingEmpty && start == u.endIndex) { out.append(String(decoding: u[start..<u.endIndex], as: UTF8.self)) }
        return out
    }

    /// Whether a component is exactly `.` (byte for byte).
    public static func isDot(_ c: some StringProtocol) -> Bool { c.utf8.count == 1 && c.utf8.first == dot }

    /// Whether a component is exactly `..` (byte for byte): the only spelling the kernel walks up.
    public static func isDotDot(_ c: some StringProtocol) -> Bool { c.utf8.count == 2 && c.utf8.allSatisfy { $0 == dot } }

    /// A component a file or key may be named by as it is: not empty, not `.` or `..`, no `/` byte,
    /// no NUL or control character. The last gate before a path meets a file system or a bucket.
    public static func isPlainPathComponent(_ c: some StringProtocol) -> Bool {
        !c.isEmpty && !isDot(c) && !isDotDot(c) && !c.utf8.contains(slash) && !hasControlCharacter(c)
    }

    /// Whether `s` starts with the byte `/`.
    public static func startsWithSlash(_ s: some StringProtocol) -> Bool { s.utf8.first == slash }

    /// The index of the first `/` byte in `s` (a valid `String.Index` of `s`), if any.
    public static func firstSlash<S: StringProtocol>(in s: S) -> S.Index? { s.utf8.firstIndex(of: slash) }

    /// `s` without its leading and/or trailing `/` bytes.
    public static func trimmingSlashes(_ s: some StringProtocol, leading: Bool = true, trailing: Bool = true) -> String {
        let whole = String(s)
        var u = whole.utf8[...]
        if leading { u = u.drop { $0 == slash } }
        if trailing { while u.last == slash { u = u.dropLast() } }
        return String(decoding: u, as: UTF8.self)
    }

    /// What follows `prefix` in `s`, compared byte for byte; nil when `s` does not start with it.
    public static func dropPrefix(_ prefix: some StringProtocol, from s: some StringProtocol) -> String? {
        guard s.utf8.starts(with: prefix.utf8) else { return nil }
        return String(decoding: s.utf8.dropFirst(prefix.utf8.count), as: UTF8.self)
    }

    /// `path` relative to `root` when it is `root` itself or below it, compared byte for byte (both
    /// already normalised, absolute): "" for the root, `a/b` for `root/a/b`, nil for anything else
    /// (`/rootx`, or a path that only looks the same once Unicode is normalised).
    public static func relativePath(_ path: String, under root: String) -> String? {
        let p = path.utf8, r = root.utf8
        guard p.starts(with: r) else { return nil }
        let rest = p.dropFirst(r.count)
        if rest.isEmpty { return "" }
        if r.last == slash { return String(decoding: rest, as: UTF8.self) }
        guard rest.first == slash else { return nil }
        return String(decoding: rest.dropFirst(), as: UTF8.self)
    }

    /// Python's `posixpath.normpath`, on bytes (see above).
    public static func normpath(_ path: String) -> String {
        if path.isEmpty { return "." }
        let u = path.utf8
        let initialSlashes = u.starts(with: [slash, slash]) && !u.starts(with: [slash, slash, slash]) ? 2 : (u.first == slash ? 1 : 0)
        var out: [String] = []
        for comp in pathComponents(path) {
            if isDot(comp) { continue }
            if isDotDot(comp) {
                if initialSlashes == 0 && (out.isEmpty || isDotDot(out[out.count - 1])) {
                    out.append(comp)
                } else if !out.isEmpty {
                    out.removeLast()
                }
                continue
            }
            out.append(comp)
        }
        let joined = String(repeating: "/", count: initialSlashes) + out.joined(separator: "/")
        return joined.isEmpty ? "." : joined
    }

    /// Validates a metric, param or tag key: characters, path-normal form and length.
    /// - Parameters:
    ///   - key: the key as sent.
    ///   - lengthLabel: how the length error names the field (`Param key`, `Metric name`, `Tag key`).
    public static func validateKey(_ key: String, lengthLabel: String, maxLength: Int = maxEntityKeyLength) throws {
        for c in key where !(isWord(c) || c == "/" || c == "." || c == "-" || c == " " || c == ":") {
            throw RepriseError.invalid(
                "Invalid value \(JSONValue.string(key).jsonString) for parameter 'key' supplied: Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."
            )
        }
        let norm = normpath(key)
        if norm != key || norm == "." || norm.hasPrefix("..") || norm.hasPrefix("/") {
            throw RepriseError.invalid(
                "Invalid value \(JSONValue.string(key).jsonString) for parameter 'key' supplied: Names may be treated as files in certain cases, and must not resolve to other names when treated as such. This name would resolve to '\(norm)'"
            )
        }
        if key.count > maxLength {
            throw RepriseError.invalid("'\(lengthLabel)' exceeds the maximum length of \(maxLength) characters")
        }
    }

    /// Truncates a value the way the reference does with `MLFLOW_TRUNCATE_LONG_VALUES` on (its default).
    public static func truncated(_ value: String, max: Int) -> String {
        value.count > max ? String(value.prefix(max)) : value
    }

    /// Whether `s` holds a C0 control character (NUL, newline, tab, escape…) or DEL.
    public static func hasControlCharacter(_ s: some StringProtocol) -> Bool {
        s.utf8.contains { $0 < 0x20 || $0 == 0x7F }
    }

    /// The one rule for names, paths and URIs: no NUL and no control characters, since a NUL cuts a
    /// path short in the C library and a newline forges log lines and headers. URIs are checked both
    /// as sent and percent-decoded (`file:///etc%00`).
    /// - Parameters:
    ///   - value: the value as sent.
    ///   - field: the field name the error message names.
    ///   - isURI: also check the percent-decoded form.
    public static func rejectControlCharacters(_ value: String, field: String, isURI: Bool = false) throws {
        var bad = hasControlCharacter(value)
        if !bad && isURI && value.utf8.contains(UInt8(ascii: "%")) {
            if let decoded = percentDecode(value) { bad = hasControlCharacter(decoded) } else { bad = true }
        }
        if bad {
            throw RepriseError.invalid(
                "Invalid value for parameter '\(field)': it contains a NUL or control character (or a malformed %-escape). Remove it and try again.")
        }
    }

    /// Longest artifact path accepted, in UTF-8 bytes, and longest single component: what Linux file
    /// systems take (NAME_MAX), so a long path is a 400 here rather than an I/O failure later.
    public static let maxArtifactPathBytes = 1024
    public static let maxArtifactComponentBytes = 255

    public static func validateExperimentName(_ name: String?) throws -> String {
        guard let name, !name.isEmpty else { throw RepriseError.missing("name") }
        try rejectControlCharacters(name, field: "name")
        if name.count > maxExperimentNameLength {
            throw RepriseError.invalid("'name' exceeds the maximum length of \(maxExperimentNameLength) characters")
        }
        return name
    }

    /// Experiment ids are integers rendered as strings.
    public static func validateExperimentID(_ id: String) throws -> Int64 {
        guard let v = Int64(id) else {
            throw RepriseError.invalid("Invalid experiment ID '\(id)'. Experiment ID must be a valid integer.")
        }
        return v
    }

    /// `^[a-zA-Z0-9][\w\-]{0,255}$`
    public static func validateRunID(_ id: String) throws {
        var ok = !id.isEmpty && id.count <= 256
        if ok, let first = id.first {
            ok = first.isASCII && (first.isLetter || first.isNumber)
            ok = ok && id.dropFirst().allSatisfy { isWord($0) || $0 == "-" }
        }
        if !ok {
            throw RepriseError.invalid("Invalid run ID: '\(id)'")
        }
    }

    public static func validateLoggedModelName(_ name: String) throws {
        try rejectControlCharacters(name, field: "name")
        if name.isEmpty || name.unicodeScalars.contains(where: { "/:.%\"'".unicodeScalars.contains($0) }) {
            throw RepriseError.invalid(
                "Invalid model name ('\(name)') provided. Model name must be a non-empty string and cannot contain the following prohibited characters: '/', ':', '.', '%', '\"', \"'\"."
            )
        }
    }

    /// Splits and checks a relative artifact path: not absolute, no `..` segment, no `#`, no backslash,
    /// no NUL. The caller passes the percent-decoded path.
    /// - Returns: the non-empty, non-`.` path components.
    public static func artifactPathComponents(_ path: String) throws -> [String] {
        let invalid = RepriseError.invalid("Invalid path")
        let u = path.utf8
        if u.first == slash || u.contains(backslash) || u.contains(UInt8(ascii: "#")) || hasControlCharacter(path) {
            throw invalid
        }
        if u.count > maxArtifactPathBytes {
            throw RepriseError.invalid("Invalid path: artifact paths are limited to \(maxArtifactPathBytes) bytes.")
        }
        // A Windows drive prefix such as C: is absolute too (scalars, not characters: `C:\u{301}`).
        var scalars = path.unicodeScalars.makeIterator()
        if let first = scalars.next(), first.properties.isAlphabetic, scalars.next() == ":" { throw invalid }
        var comps: [String] = []
        for c in pathComponents(path) {
            if isDotDot(c) { throw invalid }
            if isDot(c) { continue }
            if c.utf8.count > maxArtifactComponentBytes {
                throw RepriseError.invalid(
                    "Invalid path: each artifact path component is limited to \(maxArtifactComponentBytes) bytes.")
            }
            comps.append(c)
        }
        return comps
    }

    /// Percent-decodes a URL path or query component. Returns `nil` for malformed escapes.
    public static func percentDecode(_ s: some StringProtocol, plusAsSpace: Bool = false) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(s.utf8.count)
        var it = Array(s.utf8)[...]
        while let c = it.popFirst() {
            if c == UInt8(ascii: "%") {
                guard let h = it.popFirst(), let l = it.popFirst(), let hv = hexValue(h), let lv = hexValue(l) else {
                    return nil
                }
                bytes.append(hv << 4 | lv)
            } else if plusAsSpace && c == UInt8(ascii: "+") {
                bytes.append(0x20)
            } else {
                bytes.append(c)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }
}

/// Names for runs created without one: `adjective-animal-NNN`.
public enum RunNames {
    static let adjectives = [
        "amber", "bold", "brisk", "calm", "clever", "crisp", "daring", "eager", "fair", "fleet", "gentle", "glad",
        "grand", "hardy", "honest", "keen", "kind", "lively", "loyal", "lucid", "merry", "nimble", "noble", "patient",
        "polite", "proud", "quick", "quiet", "rapid", "sharp", "shy", "silver", "steady", "sunny", "swift", "tidy",
        "vivid", "warm", "wise", "zesty",
    ]
    static let animals = [
        "badger", "bat", "bear", "bison", "crane", "crow", "deer", "dove", "eagle", "eel", "finch", "fox", "frog",
        "gecko", "goat", "hare", "hawk", "heron", "ibis", "jay", "koala", "lark", "lemur", "lynx", "mole", "moth",
        "newt", "otter", "owl", "panda", "quail", "raven", "seal", "shrew", "snail", "stork", "swan", "toad",
        "trout", "wolf", "wren", "yak",
    ]

    public static func random() -> String {
        "\(adjectives.randomElement()!)-\(animals.randomElement()!)-\(Int.random(in: 0..<1000))"
    }
}
