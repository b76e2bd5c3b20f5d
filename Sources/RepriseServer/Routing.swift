import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import RepriseCore

// How a request reaches its handler:
//
//   SecurityMiddleware      host/origin refusals, security headers, the request log; never throws
//   MountMiddleware         `--static-prefix` and the `/ajax-api/` twin of every `/api/` path
//   OtherMethodsMiddleware  405 for TRACE, CONNECT and other methods no route takes, on paths that exist
//   Router                  Hummingbird's trie router: `{id}` path parameters, `{path...}` for the rest
//     ErrorEnvelopeMiddleware   every failure becomes MLflow's error envelope (or a page for the UI)
//     AccessMiddleware(rule)    per route: authentication, the route's permission, the write context
//     Endpoint                  the handler, given a `Call`
//
// Every route is declared once with `RepriseAPI.route(_:_:access:_:)`, whose `access` has no
// default; the router is built from that table, so the table is exactly what the router serves
// (`RouteAccessTests` compares them).

/// The request context: Hummingbird's storage (path parameters among it) and the `Call` once a
/// permission check has built it (query parsed, JSON body read), so the handler does not build it
/// again.
struct RepriseContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    var call: Call? = nil

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }
}

/// A route's path as declared: `/api/2.0/mlflow/logged-models/{model_id}/tags/{tag_key}`; a last
/// segment `{name...}` takes the rest of the path, slashes included (artifact paths).
struct PathTemplate: Sendable, Hashable {
    /// As the OpenAPI document spells it (`{name}` for a rest-of-path parameter too).
    let documented: String
    /// As Hummingbird's router spells it (`**` for the rest of the path).
    let routerPath: String
    /// The rest-of-path parameter's name, when the template ends in one.
    let rest: String?
    /// What precedes the rest-of-path parameter, with its slash (`/api/2.0/mlflow-artifacts/artifacts/`).
    let restPrefix: String

    init(_ template: String) {
        precondition(template.hasPrefix("/"), "a route path starts with '/': \(template)")
        var rest: String? = nil
        var documented: [Substring] = []
        var router: [Substring] = []
        let segments = Array(template.split(separator: "/", omittingEmptySubsequences: false).dropFirst())
        for (i, segment) in segments.enumerated() {
            if segment.hasPrefix("{") && segment.hasSuffix("...}") {
                precondition(i == segments.count - 1, "a rest-of-path parameter ends the path: \(template)")
                let name = segment.dropFirst().dropLast(4)
                rest = String(name)
                documented.append("{\(name)}")
                router.append("**")
            } else {
                documented.append(segment)
                router.append(segment)
            }
        }
        self.documented = "/" + documented.joined(separator: "/")
        self.routerPath = "/" + router.joined(separator: "/")
        self.rest = rest
        self.restPrefix = rest == nil ? "" : "/" + router.dropLast().map { $0 + "/" }.joined()
    }

    /// The raw rest of `path` after the literal prefix, exactly as sent. Not the router's capture:
    /// the router skips repeated slashes, and `artifacts//tmp/x` names the absolute path `/tmp/x`,
    /// which the handler must see (and refuse). Nil when the path reached the route with its
    /// prefix spelled differently (`/api//2.0/…`): no route serves that.
    func restOfPath(_ path: String) -> String? {
        guard rest != nil else { return nil }
        return Validation.dropPrefix(restPrefix, from: path)
    }
}

/// A route's handler and what it requires of the caller (see `Access`).
struct Route: Sendable {
    let template: PathTemplate
    let access: Access
    let handler: Handler
}

extension RepriseAPI {
    /// The methods a path may be asked for; the ones it lacks answer 405 with `Allow`.
    static let answerableMethods: [HTTPRequest.Method] = [.get, .head, .post, .put, .patch, .delete]

    /// Builds the router from the route table: each route behind its own `AccessMiddleware`, every
    /// path answering OPTIONS (CORS preflight) and 405 for the methods it does not take.
    func makeRouter() -> Router<RepriseContext> {
        let router = Router(context: RepriseContext.self, options: [.autoGenerateHeadEndpoints])
        // Requests and latency by route template and status (swift-metrics; exported with
        // --expose-prometheus). Outermost, so it sees the status the envelope produced.
        if config.metricsExposition != nil { router.add(middleware: MetricsMiddleware<RepriseContext>()) }
        router.add(middleware: ErrorEnvelopeMiddleware(api: self))
        for (_, methods) in routes {
            guard let template = methods.values.first?.template else { continue }
            let path = RouterPath(stringLiteral: template.routerPath)
            for (method, route) in methods {
                router.group()
                    .add(middleware: AccessMiddleware(api: self, access: route.access, template: template))
                    .on(path, method: method, responder: Endpoint(api: self, template: template, handler: route.handler))
            }
            let allowed = Array(methods.keys) + (methods[.get] != nil ? [.head] : [])
            let policy = security
            router.on(path, method: .options, responder: CallbackResponder { request, _ in policy.preflight(request, methods: allowed) })
            let base = config.staticPrefix
            for method in Self.answerableMethods where !allowed.contains(method) {
                router.on(path, method: method, responder: CallbackResponder { request, _ in
                    Self.methodNotAllowed(request, allowed: allowed, base: base)
                })
            }
        }
        return router
    }

