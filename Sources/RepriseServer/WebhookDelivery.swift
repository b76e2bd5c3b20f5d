import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import NIOPosix
import RepriseCore
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// How webhooks are delivered. The defaults follow MLflow's: https only, no private addresses, a
/// 30 s timeout and 3 retries; each can be changed through MLflow's environment variables.
public struct WebhookSettings: Sendable {
    /// URL schemes a webhook may use (`MLFLOW_WEBHOOK_ALLOWED_SCHEMES`, comma separated).
    public var allowedSchemes: [String]
    /// Whether a webhook may point at loopback, private, link-local or other internal addresses
    /// (`MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS`).
    public var allowPrivateIPs: Bool
    /// Per-attempt timeout in seconds (`MLFLOW_WEBHOOK_REQUEST_TIMEOUT`).
    public var timeoutSeconds: Int64
    /// Retries after the first attempt (`MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES`).
    public var maxRetries: Int
    /// The first retry waits this long; each next one twice as long, up to `maxBackoffMillis`
    /// (`REPRISE_WEBHOOK_RETRY_BASE_MS`).
    public var retryBaseMillis: Int64
    public var maxBackoffMillis: Int64
    /// How often the deliverer looks for due deliveries when idle.
    public var pollMillis: Int64

    public init(
        allowedSchemes: [String] = ["https"], allowPrivateIPs: Bool = false, timeoutSeconds: Int64 = 30, maxRetries: Int = 3,
        retryBaseMillis: Int64 = 1000, maxBackoffMillis: Int64 = 300_000, pollMillis: Int64 = 250
    ) {
        self.allowedSchemes = allowedSchemes
        self.allowPrivateIPs = allowPrivateIPs
        self.timeoutSeconds = timeoutSeconds
        self.maxRetries = maxRetries
        self.retryBaseMillis = retryBaseMillis
        self.maxBackoffMillis = maxBackoffMillis
        self.pollMillis = pollMillis
    }

    /// The settings with MLflow's (and Reprise's) environment variables applied.
    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) -> WebhookSettings {
        var s = WebhookSettings()
        if let v = env["MLFLOW_WEBHOOK_ALLOWED_SCHEMES"] {
            let schemes = v.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
            if !schemes.isEmpty { s.allowedSchemes = schemes }
        }
        if let v = env["MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"] { s.allowPrivateIPs = ["1", "true", "yes"].contains(v.lowercased()) }
        if let v = env["MLFLOW_WEBHOOK_REQUEST_TIMEOUT"], let n = Int64(v), n > 0 { s.timeoutSeconds = n }
        if let v = env["MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES"], let n = Int(v), n >= 0 { s.maxRetries = min(n, 20) }
        if let v = env["REPRISE_WEBHOOK_RETRY_BASE_MS"], let n = Int64(v), n >= 0 { s.retryBaseMillis = n }
        return s
    }

    /// The wait before retry number `retry` (1-based): exponential with ±20 % jitter.
    public func backoffMillis(retry: Int) -> Int64 {
        let exp = retryBaseMillis * (Int64(1) << Int64(min(max(retry - 1, 0), 20)))
        let capped = min(exp, maxBackoffMillis)
        let jitter = Double.random(in: 0.8...1.2)
        return Int64(Double(capped) * jitter)
    }
}

/// Sends webhook requests: checks where they go, signs them, and classifies the outcome.
public final class WebhookDeliverer: Sendable {
    public let settings: WebhookSettings
    let http: HTTPClient
    /// The shared client's settings, reused for clients pinned to one checked address.
    let clientConfiguration: HTTPClient.Configuration
    let logger: Logger

    /// Looks a host up; replaceable in tests.
    let resolver: @Sendable (String) async throws -> (addresses: [[UInt8]], literal: Bool)

    public convenience init(settings: WebhookSettings, logger: Logger) {
        self.init(settings: settings, logger: logger, resolver: { try await WebhookDeliverer.resolve($0) })
    }

    init(settings: WebhookSettings, logger: Logger, resolver: @escaping @Sendable (String) async throws -> (addresses: [[UInt8]], literal: Bool)) {
        self.settings = settings
        self.logger = logger
        self.resolver = resolver
        var config = HTTPClient.Configuration()
        config.redirectConfiguration = .disallow  // a redirect could lead to an internal address
        config.timeout = .init(connect: .seconds(min(settings.timeoutSeconds, 10)), read: .seconds(settings.timeoutSeconds))
        clientConfiguration = config
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
    }

