import RepriseCore

/// How a Reprise server is set up; mirrors `mlflow server`'s flags.
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// A prefix for every route, such as `/mlflow` (`--static-prefix`).
    public var staticPrefix: String
    /// Whether the `mlflow-artifacts` proxy routes are served (`--serve-artifacts`).
    public var serveArtifacts: Bool
    /// Largest JSON request body accepted.
    public var maxJSONBodyBytes: Int
    /// Largest artifact upload accepted.
    public var maxArtifactBytes: Int64
    /// The MLflow version reported by `/version`. Below 3.4 so the client does not send OTLP spans,
    /// which this server does not store yet.
    public var reportedMLflowVersion: String

    public init(
        host: String = "127.0.0.1", port: Int = 5000, staticPrefix: String = "", serveArtifacts: Bool = true,
        maxJSONBodyBytes: Int = 32 * 1024 * 1024, maxArtifactBytes: Int64 = 64 * 1024 * 1024 * 1024,
        reportedMLflowVersion: String = "3.3.2"
    ) {
        self.host = host
        self.port = port
        self.staticPrefix = staticPrefix
        self.serveArtifacts = serveArtifacts
        self.maxJSONBodyBytes = maxJSONBodyBytes
        self.maxArtifactBytes = maxArtifactBytes
        self.reportedMLflowVersion = reportedMLflowVersion
    }

    /// Normalizes a user-supplied prefix to `/p` form (no trailing slash), or empty.
    public static func normalizePrefix(_ p: String) -> String {
        var s = p.trimmingCharacters(in: .init(charactersIn: "/"))
        if s.isEmpty { return "" }
        s = "/" + s
        return s
    }
}

extension String {
    func trimmingCharacters(in set: Set<Character>) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}

extension Set where Element == Character {
    init(charactersIn s: String) { self.init(Array(s)) }
}