    /// The responder the server runs: the front middleware, then the router.
    func makeResponder() -> RepriseResponder {
        RepriseResponder(
            router: makeRouter().buildResponder(),
            front: [
                SecurityMiddleware(policy: security, logger: logger), MountMiddleware(staticPrefix: config.staticPrefix),
                OtherMethodsMiddleware(base: config.staticPrefix),
            ])
    }

    /// 405, naming the methods the path takes: a page for the UI, MLflow's envelope for the API.
    static func methodNotAllowed(_ request: Request, allowed: [HTTPRequest.Method], base: String) -> Response {
        let path = request.uri.path
        let allow = SecurityPolicy.allowList(allowed)
        if path == "/" || path == "/ui" || path.hasPrefix("/ui/") {
            return methodNotAllowed(base, allow: allow)
        }
        var response = error(RepriseError(.badRequest, "Method \(request.method) is not allowed for \(path)."), status: .methodNotAllowed)
        response.headers[.allow] = allow
        return response
    }

    /// The `Call` a handler (or a permission check) reads.
    func call(_ request: Request, _ context: RepriseContext, _ template: PathTemplate) -> Call {
        var call = Call(request: request, path: request.uri.path, query: Self.parseQuery(request.uri.query), maxBody: config.maxJSONBodyBytes)
        call.largeBodies = largeBodies
        call.largeBody = config.limits.largeBodyBytes
        call.parameters = context.parameters
        if template.rest != nil { call.rest = template.restOfPath(request.uri.path) ?? "" }
        return call
    }
}

/// The server's responder: the front middleware in order, then the router. Built once.
struct RepriseResponder: HTTPResponder {
    typealias Context = RepriseContext
    private let chain: @Sendable (Request, RepriseContext) async throws -> Response

    init(router: RouterResponder<RepriseContext>, front: [any RouterMiddleware<RepriseContext>]) {
        var next: @Sendable (Request, RepriseContext) async throws -> Response = { try await router.respond(to: $0, context: $1) }
        for middleware in front.reversed() {
            let inner = next
            next = { try await middleware.handle($0, context: $1, next: inner) }
        }
        chain = next
    }

    func respond(to request: Request, context: RepriseContext) async throws -> Response {
        try await chain(request, context)
    }
}

/// Outermost: refuses requests for other hosts or from foreign origins (DNS rebinding, CSRF),
/// adds the security headers to every response, logs each request at debug level, and answers
/// anything that escapes the layers below with a 500 envelope, so no request goes unanswered.
struct SecurityMiddleware: RouterMiddleware {
    typealias Context = RepriseContext
    let policy: SecurityPolicy
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        var response: Response
        if let refusal = policy.refusal(request) {
            response = RepriseAPI.error(refusal)
        } else {
            do {
                response = try await next(request, context)
            } catch {
                logger.error("internal error", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
                response = RepriseAPI.error(RepriseError(.internalError, "Internal error: \(type(of: error))"))
            }
        }
        policy.decorate(&response, request: request)
        if logger.logLevel <= .debug {
            let elapsed = ContinuousClock.now - start
            logger.debug(
                "request",
                metadata: [
                    "method": "\(request.method)", "path": "\(request.uri.path)", "status": "\(response.status.code)",
                    "ms": "\(Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000)",
                ])
        }
        return response
    }
}

