import Foundation
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import RepriseCore

/// What a route requires of its caller when authentication is on. Every route declares one when it
/// is registered (`RepriseAPI.route(_:_:access:_:)` has no default), so no route is open by
/// omission; `RouteAccessTests` reads the table and fails on any route without a known rule.
enum Access: Sendable {
    /// No credentials needed (`/health`, `/version`, the UI's static files and login page).
    case open
    /// Any authenticated caller; the handler scopes what it returns to them (searches filter,
    /// `users/current` answers for the caller).
    case authenticated
    /// Admins only.
    case admin
    /// A capability on the experiment the locator finds (runs, logged models and artifacts
    /// inherit their experiment's permission).
    case experiment(Capability, Locator)
    /// A capability on every experiment the locator lists (`runs/search` and bulk metric reads).
    case experiments(Capability, ListLocator)
    /// A capability on the registered model the locator names.
    case registeredModel(Capability, Locator)

    /// A one-line description, for the route table test and the docs.
    var summary: String {
        switch self {
        case .open: return "open"
        case .authenticated: return "authenticated"
        case .admin: return "admin"
        case .experiment(let c, let l): return "\(c.rawValue) on experiment (\(l.name))"
        case .experiments(let c, let l): return "\(c.rawValue) on experiments (\(l.name))"
        case .registeredModel(let c, let l): return "\(c.rawValue) on registered model (\(l.name))"
        }
    }
}

/// Finds the resource a request is about: an experiment id or a registered model name. It reads the
/// same fields, with the same readers, as the handler. When it cannot tell (a field absent or
/// unreadable), it answers nil and the request is refused (403), as MLflow refuses non-admins: a
/// check never passes because the locator and the handler read a request differently.
struct Locator: Sendable {
    let name: String
    /// Whether it reads the request message (then the body is read before the check, once).
    var readsParams = true
    let find: @Sendable (Call, Params, Authorizer) async throws -> String?

    /// An experiment id or model name in a field.
    static func field(_ field: String) -> Locator {
        Locator(name: field) { _, p, _ in try p.string(field) }
    }

    /// An experiment id in a field, or `fallback` when the field is absent (as the handler does).
    static func fieldOrDefault(_ field: String, _ fallback: String) -> Locator {
        Locator(name: field) { _, p, _ in try p.string(field) ?? fallback }
    }

    /// The experiment of the run named by `run_id` (or its alias `run_uuid`).
    static let run = Locator(name: "run_id") { _, p, auth in
        guard let id = try? p.runID() else { return nil }  // the handler's own reader
        return try await auth.experimentID(ofRun: id)
    }

    /// The experiment of the logged model in a field.
    static func loggedModel(_ field: String) -> Locator {
        Locator(name: field) { _, p, auth in
            guard let id = try p.string(field), !id.isEmpty else { return nil }
            return try await auth.experimentID(ofLoggedModel: id)
        }
    }

    /// The experiment named in a field.
    static func experimentName(_ field: String) -> Locator {
        Locator(name: field) { _, p, auth in
            guard let name = try p.string(field), !name.isEmpty else { return nil }
            return try await auth.store.getExperiment(name: name).experimentID
        }
    }

    /// The experiment of the run named in another field.
    static func runField(_ field: String) -> Locator {
        Locator(name: field) { _, p, auth in
            guard let id = try p.string(field), !id.isEmpty else { return nil }
            return try await auth.experimentID(ofRun: id)
        }
    }

    /// A resource named by a `{name}` path parameter (an experiment id, a model name).
    static func pathParameter(_ name: String) -> Locator {
        Locator(name: "\(name) (path)", readsParams: false) { call, _, _ in try? call.pathParameter(name) }
    }

    /// The experiment of the run named in the query (`upload-artifact`, whose body is the file).
    static let runInQuery = Locator(name: "run_id (query)", readsParams: false) { call, _, auth in
        guard let id = try? Params(source: .query(call.query)).runID() else { return nil }
        return try await auth.experimentID(ofRun: id)
    }

