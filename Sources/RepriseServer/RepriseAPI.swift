import Foundation
import Hummingbird
import Logging
import NIOCore
import RepriseArtifacts
import RepriseCore

/// One incoming call: the request, its query parameters, and its JSON body once read.
struct Call: Sendable {
    let request: Request
    /// The route path after the static prefix, with `/ajax-api/` mapped to `/api/`.
    let path: String
    /// The route's rest-of-path parameter (`{artifact_path...}`), raw, still percent-encoded.
    var rest: String = ""
    /// The path parameters, raw, as the router captured them.
    var parameters = Parameters()
    let query: [String: [String]]
    let maxBody: Int
    /// Admission for bodies over `largeBody` bytes: at most a few are buffered at once.
    var largeBodies: AsyncLimiter? = nil
    var largeBody: Int = .max
    /// The JSON body, once read for a permission check, so the handler does not read it again.
    var preloaded: Params? = nil

    var method: HTTPRequest.Method { request.method }

    /// A `{name}` path parameter, percent-decoded. The router only matches a path with every
    /// parameter present, so an empty or undecodable one is a path no route serves.
    func pathParameter(_ name: String) throws -> String {
        guard let raw = parameters.get(name), let value = Validation.percentDecode(raw), !value.isEmpty else {
            throw RepriseError(.endpointNotFound, "No API endpoint at \(path).")
        }
        return value
    }

    /// The request message: query parameters for GET, the JSON body otherwise.
    func params() async throws -> Params {
        if let preloaded { return preloaded }
        if request.method == .get || request.method == .head { return Params(source: .query(query)) }
        return Params(source: .json(try await jsonBody()))
    }

    func jsonBody(limit: Int? = nil) async throws -> JSONObject {
        // The body can be read once: a permission check may have read it already.
        if let preloaded, case .json(let o) = preloaded.source { return o }
        let limit = limit ?? maxBody
        if let type = request.headers[.contentType], !type.isEmpty,
            !type.lowercased().hasPrefix("application/json")
        {
            throw RepriseError.invalid("Bad Request. Content-Type must be one of ['application/json'].")
        }
        let collected = try await body(limit: limit)
        if collected.readableBytes == 0 { return JSONObject() }
        if request.headers[.contentType] == nil {
            throw RepriseError.invalid("Bad Request. Content-Type header is missing.")
        }
        let bytes = collected.readableBytesView
        var value: JSONValue
        do {
            value = try JSONValue.parse(bytes)
        } catch {
            throw RepriseError.invalid("Malformed JSON in request body: \(error)")
        }
        if case .string(let inner) = value, let decoded = try? JSONValue.parse(inner) {
            value = decoded  // double-encoded JSON
        }
        guard case .object(let o) = value else {
            throw RepriseError.invalid("The request body must be a JSON object, got \(value.pythonTypeName).")
        }
        return o
    }
}

extension Call {
    /// The request body, whole, refused past `limit` bytes (declared or found). A body declared
    /// (or found) larger than `largeBody` waits for one of a few permits before it is buffered, so
    /// many large requests at once cannot take unbounded memory; the ones waiting are not read, so
    /// TCP flow control holds their bytes at the client.
    func body(limit: Int) async throws -> ByteBuffer {
        var permit = false
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }) {
            if declared > limit { throw RepriseError.invalid("Request body is larger than the limit of \(limit) bytes.") }
            if declared > largeBody, let largeBodies {
                try await largeBodies.acquire()
                permit = true
            }
        }
        defer { if permit, let largeBodies { Task { await largeBodies.release() } } }
        var collected = ByteBuffer()
        for try await chunk in request.body {
            if collected.readableBytes + chunk.readableBytes > limit {
                throw RepriseError.invalid("Request body is larger than the limit of \(limit) bytes.")
            }
            if !permit, collected.readableBytes + chunk.readableBytes > largeBody, let largeBodies {
                try await largeBodies.acquire()
                permit = true
            }
            var c = chunk
            collected.writeBuffer(&c)
        }
        return collected
    }
}

typealias Handler = @Sendable (Call) async throws -> Response