/// Mounts the routes: strips `--static-prefix` (a path outside it is 404) and serves every `/api/`
/// route at `/ajax-api/` too, by rewriting the path before the router sees it.
struct MountMiddleware: RouterMiddleware {
    typealias Context = RepriseContext
    let staticPrefix: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var path = request.uri.path
        var changed = false
        if !staticPrefix.isEmpty {
            guard path == staticPrefix || path.hasPrefix(staticPrefix + "/") else { return RepriseAPI.notFound(path) }
            path = String(path.dropFirst(staticPrefix.count))
            if path.isEmpty { path = "/" }
            changed = true
        }
        if path.hasPrefix("/ajax-api/") {
            path = "/api/" + path.dropFirst("/ajax-api/".count)
            changed = true
        }
        guard changed else { return try await next(request, context) }
        var head = request.head
        if let query = request.uri.query { path += "?" + query }
        head.path = path
        return try await next(Request(head: head, body: request.body), context)
    }
}

/// Methods no route is registered for (TRACE, CONNECT, PROPFIND, …): 405 with `Allow` when the
/// path exists, as for any other method the path does not take, else 404. Whether the path exists
/// is asked of the router itself, with the OPTIONS every path answers, so there is one matcher.
struct OtherMethodsMiddleware: RouterMiddleware {
    typealias Context = RepriseContext
    let base: String
    static let routed: Set<HTTPRequest.Method> = Set(RepriseAPI.answerableMethods + [.options])

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !Self.routed.contains(request.method) else { return try await next(request, context) }
        var head = request.head
        head.method = .options
        head.headerFields = [:]
        let probe = try await next(Request(head: head, body: .init(buffer: ByteBuffer())), context)
        guard let allow = probe.headers[.allow], probe.status != .notFound else { return RepriseAPI.notFound(request.uri.path) }
        let methods = allow.split(separator: ",").compactMap { HTTPRequest.Method(String($0.trimmingCharacters(in: .whitespaces))) }
        return RepriseAPI.methodNotAllowed(request, allowed: methods, base: base)
    }
}

/// Turns every failure below it into a response: MLflow's error envelope with the code's status,
/// 401 (or the login page) for an unauthenticated caller, 403 for a denied one, the envelope's
/// 404 for a path no route serves, and a logged 500 for anything unexpected.
struct ErrorEnvelopeMiddleware: RouterMiddleware {
    typealias Context = RepriseContext
    let api: RepriseAPI

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        do {
            return try await next(request, context)
        } catch let e as RepriseError {
            if e.code.rawValue == "UNAUTHENTICATED" { return api.unauthenticatedResponse(path: path, request: request) }
            if e.code.httpStatus == 500 { api.logger.error("request failed", metadata: ["path": "\(path)", "error": "\(e)"]) }
            return RepriseAPI.error(e)
        } catch is AccessDenied {
            return api.deniedResponse(path: path, principal: nil)
        } catch let e as HTTPError where e.status == .notFound {
            return RepriseAPI.notFound(path)
        } catch {
            api.logger.error("internal error", metadata: ["path": "\(path)", "error": "\(error)"])
            return RepriseAPI.error(RepriseError(.internalError, "Internal error: \(type(of: error))"))
        }
    }
}

/// One route's rule, enforced before its handler: with authentication on, the caller must present
/// valid credentials (else 401) and hold the route's permission on the resource its locator finds
/// (else 403). It then sets who is calling for the handler: the principal and the write context
/// every store write records.
struct AccessMiddleware: RouterMiddleware {
    typealias Context = RepriseContext
    let api: RepriseAPI
    let access: Access
    let template: PathTemplate

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let write: WriteContext
        var principal: Principal? = nil
        if let authenticator = api.authenticator, !RepriseAPI.isOpen(access) {
            guard let p = try await authenticator.authenticate(request) else {
                return api.unauthenticatedResponse(path: request.uri.path, request: request)
            }
            principal = p
            write = try RepriseAPI.writeContext(request, principal: p)
            var call = api.call(request, context, template)
            if RepriseAPI.readsParams(access) { call.preloaded = try await call.params() }
            context.call = call
            if !(try await api.permits(access, call, p)) { return api.deniedResponse(path: request.uri.path, principal: p) }
        } else {
            write = RepriseAPI.writeContext(request)
        }
        let handlerContext = context
        do {
            var response = try await Caller.$principal.withValue(principal) {
                try await WriteContext.$current.withValue(write) { try await next(request, handlerContext) }
            }
            response.headers[.xRequestID] = write.requestID
            return response
        } catch is AccessDenied {
            return api.deniedResponse(path: request.uri.path, principal: principal)
        }
    }
}

/// A route's handler, given the `Call` it reads.
struct Endpoint: HTTPResponder {
    typealias Context = RepriseContext
    let api: RepriseAPI
    let template: PathTemplate
    let handler: Handler

    func respond(to request: Request, context: RepriseContext) async throws -> Response {
        try await handler(context.call ?? api.call(request, context, template))
    }
}
