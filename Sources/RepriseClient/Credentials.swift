import Foundation
import RepriseCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// How a client proves who it is, as the mlflow client does: HTTP Basic with a user name and
/// password, or a bearer token (a Reprise access token `rpt_…` or an OIDC JWT).
public enum Credentials: Sendable, Equatable, CustomStringConvertible {
    case basic(username: String, password: String)
    case bearer(token: String)

    /// The `Authorization` header value.
    public var authorization: String {
        switch self {
        case .basic(let username, let password): return "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
        case .bearer(let token): return "Bearer " + token
        }
    }

    /// What was sent, for messages: never the password or the secret.
    public var description: String {
        switch self {
        case .basic(let username, _): return "the password of user '\(username)'"
        case .bearer(let token):
            if let id = Self.tokenID(ofSecret: token) { return "token \(id): expired, revoked or unknown" }
            return "the bearer token"
        }
    }

    /// The user name of Basic credentials.
    public var username: String? {
        if case .basic(let username, _) = self { return username }
        return nil
    }

    /// The public id of a Reprise access token: `rpt_<id>_<secret>` has the id `tok_<id>`.
    public static func tokenID(ofSecret secret: String) -> String? {
        guard secret.hasPrefix("rpt_") else { return nil }
        let rest = secret.dropFirst(4)
        guard let sep = rest.firstIndex(of: "_"), sep != rest.startIndex else { return nil }
        return "tok_" + rest[..<sep]
    }

    /// The credentials the mlflow client would send from these environment variables, and which
    /// variables they came from: Basic when `MLFLOW_TRACKING_USERNAME` and `MLFLOW_TRACKING_PASSWORD`
    /// are both set (and not empty), else a bearer `MLFLOW_TRACKING_TOKEN`, else nil.
    public static func fromEnvironment(_ env: [String: String]) -> (credentials: Credentials, source: String)? {
        if let user = env["MLFLOW_TRACKING_USERNAME"], !user.isEmpty, let password = env["MLFLOW_TRACKING_PASSWORD"], !password.isEmpty {
            return (.basic(username: user, password: password), "MLFLOW_TRACKING_USERNAME/PASSWORD")
        }
        if let token = env["MLFLOW_TRACKING_TOKEN"], !token.isEmpty {
            return (.bearer(token: token), "MLFLOW_TRACKING_TOKEN")
        }
        return nil
    }
}

/// The tokens `reprise login` stored, one per tracking URI, in `credentials.json` under the
/// configuration folder: `$REPRISE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/reprise`, else
/// `~/.config/reprise`. The folder is made 0700 and the file is written 0600, atomically.
public struct CredentialStore: Sendable {
    /// One stored login.
    public struct Entry: Sendable, Equatable {
        /// The token secret (`rpt_…`), sent as `Authorization: Bearer`.
        public var token: String
        public var tokenID: String
        public var username: String
        /// Milliseconds since the epoch; nil when the token never expires.
        public var expiresTime: Int64?
        public var createdTime: Int64

        public init(token: String, tokenID: String, username: String, expiresTime: Int64?, createdTime: Int64) {
            self.token = token
            self.tokenID = tokenID
            self.username = username
            self.expiresTime = expiresTime
            self.createdTime = createdTime
        }

        var json: JSONValue {
            var o = JSONObject([
                ("token", .string(token)), ("token_id", .string(tokenID)), ("username", .string(username)),
                ("created_time", .int(createdTime)),
            ])
            o["expires_time"] = expiresTime.map(JSONValue.int) ?? .null
            return .object(o)
        }

        init?(json: JSONValue) {
            guard let token = json["token"]?.stringValue, !token.isEmpty else { return nil }
            self.token = token
            self.tokenID = json["token_id"]?.stringValue ?? Credentials.tokenID(ofSecret: token) ?? "?"
            self.username = json["username"]?.stringValue ?? "?"
            if case .int(let t)? = json["expires_time"] { expiresTime = t } else { expiresTime = nil }
            if case .int(let t)? = json["created_time"] { createdTime = t } else { createdTime = 0 }
        }
    }