    public func shutdown() async {
        try? await http.shutdown()
    }

    // MARK: - URL checks

    /// Refuses a webhook URL whose scheme is not allowed or that is malformed; a literal internal
    /// address is refused here too (host names are checked again when sending).
    public func validateURL(_ url: String) throws {
        if url.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw RepriseError.invalid("Webhook URL cannot be empty or just whitespace.")
        }
        let scheme = url.firstIndex(of: ":").map { String(url[..<$0]).lowercased() } ?? ""
        guard settings.allowedSchemes.contains(scheme) else {
            throw RepriseError.invalid(
                "Invalid webhook URL scheme: '\(scheme)'. Allowed schemes are: \(settings.allowedSchemes.joined(separator: ", ")).")
        }
        guard let parsed = URLComponents(string: url), let host = parsed.host, !host.isEmpty else {
            throw RepriseError.invalid("Invalid webhook URL '\(url)': it has no host.")
        }
        if !settings.allowPrivateIPs, let literal = Self.literalAddress(host), Self.isInternal(literal) {
            throw RepriseError.invalid(
                "Invalid webhook URL '\(url)': \(host) is a private or internal address. Set MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true on the server to allow it.")
        }
        if !settings.allowPrivateIPs, host.lowercased() == "localhost" || host.lowercased().hasSuffix(".localhost") {
            throw RepriseError.invalid(
                "Invalid webhook URL '\(url)': \(host) is a loopback host. Set MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true on the server to allow it.")
        }
    }

    /// An IP address, as bytes (4 or 16), when `host` is a literal one.
    static func literalAddress(_ host: String) -> [UInt8]? {
        let h = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        var v4 = in_addr()
        if inet_pton(AF_INET, h, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, h, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    /// Whether an address is loopback, private, link-local, carrier-grade NAT, multicast or
    /// unspecified: places a webhook must not reach unless the operator allows it.
    static func isInternal(_ a: [UInt8]) -> Bool {
        if a.count == 4 {
            switch (a[0], a[1]) {
            case (0, _), (10, _), (127, _): return true
            case (169, 254), (192, 168): return true
            case (172, 16...31): return true
            case (100, 64...127): return true
            case (224...255, _): return true
            default: return false
            }
        }
        guard a.count == 16 else { return true }
        if a.allSatisfy({ $0 == 0 }) { return true }  // ::
        if a[0..<15].allSatisfy({ $0 == 0 }) && a[15] == 1 { return true }  // ::1
        if a[0..<10].allSatisfy({ $0 == 0 }) && a[10] == 0xff && a[11] == 0xff { return isInternal(Array(a[12..<16])) }  // v4-mapped
        if a[0] & 0xfe == 0xfc { return true }  // fc00::/7
        if a[0] == 0xfe && a[1] & 0xc0 == 0x80 { return true }  // fe80::/10
        if a[0] == 0xff { return true }  // multicast
        return false
    }

    /// An address as text (`10.0.0.1`, `fd00::1`), as a DNS override takes it.
    static func format(_ a: [UInt8]) -> String {
        var bytes = a
        var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = a.count == 4 ? AF_INET : AF_INET6
        guard inet_ntop(family, &bytes, &out, socklen_t(out.count)) != nil else { return "" }
        return String(cString: out)
    }

    /// Every address `host` resolves to (a literal resolves to itself), and whether it was a literal.
    static func resolve(_ host: String) async throws -> (addresses: [[UInt8]], literal: Bool) {
        if let literal = literalAddress(host) { return ([literal], true) }
        let found = try await NIOThreadPool.singleton.runIfActive { () -> [[UInt8]] in
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var result: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result else { return [] }
            defer { freeaddrinfo(first) }
            var all: [[UInt8]] = []
            var p: UnsafeMutablePointer<addrinfo>? = first
            while let ai = p {
                if let sa = ai.pointee.ai_addr {
                    if ai.pointee.ai_family == AF_INET {
                        sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                            var addr = sin.pointee.sin_addr
                            all.append(withUnsafeBytes(of: &addr) { Array($0) })
                        }
                    } else if ai.pointee.ai_family == AF_INET6 {
                        sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin in
                            var addr = sin.pointee.sin6_addr
                            all.append(withUnsafeBytes(of: &addr) { Array($0) })
                        }
                    }
                }
                p = ai.pointee.ai_next
            }
            return all
        }
        return (found, false)
    }

    // MARK: - Sending

    /// `v1,<base64 HMAC-SHA256>` over `<delivery id>.<timestamp>.<body>`.
    public static func signature(secret: String, deliveryID: String, timestamp: Int64, body: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(
            for: WebhookSignature.signedContent(deliveryID: deliveryID, timestamp: timestamp, body: body),
            using: SymmetricKey(data: Array(secret.utf8)))
        return WebhookSignature.prefix + Data(mac).base64EncodedString()
    }

    public struct Attempt: Sendable {
        public var status: Int?
        public var body: String?
        public var error: String?
        public var succeeded: Bool { status.map { (200..<300).contains($0) } ?? false }
        /// Worth trying again: no answer, a timeout, throttling or a server error.
        public var retryable: Bool {
            guard let status else { return true }
            return status == 408 || status == 425 || status == 429 || status >= 500
        }
    }

    /// How a delivery connects: refused, through a client pinned to the checked address, or
    /// through the shared client (private addresses allowed, or a literal address).
    enum Target: Sendable, Equatable {
        case refused(String)
        case pinned(HTTPClient.Configuration)
        case shared

        static func == (a: Target, b: Target) -> Bool {
            switch (a, b) {
            case (.refused(let x), .refused(let y)): return x == y
            case (.pinned(let x), .pinned(let y)): return x.dnsOverride == y.dnsOverride
            case (.shared, .shared): return true
            default: return false
            }
        }
    }

    /// Resolves the URL's host once, refuses internal addresses, and pins the connection to the
    /// address that passed the check.
    func pinnedConfiguration(url: String) async -> Target {
        guard !settings.allowPrivateIPs else { return .shared }
        let host = URLComponents(string: url)?.host ?? ""
        do {
            let (addresses, literal) = try await resolver(host)
            guard let first = addresses.first else { return .refused("could not resolve \(host)") }
            if let bad = addresses.first(where: { Self.isInternal($0) }) {
                return .refused(
                    "refused: \(host) resolves to the internal address \(Self.format(bad)); set MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true to allow it")
            }
            if literal { return .shared }
            var config = clientConfiguration
            config.dnsOverride = [host: Self.format(first)]
            return .pinned(config)
        } catch {
            return .refused("could not resolve \(host): \(error)")
        }
    }

    /// One POST of `body` to `url`, signed when there is a secret. Never throws: failures are in the result.
    public func send(url: String, secret: String?, deliveryID: String, timestamp: Int64, body: String) async -> Attempt {
        // The address is checked once and then connected to, never looked up again: a name that
        // resolves to a public address for the check and to an internal one for the connection
        // (DNS rebinding) would otherwise slip through. The client is pinned with a DNS override
        // for this one delivery, so the Host header and TLS (SNI, certificate name) keep the name.
        var pinned: HTTPClient?
        switch await pinnedConfiguration(url: url) {
        case .refused(let reason): return Attempt(status: nil, body: nil, error: reason)
        case .pinned(let config): pinned = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
        case .shared: break
        }
        let client = pinned ?? http
        defer { if let pinned { Task { try? await pinned.shutdown() } } }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "reprise-webhooks/\(RepriseVersion.string)")
        request.headers.add(name: "X-MLflow-Delivery-Id", value: deliveryID)
        request.headers.add(name: "X-MLflow-Timestamp", value: String(timestamp))
        if let secret, !secret.isEmpty {
            request.headers.add(
                name: "X-MLflow-Signature", value: Self.signature(secret: secret, deliveryID: deliveryID, timestamp: timestamp, body: body))
        }
        request.body = .bytes(ByteBuffer(string: body))
        do {
            let response = try await client.execute(request, timeout: .seconds(settings.timeoutSeconds))
            let bytes = try await response.body.collect(upTo: 1024 * 1024)
            var text = String(buffer: bytes)
            if text.utf8.count > 4096 { text = String(text.prefix(4096)) }
            return Attempt(status: Int(response.status.code), body: text, error: nil)
        } catch {
            return Attempt(status: nil, body: nil, error: "\(error)")
        }
    }
}