    /// The experiment of the logged model a `{name}` path parameter names.
    static func pathLoggedModel(_ name: String) -> Locator {
        Locator(name: "\(name) (path)", readsParams: false) { call, _, auth in
            guard let id = try? call.pathParameter(name) else { return nil }
            return try await auth.experimentID(ofLoggedModel: id)
        }
    }

    /// The artifact proxy's experiment (`{artifact_path...}`): the first path segment when it is numeric (artifacts of
    /// experiment N live under `N/`); "" otherwise, which the default permission decides, as MLflow.
    static let artifactPath = Locator(name: "experiment id (artifact path)", readsParams: false) { call, _, _ in
        guard let decoded = Validation.percentDecode(call.rest) else { return nil }
        return Self.experimentPrefix(decoded)
    }

    /// The same for the proxy's list form (`?path=`).
    static let artifactListPath = Locator(name: "experiment id (path query)", readsParams: false) { call, _, _ in
        Self.experimentPrefix(call.query["path"]?.first ?? "")
    }

    /// The experiment whose artifacts a proxy path is under: its first component, after the same
    /// normalisation the handler applies (`./5/x` is `5/x`), when that is a canonical experiment
    /// id; "" for paths outside any experiment; nil for a path the handler would refuse.
    static func experimentPrefix(_ path: String) -> String? {
        guard let components = try? Validation.artifactPathComponents(path) else { return nil }
        guard let first = components.first else { return "" }
        return Authorizer.canonicalExperimentID(first) ?? ""
    }

    /// The experiment of the trace a `{name}` path parameter names.
    static func pathTrace(_ name: String) -> Locator {
        Locator(name: "\(name) (path)", readsParams: false) { call, _, auth in
            guard let id = try? call.pathParameter(name) else { return nil }
            return try await auth.experimentID(ofTrace: id)
        }
    }

    /// The experiment of the trace named in a field (or the query of a GET).
    static func traceField(_ field: String) -> Locator {
        Locator(name: field) { _, p, auth in
            guard let id = try p.string(field), !id.isEmpty else { return nil }
            return try await auth.experimentID(ofTrace: id)
        }
    }

    /// The experiment an evaluation dataset (named by a `{name}` path parameter) is linked to first;
    /// "" for a dataset linked to none, which the default permission decides, as for artifact
    /// paths outside experiments.
    static func pathEvalDataset(_ name: String) -> Locator {
        Locator(name: "\(name) (path)", readsParams: false) { call, _, auth in
            guard let id = try? call.pathParameter(name), let evaluation = auth.evaluation else { return nil }
            return try await evaluation.experimentIDs(ofEvalDataset: id).first ?? ""
        }
    }

    /// The registered model a request's `model` reference (`name@alias`, `name/N`) names.
    static let modelReference = Locator(name: "model") { _, p, _ in
        // A malformed reference is refused by the handler (400) to those who may write the model
        // its text names.
        (try? RepriseAPI.modelReference(p).name) ?? (try? p.string("model"))
    }

    /// The registered model a deployment (named by a `{name}` path parameter) deployed.
    static func pathDeployment(_ name: String) -> Locator {
        Locator(name: "\(name) (path)", readsParams: false) { call, _, auth in
            guard let id = try? call.pathParameter(name), let deployments = auth.deployments else { return nil }
            return try await deployments.getDeployment(id: id).model.name
        }
    }

    /// The registered model of the deployment named in a field.
    static func deploymentField(_ field: String) -> Locator {
        Locator(name: field) { _, p, auth in
            guard let id = try p.string(field), !id.isEmpty, let deployments = auth.deployments else { return nil }
            return try await deployments.getDeployment(id: id).model.name
        }
    }

    /// The registered model of the deployment an incident (a `{name}` path parameter) is about.
    static func pathIncident(_ name: String) -> Locator {
        Locator(name: "\(name) (path)", readsParams: false) { call, _, auth in
            guard let id = try? call.pathParameter(name), let deployments = auth.deployments else { return nil }
            return try await deployments.getDeployment(id: try await deployments.getIncident(id: id).deploymentID).model.name
        }
    }

