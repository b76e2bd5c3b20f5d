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
    /// The MLflow version reported by `/version`: the release whose protocol this server speaks. From
    /// 3.4 on the client sends trace spans over OTLP (`/v1/traces`), which this server stores.
    public var reportedMLflowVersion: String
    /// The only local folders the server opens or writes: the artifacts destination and a local
    /// `--default-artifact-root`. A location a client supplies (an experiment's artifact location, a
    /// version's source) is served only when it resolves under one of these; see `ArtifactRoutes`.
    public var localArtifactRoots: [String]
    /// The browser-facing defences (Host check, CORS, frame options, cross-site writes).
    public var security: SecuritySettings
    /// Connection limits and timeouts against slow or greedy clients.
    public var limits: ConnectionLimits
    /// Server-side secret key material (HMAC for the UI's CSRF tokens). Never sent or logged.
    public var secretKey: [UInt8]
    /// Authentication and authorization (`--app-name basic-auth`); off by default, as in MLflow.
    public var auth: AuthSettings = .init()
    /// TLS certificate and key (PEM files) to serve HTTPS directly (`--ssl-certfile`, `--ssl-keyfile`).
    public var tls: (certificate: String, key: String)? = nil
    /// Prometheus metrics (`--expose-prometheus`): the text exposition of every metric recorded
    /// through swift-metrics; nil leaves `/metrics` answering that metrics are off.
    public var metricsExposition: (@Sendable () -> [UInt8])? = nil

    public init(
        host: String = "127.0.0.1", port: Int = 5000, staticPrefix: String = "", serveArtifacts: Bool = true,
        maxJSONBodyBytes: Int = 32 * 1024 * 1024, maxArtifactBytes: Int64 = 64 * 1024 * 1024 * 1024,
        reportedMLflowVersion: String = "3.17.2", localArtifactRoots: [String] = [], security: SecuritySettings = .init(),
        limits: ConnectionLimits = .init(), secretKey: [UInt8] = Array("reprise-test-key".utf8)
    ) {
        self.host = host
        self.port = port
        self.staticPrefix = staticPrefix
        self.serveArtifacts = serveArtifacts
        self.maxJSONBodyBytes = maxJSONBodyBytes
        self.maxArtifactBytes = maxArtifactBytes
        self.reportedMLflowVersion = reportedMLflowVersion
        self.localArtifactRoots = localArtifactRoots
        self.security = security
        self.limits = limits
        self.secretKey = secretKey
    }

    /// Normalizes a user-supplied prefix to `/p` form (no trailing slash), or empty.
    public static func normalizePrefix(_ p: String) -> String {
        var s = p.trimmingCharacters(in: .init(charactersIn: "/"))
        if s.isEmpty { return "" }
        s = "/" + s
        return s
    }
}

/// `mlflow server`'s security middleware settings (`--allowed-hosts`, `--cors-allowed-origins`,
/// `--x-frame-options`, `--disable-security-middleware`), with MLflow 3.17's defaults.
public struct SecuritySettings: Sendable {
    /// Off with `--disable-security-middleware`: no Host check, no CORS headers, no cross-site check.
    public var enabled: Bool
    /// Host patterns (`name`, `name:port`, `*.example.com`, `*`); empty means localhost and private addresses.
    public var allowedHosts: [String]
    /// Origins allowed by CORS (`*` for any); empty means localhost origins only.
    public var corsAllowedOrigins: [String]
    /// `X-Frame-Options` value (`SAMEORIGIN`, `DENY`); `NONE` sends no header.
    public var xFrameOptions: String

    public init(enabled: Bool = true, allowedHosts: [String] = [], corsAllowedOrigins: [String] = [], xFrameOptions: String = "SAMEORIGIN") {
        self.enabled = enabled
        self.allowedHosts = allowedHosts
        self.corsAllowedOrigins = corsAllowedOrigins
        self.xFrameOptions = xFrameOptions
    }

    /// Splits a comma-separated flag value.
    public static func list(_ flag: String?) -> [String] {
        (flag ?? "").split(separator: ",").map { $0.trimmingCharacters(in: [" "]) }.filter { !$0.isEmpty }
    }
}

/// Bounds on what one client can hold: connections, time to send headers, idle keep-alive time,
/// and how many large request bodies are read at once.
public struct ConnectionLimits: Sendable {
    /// Most connections open at once; further ones are closed on accept.
    public var maxConnections: Int
    /// Seconds a client has to send a complete request head once it started (slow-header defence).
    public var headerTimeoutSeconds: Int64
    /// Seconds an open connection may stay silent: between requests, or in the middle of a body.
    public var idleTimeoutSeconds: Int64
    /// JSON bodies larger than this count as large; at most `maxConcurrentLargeBodies` are read at once.
    public var largeBodyBytes: Int
    public var maxConcurrentLargeBodies: Int

    public init(
        maxConnections: Int = 1024, headerTimeoutSeconds: Int64 = 30, idleTimeoutSeconds: Int64 = 120,
        largeBodyBytes: Int = 1024 * 1024, maxConcurrentLargeBodies: Int = 8
    ) {
        self.maxConnections = maxConnections
        self.headerTimeoutSeconds = headerTimeoutSeconds
        self.idleTimeoutSeconds = idleTimeoutSeconds
        self.largeBodyBytes = largeBodyBytes
        self.maxConcurrentLargeBodies = maxConcurrentLargeBodies
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