    public struct StoreError: Error, CustomStringConvertible {
        public var description: String
    }

    public let directory: String
    public var file: String { directory + "/credentials.json" }

    public init(directory: String) {
        self.directory = directory
    }

    /// The store at the default place for this environment.
    public init(environment env: [String: String] = ProcessInfo.processInfo.environment) {
        self.init(directory: Self.defaultDirectory(environment: env))
    }

    public static func defaultDirectory(environment env: [String: String]) -> String {
        if let dir = env["REPRISE_CONFIG_DIR"], !dir.isEmpty { return dir }
        if let xdg = env["XDG_CONFIG_HOME"], xdg.hasPrefix("/") { return xdg + "/reprise" }
        let home = env["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + "/.config/reprise"
    }

    /// The key of a tracking URI: without trailing slashes, so `http://h:5000/` and `http://h:5000` match.
    public static func key(_ trackingURI: String) -> String {
        var uri = trackingURI.trimmingCharacters(in: .whitespaces)
        while uri.hasSuffix("/") { uri.removeLast() }
        return uri
    }

    /// Every stored login, by tracking URI; empty when there is no file.
    public func entries() throws -> [(uri: String, entry: Entry)] {
        guard let data = FileManager.default.contents(atPath: file) else { return [] }
        if data.isEmpty { return [] }
        let json: JSONValue
        do {
            json = try JSONValue.parse(Array(data))
        } catch {
            throw StoreError(description: "\(file) is not valid JSON (\(error)); delete it and run `reprise login` again")
        }
        guard case .object(let hosts)? = json["hosts"] else { return [] }
        return hosts.members.compactMap { uri, value in Entry(json: value).map { (uri, $0) } }
    }

    public func entry(for trackingURI: String) throws -> Entry? {
        let key = Self.key(trackingURI)
        return try entries().first { $0.uri == key }?.entry
    }

    /// Whether the file can be read by others than its owner (it holds secrets).
    public func isExposed() -> Bool {
        var st = stat()
        guard stat(file, &st) == 0 else { return false }
        return (st.st_mode & 0o077) != 0
    }

    /// Stores (or replaces) the login for a tracking URI.
    public func save(_ entry: Entry, for trackingURI: String) throws {
        var all = try entries()
        let key = Self.key(trackingURI)
        if let i = all.firstIndex(where: { $0.uri == key }) { all[i].entry = entry } else { all.append((key, entry)) }
        try persist(all)
    }

    /// Removes the login for a tracking URI; returns it, or nil when there was none.
    @discardableResult
    public func remove(for trackingURI: String) throws -> Entry? {
        var all = try entries()
        let key = Self.key(trackingURI)
        guard let i = all.firstIndex(where: { $0.uri == key }) else { return nil }
        let removed = all.remove(at: i).entry
        try persist(all)
        return removed
    }

    func persist(_ all: [(uri: String, entry: Entry)]) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw StoreError(description: "cannot create \(directory): \(error)")
        }
        _ = chmod(directory, 0o700)
        let document: JSONValue = [
            "hosts": .object(JSONObject(all.map { ($0.uri, $0.entry.json) }))
        ]
        let bytes = document.serialized() + Array("\n".utf8)
        let temp = directory + "/.credentials.json.\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw StoreError(description: "cannot write \(temp): \(String(cString: strerror(errno)))") }
        var ok = fchmod(fd, 0o600) == 0
        ok = ok && bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += n
            }
            return true
        }
        ok = ok && fsync(fd) == 0
        let failure = String(cString: strerror(errno))
        close(fd)
        guard ok, rename(temp, file) == 0 else {
            unlink(temp)
            throw StoreError(description: "cannot write \(file): \(failure)")
        }
    }
}