    /// The experiment an OTLP export names in its `x-mlflow-experiment-id` header.
    static let experimentHeader = Locator(name: "x-mlflow-experiment-id (header)", readsParams: false) { call, _, _ in
        call.request.headers[HTTPField.Name("x-mlflow-experiment-id")!]
    }

    /// The experiment of the run a `{name}` path parameter names.
    static func pathRun(_ name: String) -> Locator {
        Locator(name: "\(name) (path)", readsParams: false) { call, _, auth in
            guard let id = try? call.pathParameter(name) else { return nil }
            return try await auth.experimentID(ofRun: id)
        }
    }
}

/// Lists the experiments a request reads.
struct ListLocator: Sendable {
    let name: String
    var readsParams = true
    let find: @Sendable (Call, Params, Authorizer) async throws -> [String]

    static func experimentIDs(_ field: String) -> ListLocator {
        ListLocator(name: field) { _, p, _ in try p.stringList(field) }
    }

    /// Comma-separated ids in a query parameter (the UI's `?experiments=1,2` and `?runs=a,b`).
    static func commaSeparatedQuery(_ field: String, runs: Bool) -> ListLocator {
        ListLocator(name: field + " (query)", readsParams: false) { call, _, auth in
            let ids = (call.query[field] ?? []).flatMap { $0.split(separator: ",").map(String.init) }.filter { !$0.isEmpty }
            guard runs else { return ids }
            var out: [String] = []
            for id in ids.prefix(50) { out.append(try await auth.experimentID(ofRun: id)) }
            return out
        }
    }

    static func runIDs(_ field: String) -> ListLocator {
        ListLocator(name: field) { _, p, auth in
            var out: [String] = []
            for id in try p.stringList(field) { out.append(try await auth.experimentID(ofRun: id)) }
            return out
        }
    }
}

/// Decides what a principal may do: admins everything; otherwise the grants that match the
/// resource (the user's own and their groups', by id or `*`) fold to one level (`DENY` wins, else
/// the highest), and with no grant the configured default applies.
///
/// Levels and owners are cached briefly (a run never changes experiment; grants change through
/// this server, which clears the cache, or through another one sharing the store, which this
/// server sees within `AuthSettings.cacheSeconds`).
final class Authorizer: Sendable {
    let identities: any IdentityStore
    let store: any TrackingStore
    let traces: (any TraceStore)?
    let evaluation: (any EvaluationStore)?
    let deployments: (any DeploymentStore)?
    let settings: AuthSettings