/// The REST API: routes MLflow's paths (and their `/ajax-api` twins) to handlers, and turns every
/// failure into MLflow's error envelope.
public final class RepriseAPI: Sendable {
    let store: any TrackingStore
    let registry: any RegistryStore
    let governance: any GovernanceStore
    let webhooks: (any WebhookStore)?
    let repro: (any ReproStore)?
    /// Traces, spans and assessments; nil turns the trace routes' store off (they answer 501).
    let traces: (any TraceStore)?
    /// Evaluation datasets and scorers; the tracking store when it keeps them.
    let evaluation: (any EvaluationStore)?
    /// Deployments and incidents; the tracking store when it keeps them.
    let deployments: (any DeploymentStore)?
    let deliverer: WebhookDeliverer?
    let artifacts: (any ArtifactRepository)?
    let config: ServerConfiguration
    let logger: Logger
    let workingDirectory: String
    /// One repository per configured local artifact root (see `repository(for:)`).
    let localRepositories: [LocalArtifactRepository]
    /// The S3 buckets the server may open (an `s3://` artifacts destination, an `s3://` default
    /// artifact root), chosen once at start-up; `s3://` locations under them resolve to them.
    let s3Repositories: [S3ArtifactRepository]
    /// Host, CORS, frame and cross-site rules.
    let security: SecurityPolicy
    /// Bounds how many large JSON bodies are read at once.
    let largeBodies: AsyncLimiter
    /// Bounds how many completed multipart uploads are read back (hashed) at once.
    let readbacks = AsyncLimiter(permits: 2)
    /// Signs and checks the UI's CSRF tokens.
    let csrfTokens: CSRFTokens
    /// Identity: who may call and what they may do; all nil with authentication off.
    let identities: (any IdentityStore)?
    let authenticator: Authenticator?
    let authorizer: Authorizer?
    /// The route table, by path template: written while `init` registers the routes (and by tests
    /// before they build a router), read when the router is built.
    nonisolated(unsafe) var routes: [String: [HTTPRequest.Method: Route]] = [:]
    /// Which template holds each "METHOD path-as-the-router-sees-it", to refuse a clash in O(1)
    /// (checking every route against every other re-parsed paths ~45,000 times: a third of start-up).
    nonisolated(unsafe) private var routerKeys: [String: String] = [:]

    /// - Parameters:
    ///   - store: the tracking store.
    ///   - registry: the model registry.
    ///   - governance: alias policies, approvals and the audit trail.
    ///   - artifacts: the proxy's artifact repository; nil when artifacts are not served.
    ///   - webhooks: webhook definitions and their outbox; nil turns the webhook routes off.
    ///   - deliverer: sends test deliveries and checks webhook URLs.
    ///   - config: server settings.
    ///   - logger: where request and error logs go.
    ///   - s3Repositories: the S3 locations the server may open besides the proxy (the proxy's own
    ///     repository is included when it is one); `s3://` artifact locations under them are served.
    public init(
        store: any TrackingStore, registry: any RegistryStore, governance: any GovernanceStore, artifacts: (any ArtifactRepository)?,
        webhooks: (any WebhookStore)? = nil, deliverer: WebhookDeliverer? = nil, repro: (any ReproStore)? = nil,
        traces: (any TraceStore)? = nil, config: ServerConfiguration, logger: Logger,
        workingDirectory: String = FileManager.default.currentDirectoryPath, identities: (any IdentityStore)? = nil,
        s3Repositories: [S3ArtifactRepository] = []
    ) {
        self.s3Repositories = s3Repositories
        self.identities = identities
        if config.auth.enabled, let identities {
            authenticator = Authenticator(identities: identities, settings: config.auth, secret: config.secretKey, logger: logger)
            authorizer = Authorizer(
                identities: identities, store: store, traces: traces ?? (store as? any TraceStore), evaluation: store as? any EvaluationStore,
                deployments: store as? any DeploymentStore, settings: config.auth)
        } else {
            authenticator = nil
            authorizer = nil
        }
        self.store = store
        self.registry = registry
        self.governance = governance
        self.webhooks = webhooks
        self.repro = repro
        // The tracking store keeps traces when it can (the SQL stores do).
        self.traces = traces ?? (store as? any TraceStore)
        self.evaluation = store as? any EvaluationStore
        self.deployments = store as? any DeploymentStore
        self.deliverer = deliverer
        self.artifacts = artifacts
        self.config = config
        self.logger = logger
        self.workingDirectory = workingDirectory
        // One repository per root, chosen here once: the proxy's own when it is local, so the same
        // folder is never two repositories. Building one does no I/O.
        self.localRepositories = config.localArtifactRoots.map { root in
            if let proxy = artifacts as? LocalArtifactRepository, proxy.root == LocalArtifactRepository(root: root).root { return proxy }
            return LocalArtifactRepository(root: root)
        }
        self.security = SecurityPolicy(settings: config.security)
        self.largeBodies = AsyncLimiter(permits: config.limits.maxConcurrentLargeBodies)
        self.csrfTokens = CSRFTokens(secret: config.secretKey)
        registerMeta()
        registerExperiments()
        registerRuns()
        registerLoggedModels()
        registerTraces()
        registerEvaluation()
        registerDeployments()
        registerArtifacts()
        registerRegistry()
        registerGovernance()
        registerWebhooks()
        registerRepro()
        registerIdentity()
        registerUI()
    }