/// Drains the webhook outbox: leases due deliveries, sends them concurrently, and records each
/// outcome (delivered, retry later with back-off, or failed). Runs beside the HTTP server, so a
/// slow or dead receiver never delays the request that caused the event.
public struct WebhookDispatcher: Service {
    let store: any WebhookStore
    let deliverer: WebhookDeliverer
    let logger: Logger
    let maxInFlight = 16
    /// Whether to publish the outbox's backlog as a metric (with --expose-prometheus).
    let recordsBacklog: Bool

    public init(store: any WebhookStore, deliverer: WebhookDeliverer, logger: Logger, recordsBacklog: Bool = false) {
        self.store = store
        self.deliverer = deliverer
        self.logger = logger
        self.recordsBacklog = recordsBacklog
    }

    /// Deliveries waiting (due or retrying), refreshed every few seconds when metrics are on.
    static let backlog = Gauge(label: "reprise_webhook_backlog")

    enum Wake: Sendable {
        case tick
        case delivered
    }

    /// Keeps up to `maxInFlight` deliveries going at once; a receiver that hangs holds one slot until
    /// its timeout, never the others.
    public func run() async throws {
        let settings = deliverer.settings
        let lease = (settings.timeoutSeconds + 30) * 1000
        let maxInFlight = self.maxInFlight
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Wake.self) { group in
                var inFlight = 0
                var lastPrune = ContinuousClock.now - .seconds(3600)
                var lastBacklog = ContinuousClock.now - .seconds(3600)
                group.addTask { Wake.tick }
                while !Task.isCancelled, let wake = await group.next() {
                    switch wake {
                    case .delivered:
                        inFlight -= 1
                    case .tick:
                        group.addTask {
                            try? await Task.sleep(for: .milliseconds(settings.pollMillis))
                            return .tick
                        }
                    }
                    if inFlight < maxInFlight {
                        do {
                            let claimed = try await store.claimDeliveries(limit: maxInFlight - inFlight, leaseMillis: lease)
                            for c in claimed {
                                inFlight += 1
                                group.addTask {
                                    await deliver(c)
                                    return .delivered
                                }
                            }
                        } catch where error is CancellationError || Task.isCancelled {
                            // Shutting down: the read was cancelled, nothing failed.
                        } catch {
                            logger.warning("Webhook outbox read failed; retrying", metadata: ["error": "\(error)"])
                        }
                    }
                    if recordsBacklog, ContinuousClock.now - lastBacklog > .seconds(5) {
                        lastBacklog = ContinuousClock.now
                        if let n = try? await store.pendingDeliveryCount() { Self.backlog.record(n) }
                    }
                    if ContinuousClock.now - lastPrune > .seconds(3600) {
                        lastPrune = ContinuousClock.now
                        try? await store.pruneDeliveries(olderThanMillis: 7 * 24 * 3600 * 1000)
                    }
                }
                group.cancelAll()
            }
        }
        await deliverer.shutdown()
    }

    func deliver(_ c: ClaimedDelivery) async {
        let d = c.delivery
        let attempt = await deliverer.send(url: c.url, secret: c.secret, deliveryID: d.id, timestamp: d.timestamp, body: d.payload)
        let outcome: DeliveryOutcome
        let tried = d.attempts + 1
        let problem = attempt.error ?? "the receiver answered HTTP \(attempt.status ?? 0)"
        if attempt.succeeded {
            outcome = .delivered(status: attempt.status ?? 200)
        } else if attempt.retryable && tried <= deliverer.settings.maxRetries {
            let wait = deliverer.settings.backoffMillis(retry: tried)
            outcome = .retry(status: attempt.status, error: problem, nextAttemptTime: Self.nowMillis() + wait)
            logger.info(
                "Webhook delivery will be retried",
                metadata: ["delivery": "\(d.id)", "webhook": "\(d.webhookID)", "attempt": "\(tried)", "in_ms": "\(wait)", "problem": "\(problem)"])
        } else {
            outcome = .failed(status: attempt.status, error: problem)
            logger.warning(
                "Webhook delivery failed", metadata: ["delivery": "\(d.id)", "webhook": "\(d.webhookID)", "attempts": "\(tried)", "problem": "\(problem)"])
        }
        do {
            try await store.finishDelivery(id: d.id, outcome: outcome)
        } catch {
            logger.warning("Could not record a webhook delivery's outcome", metadata: ["delivery": "\(d.id)", "error": "\(error)"])
        }
    }

    static func nowMillis() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }
}