    /// An experiment id as the store reads it (`05` and `+5` are experiment 5), or nil when it is
    /// not one. Grants and checks use this form, so another spelling of an id names the same
    /// experiment here as in the store.
    static func canonicalExperimentID(_ s: String) -> String? {
        guard !s.isEmpty, s.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 || $0 == 43 || $0 == 45 }), let n = Int64(s) else { return nil }
        return String(n)
    }

    static func canonical(_ resource: String, _ type: ResourceType) -> String {
        type == .experiment ? (canonicalExperimentID(resource) ?? resource) : resource
    }

    /// A principal's grants on one resource type, read once and kept briefly, so a check (or a
    /// search filtering hundreds of rows) is a dictionary lookup rather than a query.
    struct GrantSet: Sendable {
        var type: ResourceType
        var exact: [String: [Permission]] = [:]
        var wildcard: [Permission] = []
        var workspaceManage = false
        var defaultPermission: Permission

        func level(_ raw: String) -> Permission {
            if workspaceManage { return .manage }
            let resource = Authorizer.canonical(raw, type)
            guard let own = exact[resource] else { return Permission.effective(wildcard, default: defaultPermission) }
            return Permission.effective(wildcard + own, default: defaultPermission)
        }
    }

    struct GrantKey: Hashable {
        var userID: Int64
        var roleIDs: [Int64]
        var type: ResourceType
    }

    private let grantSets = NIOLockedValueBox<[GrantKey: (GrantSet, UInt64)]>([:])
    private let runOwners = NIOLockedValueBox<[String: String]>([:])
    private let modelOwners = NIOLockedValueBox<[String: String]>([:])
    private let traceOwners = NIOLockedValueBox<[String: String]>([:])

    init(
        identities: any IdentityStore, store: any TrackingStore, traces: (any TraceStore)? = nil, evaluation: (any EvaluationStore)? = nil,
        deployments: (any DeploymentStore)? = nil, settings: AuthSettings
    ) {
        self.deployments = deployments
        self.identities = identities
        self.store = store
        self.traces = traces
        self.evaluation = evaluation
        self.settings = settings
    }

    func invalidate() { grantSets.withLockedValue { $0.removeAll(keepingCapacity: true) } }

    func grantSet(_ p: Principal, _ type: ResourceType) async throws -> GrantSet {
        let key = GrantKey(userID: p.userID, roleIDs: p.roleIDs, type: type)
        let now = Authenticator.now()
        if let hit = grantSets.withLockedValue({ $0[key] }), hit.1 > now { return hit.0 }
        var set = GrantSet(type: type, defaultPermission: settings.defaultPermission)
        for g in try await identities.grants(ofUser: p.userID, roleIDs: p.roleIDs) {
            if g.resourceType == .workspace {
                if g.permission == .manage { set.workspaceManage = true }
            } else if g.resourceType == type {
                if g.pattern == "*" {
                    set.wildcard.append(g.permission)
                } else {
                    set.exact[Self.canonical(g.pattern, type), default: []].append(g.permission)
                }
            }
        }
        let ttl = UInt64(max(0, settings.cacheSeconds)) * 1_000_000_000
        grantSets.withLockedValue { c in
            if c.count > 10_000 { c.removeAll(keepingCapacity: true) }
            c[key] = (set, now + ttl)
        }
        return set
    }

    func permission(_ p: Principal, _ type: ResourceType, _ resource: String) async throws -> Permission {
        if p.isAdmin { return .manage }
        return try await grantSet(p, type).level(resource)
    }

    func allows(_ p: Principal, _ capability: Capability, _ type: ResourceType, _ resource: String) async throws -> Bool {
        try await permission(p, type, resource).allows(capability)
    }

    private func owner(_ box: NIOLockedValueBox<[String: String]>, _ id: String, _ lookup: () async throws -> String) async throws -> String {
        if let hit = box.withLockedValue({ $0[id] }) { return hit }
        let value = try await lookup()
        box.withLockedValue { c in
            if c.count > 100_000 { c.removeAll(keepingCapacity: true) }
            c[id] = value
        }
        return value
    }

    func experimentID(ofRun id: String) async throws -> String {
        try await owner(runOwners, id) { try await store.experimentID(ofRun: id) }
    }

    func experimentID(ofLoggedModel id: String) async throws -> String {
        try await owner(modelOwners, id) { try await store.experimentID(ofLoggedModel: id) }
    }

    /// The experiment of a run, or nil when no such run exists (a version or logged model may name
    /// a run that does not exist, as in MLflow 3.17; there is then nothing of it to read).
    func existingExperimentID(ofRun id: String) async throws -> String? {
        do {
            return try await experimentID(ofRun: id)
        } catch let e as RepriseError where e.code == .resourceDoesNotExist {
            return nil
        }
    }

    func experimentID(ofTrace id: String) async throws -> String {
        guard let traces else { throw RepriseError.notFound("Trace with ID \(id) is not found.") }
        return try await owner(traceOwners, id) { try await traces.experimentID(ofTrace: id) }
    }
}

/// The caller of the request being handled, when authentication is on.
enum Caller {
    @TaskLocal static var principal: Principal?
}