    /// Registers a route. `path` is a template (`/runs/{run_id}/note`, `{path...}` for the rest of
    /// the path); `access` is what the route requires once authentication is on, and has no default,
    /// so every route states its rule where it is declared.
    func route(_ method: HTTPRequest.Method, _ path: String, access: Access, _ handler: @escaping Handler) {
        let template = PathTemplate(path)
        // The router ignores trailing and repeated slashes: two templates it cannot tell apart are a
        // programming error, named here rather than deep inside the router.
        let key = "\(method) " + RouterPath(stringLiteral: template.routerPath).description
        if let other = routerKeys[key], other != template.documented {
            preconditionFailure("\(method) \(path) clashes with \(other)")
        }
        routerKeys[key] = template.documented
        routes[template.documented, default: [:]][method] = Route(template: template, access: access, handler: handler)
    }

    /// Every registered route with its rule, for the route-table tests and the docs.
    var routeTable: [(method: HTTPRequest.Method, path: String, access: Access)] {
        var out: [(HTTPRequest.Method, String, Access)] = []
        for (path, routes) in routes { for (m, r) in routes { out.append((m, path, r.access)) } }
        return out.sorted { ($0.1, $0.0.rawValue) < ($1.1, $1.0.rawValue) }
    }

    /// A query string or form body (`application/x-www-form-urlencoded`: one grammar, one parser).
    /// Not Hummingbird's `uri.queryParameters`: that decodes neither keys nor `+` (a space, as the
    /// mlflow client and HTML forms send it), so `filter=metrics.a+%3E+1` would not read `metrics.a > 1`.
    static func parseQuery(_ query: String?) -> [String: [String]] {
        guard let query, !query.isEmpty else { return [:] }
        var out: [String: [String]] = [:]
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = Validation.percentDecode(parts[0], plusAsSpace: true) else { continue }
            let value = parts.count > 1 ? Validation.percentDecode(parts[1], plusAsSpace: true) ?? "" : ""
            out[key, default: []].append(value)
        }
        return out
    }

    static func isOpen(_ access: Access) -> Bool {
        if case .open = access { return true }
        return false
    }

    static func readsParams(_ access: Access) -> Bool {
        switch access {
        case .experiment(_, let l), .registeredModel(_, let l): return l.readsParams
        case .experiments(_, let l): return l.readsParams
        case .open, .authenticated, .admin: return false
        }
    }

    /// MLflow's plain-text 403 for the API; a page saying so for the UI.
    /// The page names who is signed in, so a person can see which account was refused.
    func deniedResponse(path: String, principal: Principal?) -> Response {
        guard path == "/" || path == "/ui" || path.hasPrefix("/ui/") else { return Self.permissionDenied() }
        let base = config.staticPrefix
        let body: HTML = "<h1>Not allowed</h1><p class=\"error\">Your account may not see or change this. Ask an admin or the owner for access.</p><p><a href=\"\(base)/ui/\">Back to experiments</a></p>"
        let page = Caller.$principal.withValue(principal) { HTML.page("Not allowed", base: base, body: body) }
        return Self.htmlResponse(page, status: .forbidden)
    }

    /// 401 for the API; the UI's pages send a browser to the login form instead.
    func unauthenticatedResponse(path: String, request: Request) -> Response {
        if path == "/" || path == "/ui" || path.hasPrefix("/ui/"), request.method == .get {
            // The path the browser asked for: the router saw it without the static prefix.
            var next = config.staticPrefix + request.uri.path
            if let q = request.uri.query, !q.isEmpty { next += "?" + q }
            return Response(status: .seeOther, headers: [.location: config.staticPrefix + "/ui/login?next=" + HTML.q(next)])
        }
        return Self.unauthenticated()
    }

    /// Who is calling: the `X-Reprise-Actor` header, else the user name of HTTP Basic credentials
    /// (what the mlflow client sends when `MLFLOW_TRACKING_USERNAME` is set), else `anonymous`.
    /// Nothing is authenticated yet, so every actor is recorded as claimed (`authenticated: false`).
    /// The password, if any, is never read further or logged.
    static func writeContext(_ request: Request) -> WriteContext {
        var actor = "anonymous"
        if let claimed = request.headers[.xRepriseActor]?.trimmingCharacters(in: [" "]), !claimed.isEmpty {
            actor = String(claimed.prefix(200))
        } else if let auth = request.headers[.authorization], auth.lowercased().hasPrefix("basic "),
            let data = Data(base64Encoded: String(auth.dropFirst(6)).trimmingCharacters(in: [" "])),
            let decoded = String(data: data, encoding: .utf8), let user = decoded.split(separator: ":", maxSplits: 1).first,
            !user.isEmpty, !user.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        {
            actor = String(user.prefix(200))
        }
        let requestID = Self.requestID(request)
        return WriteContext(actor: actor, authenticated: false, requestID: requestID)
    }

    /// The client's `X-Request-ID` when it sends a usable one, else a new id.
    static func requestID(_ request: Request) -> String {
        let given = request.headers[.xRequestID] ?? ""
        return given.isEmpty || given.count > 128 ? RandomID.uuid() : given
    }

    /// Who is calling, with authentication on: the principal. `X-Reprise-Actor` naming someone else
    /// is honoured only for a service account holding the act-as right, and both are recorded.
    static func writeContext(_ request: Request, principal p: Principal) throws -> WriteContext {
        let requestID = Self.requestID(request)
        var context = WriteContext(
            actor: p.username, authenticated: true, requestID: requestID, principalID: "user:\(p.userID)", groups: p.groups,
            method: p.method.rawValue, tokenID: p.tokenID ?? "")
        if let claimed = request.headers[.xRepriseActor]?.trimmingCharacters(in: [" "]), !claimed.isEmpty, claimed != p.username {
            guard p.canActAs else {
                throw RepriseError(
                    .permissionDenied,
                    "X-Reprise-Actor is honoured only for service accounts allowed to act for others; \(p.username) is not one. Drop the header: your writes are recorded under your own name.")
            }
            context.actor = String(claimed.prefix(200))
            context.via = p.username
            // The acting account's identity is the named user's, so it cannot vote twice through
            // two names; groups are the account's own.
            context.principalID = "name:" + context.actor
        }
        return context
    }

    // MARK: - Responses

    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        json(encoded: value.serialized(), status: status)
    }

    /// A body already written as JSON (entities that have a byte encoder: runs).
    static func json(encoded bytes: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// `{"<name>":<value>}` around what `write` writes.
    static func json(wrapping name: StaticString, _ write: (inout [UInt8]) -> Void) -> Response {
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        out.append(UInt8(ascii: "{"))
        JSONValue.writeString(name.description, to: &out)
        out.append(UInt8(ascii: ":"))
        write(&out)
        out.append(UInt8(ascii: "}"))
        return json(encoded: out)
    }

    static let empty = JSONValue.object(JSONObject())

    static func error(_ e: RepriseError, status: HTTPResponse.Status? = nil) -> Response {
        json(e.envelope, status: status ?? HTTPResponse.Status(code: e.code.httpStatus))
    }

    static func notFound(_ path: String) -> Response {
        error(RepriseError(.endpointNotFound, "No API endpoint at \(path). Check the URL and the API version."))
    }

    static func text(_ s: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "text/plain; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: s)))
    }

    // MARK: - Meta routes

    func registerMeta() {
        route(.get, "/health", access: .open) { _ in Self.text("OK") }
        // Readiness: the store answers (a load balancer stops sending requests to a server whose
        // database is unreachable, while /health, liveness, stays OK so it is not restarted).
        route(.get, "/ready", access: .open) { [store, logger] _ in
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await store.checkReady() }
                    group.addTask {
                        try await Task.sleep(for: .seconds(5))
                        throw RepriseError(.temporarilyUnavailable, "The database did not answer within 5 s.")
                    }
                    try await group.next()
                    group.cancelAll()
                }
                return Self.text("OK")
            } catch {
                logger.warning("not ready", metadata: ["error": "\(error)"])
                return Self.text("The database is not reachable.", status: .serviceUnavailable)
            }
        }
        route(.get, "/version", access: .open) { [config] _ in Self.text(config.reportedMLflowVersion) }
        // Prometheus's text format; any authenticated caller (a scraper with a token) when
        // authentication is on.
        route(.get, "/metrics", access: .authenticated) { [config] _ in
            guard let exposition = config.metricsExposition else {
                throw RepriseError.notFound("Metrics are off: start the server with --expose-prometheus to serve them here.")
            }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: exposition())))
        }
        // Multipart uploads: only when the proxy's destination takes them (S3), as the reference
        // reports them for a repository with MultipartUploadMixin. The client then uploads files of
        // at least MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE in presigned parts.
        let multipart = config.serveArtifacts && artifacts is any MultipartUploadRepository
        route(.get, "/api/3.0/mlflow/server-info", access: .open) { [config] _ in
            Self.json([
                "store_type": "SqlStore", "workspaces_enabled": false, "trace_archival_enabled": false,
                "multipart_uploads_enabled": .bool(multipart), "multipart_downloads_enabled": false,
                "presigned_upload_run_id_supported": false, "presigned_upload_model_id_supported": false,
                "serve_artifacts": .bool(config.serveArtifacts), "server": "reprise",
                "features_enabled": ["gateway": false],
            ])
        }
    }
}