extension RepriseAPI {
    /// MLflow's answer to a denied request: 403, plain text.
    static func permissionDenied() -> Response {
        Response(
            status: .forbidden, headers: [.contentType: "text/plain; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: "Permission denied")))
    }

    /// MLflow's answer to missing or bad credentials: 401, plain text, with a Basic challenge.
    static func unauthenticated() -> Response {
        Response(
            status: .unauthorized,
            headers: [.contentType: "text/plain; charset=utf-8", .wwwAuthenticate: "Basic realm=\"mlflow\""],
            body: ResponseBody(byteBuffer: ByteBuffer(string: Authenticator.unauthenticatedMessage)))
    }

    /// Whether `principal` may do what `access` requires for this call. Throws for a resource that
    /// does not exist (404), as the handler would.
    func permits(_ access: Access, _ call: Call, _ principal: Principal) async throws -> Bool {
        guard let authorizer, !principal.isAdmin else { return true }  // admins may do everything
        switch access {
        case .open, .authenticated: return true
        case .admin: return false
        case .experiment(let capability, let locator):
            guard let id = try await locator.find(call, try await Self.checkParams(call, locator.readsParams), authorizer) else { return false }
            // No experiment in sight (an artifact path outside any experiment): the default decides.
            if id.isEmpty { return authorizer.settings.defaultPermission.allows(capability) }
            return try await authorizer.allows(principal, capability, .experiment, id)
        case .experiments(let capability, let locator):
            for id in Set(try await locator.find(call, try await Self.checkParams(call, locator.readsParams), authorizer))
            where !(try await authorizer.allows(principal, capability, .experiment, id)) {
                return false
            }
            return true
        case .registeredModel(let capability, let locator):
            guard let name = try await locator.find(call, try await Self.checkParams(call, locator.readsParams), authorizer) else { return false }
            return try await authorizer.allows(principal, capability, .registeredModel, name)
        }
    }

    static func checkParams(_ call: Call, _ reads: Bool) async throws -> Params {
        reads ? try await call.params() : Params(source: .query([:]))
    }

    /// For handlers: whether the current caller may `capability` the experiment (always true with
    /// authentication off).
    func callerMay(_ capability: Capability, experiment id: String) async throws -> Bool {
        guard let authorizer, let p = Caller.principal else { return true }
        return try await authorizer.allows(p, capability, .experiment, id)
    }

    func callerMay(_ capability: Capability, registeredModel name: String) async throws -> Bool {
        guard let authorizer, let p = Caller.principal else { return true }
        return try await authorizer.allows(p, capability, .registeredModel, name)
    }

    /// Refuses (403) unless the caller may `capability` the experiments of these logged models (a
    /// metric, input or output that names a model changes that model too).
    func requireCaller<S: Sequence>(_ capability: Capability, loggedModels ids: S) async throws where S.Element == String {
        guard let authorizer, let p = Caller.principal, !p.isAdmin else { return }
        for id in Set(ids) {
            try await requireCaller(capability, experiment: try await authorizer.experimentID(ofLoggedModel: id))
        }
    }

    /// Refuses (403) unless the caller may read what a model version is registered from: its run,
    /// its logged model, or the experiment whose artifacts its source names (as MLflow does before
    /// letting anyone point a version, and its download URL, at files).
    func requireReadableSource(source: String, runID: String?, modelID: String?) async throws {
        guard let authorizer, let p = Caller.principal, !p.isAdmin else { return }
        if let runID, !runID.isEmpty, let e = try await authorizer.existingExperimentID(ofRun: runID) { try await requireCaller(.read, experiment: e) }
        if let modelID, !modelID.isEmpty { try await requireCaller(.read, loggedModels: [modelID]) }
        if source.hasPrefix("runs:/") {
            let id = Validation.pathComponents(source.dropFirst("runs:/".count)).first ?? ""
            if let e = try await authorizer.existingExperimentID(ofRun: id) { try await requireCaller(.read, experiment: e) }
        } else if source.hasPrefix("models:/m-") {
            let id = Validation.pathComponents(source.dropFirst("models:/".count)).first ?? ""
            try await requireCaller(.read, loggedModels: [id])
        } else if let path = ArtifactURI.proxyPath(source) {
            try await requireReadableArtifactPath(path)
        } else if !source.contains(":") || source.hasPrefix("file:") {
            // A local path: readable only if it is under an artifact root and the caller may read
            // the experiment it is under there (the default decides paths outside experiments).
            var path = source
            if path.hasPrefix("file://") { path = String(path.dropFirst("file://".count)) } else if path.hasPrefix("file:") { path = String(path.dropFirst("file:".count)) }
            path = Validation.normpath(Validation.startsWithSlash(path) ? path : workingDirectory + "/" + path)
            for root in config.localArtifactRoots {
                if let relative = Validation.relativePath(path, under: Validation.normpath(root)) {
                    try await requireReadableArtifactPath(relative)
                }
            }
        } else if source.hasPrefix("s3://") {
            // The same rule for a bucket this server serves (its S3 destination or default root):
            // the key below the root names the experiment. A key the root's rules refuse is refused.
            for repo in s3Repositories {
                let comps: [String]?
                do { comps = try repo.components(of: source) } catch { throw AccessDenied() }
                if let comps { try await requireReadableArtifactPath(comps.joined(separator: "/")) }
            }
        }
        // Locations outside every root the server serves are never opened by it (see
        // `repository(for:)`), so pointing a version at them reaches nothing through this server.
    }

    /// READ on the experiment an artifact path (relative to a root) is under; the default
    /// permission for paths outside any experiment; refused for paths the store would refuse.
    func requireReadableArtifactPath(_ path: String) async throws {
        let trimmed = Validation.trimmingSlashes(path, trailing: false)
        guard let experiment = Locator.experimentPrefix(trimmed) else { throw AccessDenied() }
        if experiment.isEmpty {
            if !config.auth.defaultPermission.allows(.read) { throw AccessDenied() }
        } else {
            try await requireCaller(.read, experiment: experiment)
        }
    }

    /// Refuses (403) unless the caller may; for checks a handler makes beyond its route's rule.
    func requireCaller(_ capability: Capability, experiment id: String) async throws {
        if !(try await callerMay(capability, experiment: id)) { throw AccessDenied() }
    }

    func requireCaller(_ capability: Capability, registeredModel name: String) async throws {
        if !(try await callerMay(capability, registeredModel: name)) { throw AccessDenied() }
    }

    /// Whether the caller may `capability` each resource of `type`, as one synchronous test built
    /// once per request (for filtering search results); always true with authentication off.
    func callerPredicate(_ capability: Capability, _ type: ResourceType) async throws -> @Sendable (String) -> Bool {
        guard let authorizer, let p = Caller.principal, !p.isAdmin else { return { _ in true } }
        let set = try await authorizer.grantSet(p, type)
        return { set.level($0).allows(capability) }
    }

    /// Keeps the items the caller may read, reading further pages to fill `maxResults`; the next
    /// page token points just past the last item looked at. Scans at most `scanLimit` items per
    /// request, then answers with what it has and a token to go on.
    func readable<T: Sendable>(
        offset start: Int, maxResults: Int, scanLimit: Int = 50_000,
        fetch: (Int) async throws -> RepriseCore.Page<T>, readable: (T) -> Bool
    ) async throws -> (items: [T], next: Int?) {
        // Authentication off: one page, as before.
        if authorizer == nil || Caller.principal?.isAdmin == true {
            let page = try await fetch(start)
            return (page.items, page.nextOffset)
        }
        var out: [T] = []
        var offset = start
        var scanned = 0
        while true {
            let page = try await fetch(offset)
            for (i, item) in page.items.enumerated() {
                scanned += 1
                if readable(item) {
                    out.append(item)
                    if out.count >= maxResults {
                        let next = offset + i + 1
                        let more = i + 1 < page.items.count || page.nextOffset != nil
                        return (out, more ? next : nil)
                    }
                }
            }
            guard let next = page.nextOffset else { return (out, nil) }
            if scanned >= scanLimit { return (out, next) }
            offset = next
        }
    }
}

/// Thrown by a handler's own permission check; answered as MLflow's plain-text 403.
struct AccessDenied: Error {}

extension HTTPField.Name {
    static let wwwAuthenticate = Self("WWW-Authenticate")!
}