/// A counting semaphore for async code: `acquire` waits, first come first served, for a permit,
/// which `release` hands straight to the oldest waiter.
actor AsyncLimiter {
    private var available: Int
    private var waiters: [(id: Int, continuation: CheckedContinuation<Bool, Never>)] = []
    private var nextID = 0

    init(permits: Int) { available = max(1, permits) }

    /// Waits for a permit; gives up with 503 after `timeout` so a flood cannot queue forever.
    func acquire(
        timeout: Duration = .seconds(30), busy: String = "The server is busy reading other large requests; retry shortly."
    ) async throws {
        if available > 0 {
            available -= 1
            return
        }
        let id = nextID
        nextID += 1
        let granted = await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
            waiters.append((id, c))
            // One timer per waiter; it does nothing if the permit came first.
            Task { [weak self] in
                try? await Task.sleep(for: timeout)
                await self?.expire(id)
            }
        }
        if !granted {
            throw RepriseError(.temporarilyUnavailable, busy)
        }
    }

    func release() {
        if waiters.isEmpty {
            available += 1
        } else {
            waiters.removeFirst().continuation.resume(returning: true)  // the permit passes on
        }
    }

    private func expire(_ id: Int) {
        guard let i = waiters.firstIndex(where: { $0.id == id }) else { return }
        waiters.remove(at: i).continuation.resume(returning: false)
    }
}
