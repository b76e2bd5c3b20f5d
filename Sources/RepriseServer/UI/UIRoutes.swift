import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import RepriseArtifacts
import RepriseCore

/// The web UI under `/ui/`: server-rendered pages over the same stores as the API.
extension RepriseAPI {
    typealias Page = (title: String, body: HTML)

    static let csrfCookie = "reprise_csrf"
    static let actorCookie = "reprise_actor"

    static func cookies(_ request: Request) -> [String: String] {
        var out: [String: String] = [:]
        for header in request.headers[values: .cookie] {
            for part in header.split(separator: ";") {
                let kv = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                // The first of a name wins: browsers send the most specific cookie first, so a
                // cookie planted from a sibling domain cannot replace this server's own.
                if kv.count == 2, out[kv[0]] == nil { out[kv[0]] = kv[1] }
            }
        }
        return out
    }

    /// `a=b&c=d` as sent by HTML forms.
    /// A form body (`application/x-www-form-urlencoded`): the same grammar as a query string, so the
    /// same parser.
    static func parseForm(_ body: String) -> [String: [String]] { RepriseAPI.parseQuery(body) }

    /// 405 for a UI path that exists with other methods, naming them.
    static func methodNotAllowed(_ base: String, allow: String) -> Response {
        var r = htmlResponse(HTML.page("Not allowed", base: base, body: "<p class=\"error\">This page does not take that method.</p>"), status: .methodNotAllowed)
        r.headers[.allow] = allow
        return r
    }

    static func htmlResponse(_ html: HTML, status: HTTPResponse.Status = .ok, csrf: String? = nil) -> Response {
        var headers: HTTPFields = [
            .contentType: "text/html; charset=utf-8",
            .contentSecurityPolicy: "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            .xContentTypeOptions: "nosniff", .cacheControl: "no-store",
        ]
        headers[HTTPField.Name("Referrer-Policy")!] = "same-origin"
        if let csrf { headers[.setCookie] = "\(csrfCookie)=\(csrf); Path=/; SameSite=Strict; HttpOnly" }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: html.rendered)))
    }

    /// A page handler throws this to answer with a file instead of a page.
    struct Download: Error {
        var text: String
        var type: String
        var filename: String
    }

    static func download(_ text: String, type: String, filename: String) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: type, .contentDisposition: "attachment; filename=\"\(filename)\"", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location])
    }

    /// Wraps a page handler: HTML errors instead of JSON, and a CSRF cookie for the forms.
    func uiPage(_ build: @escaping @Sendable (Call, String) async throws -> Page) -> Handler {
        let base = config.staticPrefix
        let csrf = csrfTokens
        return { call in
            let existing = Self.cookies(call.request)[Self.csrfCookie]
            let token = existing.flatMap { csrf.isValid($0) ? $0 : nil } ?? csrf.issue()
            do {
                let page = try await build(call, token)
                return Self.htmlResponse(HTML.page(page.title, base: base, body: page.body, csrf: token), csrf: existing == token ? nil : token)
            } catch let csv as CSVExport {
                return Self.download(csv.text, type: "text/csv; charset=utf-8", filename: "runs.csv")
            } catch let file as Download {
                return Self.download(file.text, type: file.type, filename: file.filename)
            } catch let e as RepriseError {
                let status = HTTPResponse.Status(code: e.code.httpStatus)
                let body: HTML = "<h1>\(status.code == 404 ? "Not found" : "Cannot show this page")</h1><p class=\"error\">\(e.message)</p><p><a href=\"\(base)/ui/\">Back to experiments</a></p>"
                return Self.htmlResponse(HTML.page("Error", base: base, body: body, csrf: token), status: status, csrf: existing == token ? nil : token)
            }
        }
    }

    /// A form post after its checks: the fields and the CSRF token it carried, or the page that
    /// refuses it.
    enum CheckedForm {
        case form([String: [String]], csrf: String)
        case refused(Response)
    }

    /// Reads a form body (at most 1 MiB) and checks it came from this server's own page: the CSRF
    /// cookie is one this server issued, the form's `csrf` field carries the same token, and a
    /// browser's Origin, if sent, is this server. Every UI form goes through here.
    func checkedForm(_ call: Call) async throws -> CheckedForm {
        let base = config.staticPrefix
        var collected = ByteBuffer()
        for try await chunk in call.request.body {
            if collected.readableBytes + chunk.readableBytes > 1 << 20 {
                return .refused(Self.htmlResponse(HTML.page("Error", base: base, body: "<p class=\"error\">Form too large.</p>"), status: .contentTooLarge))
            }
            var c = chunk
            collected.writeBuffer(&c)
        }
        let form = Self.parseForm(String(buffer: collected))
        let cookie = Self.cookies(call.request)[Self.csrfCookie]
        let origin = call.request.headers[.origin]
        // Forms are stricter than the API: only this server's own pages may post them.
        let sameOrigin = origin.map { SecurityPolicy.isSameOrigin($0, host: call.request.head.authority) } ?? true
        guard let cookie, csrfTokens.isValid(cookie), form["csrf"]?.first == cookie, sameOrigin else {
            let body: HTML = "<h1>Refused</h1><p class=\"error\">This form was not sent from a page of this server (its security token is missing or does not match). Reload the page and try again.</p>"
            return .refused(Self.htmlResponse(HTML.page("Refused", base: base, body: body), status: .forbidden))
        }
        return .form(form, csrf: cookie)
    }

    /// The page for a form whose change failed: the message, and a way back.
    static func formError(_ e: RepriseError, call: Call, base: String, csrf: String?) -> Response {
        let back: HTML = call.request.headers[.referer].map { "<p><a href=\"\($0)\">Back</a></p>" } ?? ""
        return htmlResponse(
            HTML.page("Error", base: base, body: "<h1>Not done</h1><p class=\"error\">\(e.message)</p>\(back)", csrf: csrf),
            status: HTTPResponse.Status(code: e.code.httpStatus))
    }

    /// Wraps a form handler: checks the CSRF token (cookie and field must match, and a browser's
    /// Origin must be this server), runs the change as the actor the form names, then redirects.
    func uiForm(_ act: @escaping @Sendable (Call, [String: [String]]) async throws -> String) -> Handler {
        let base = config.staticPrefix
        return { [self] call in
            let form: [String: [String]]
            let token: String
            switch try await checkedForm(call) {
            case .refused(let response): return response
            case .form(let f, let csrf): (form, token) = (f, csrf)
            }
            // With authentication on, the logged-in user acts; the form's name field is only
            // for servers without it.
            let actor = WriteContext.current.authenticated ? "" : (form["actor"]?.first ?? "").trimmingCharacters(in: .whitespaces)
            var context = WriteContext.current
            if !actor.isEmpty { context.actor = String(actor.prefix(200)) }
            do {
                let location = try await WriteContext.$current.withValue(context) { try await act(call, form) }
                var response = Self.redirect(base + location)
                if !actor.isEmpty, let encoded = actor.addingPercentEncoding(withAllowedCharacters: .alphanumerics) {
                    response.headers[.setCookie] = "\(Self.actorCookie)=\(encoded); Path=/; SameSite=Strict; HttpOnly"
                }
                return response
            } catch let e as RepriseError {
                return Self.formError(e, call: call, base: base, csrf: token)
            }
        }
    }

    static func hidden(_ csrf: String) -> HTML { "<input type=\"hidden\" name=\"csrf\" value=\"\(csrf)\">" }

    /// "You are …", for servers without authentication. With it on, the logged-in user acts and
    /// the field is not shown (`uiForm` ignores it then anyway).
    static func actorField(_ call: Call) -> HTML {
        if Caller.principal != nil { return HTML() }
        let known = cookies(call.request)[actorCookie].flatMap { $0.removingPercentEncoding } ?? ""
        return "<label>You are <input type=\"text\" name=\"actor\" required maxlength=\"200\" value=\"\(known)\" placeholder=\"your name\"></label>"
    }

    func registerUI() {
        registerTracePages()
        registerPromptPages()
        registerModelVersionPage()
        registerLoggedModelPages()
        registerImagePages()
        registerChartPages()
        let store = self.store
        let registry = self.registry
        let governance = self.governance
        let repro = self.repro
        let base = config.staticPrefix

        // The links the mlflow client prints (`http://HOST/#/experiments/1/runs/<id>`) carry the
        // page in the fragment, which browsers never send: a tiny page reads it and goes to the
        // matching /ui/ page (without JavaScript, to /ui/).
        route(.get, "/", access: .authenticated) { _ in
            var r = Self.htmlResponse(HTML.fragmentRouter(base: base))
            r.headers[.cacheControl] = "no-store"
            return r
        }
        route(.get, "/ui/static/app.js", access: .open) { _ in
            Response(status: .ok, headers: [.contentType: "text/javascript; charset=utf-8", .cacheControl: "max-age=3600"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: UIScript.js)))
        }
        route(.get, "/ui/static/route.js", access: .open) { _ in
            Response(status: .ok, headers: [.contentType: "text/javascript; charset=utf-8", .cacheControl: "max-age=3600"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: UIScript.fragmentRoutes)))
        }

        // MARK: Experiments
        route(.get, "/ui/", access: .authenticated, uiPage { [self] call, csrf in
            let search = call.query["q"]?.first ?? ""
            let view = call.query["view"]?.first == "deleted" ? ViewType.deletedOnly : .activeOnly
            let filter = search.isEmpty ? nil : "name LIKE '%\(search.replacingOccurrences(of: "'", with: "''"))%'"
            let page = try await store.searchExperiments(
                ExperimentSearchQuery(filter: filter, orderBy: ["last_update_time DESC"], viewType: view, maxResults: 1000, pageToken: nil))
            // Only what the caller may read (everything with authentication off).
            var experiments: [Experiment] = []
            for e in page.items where try await callerMay(.read, experiment: e.experimentID) { experiments.append(e) }
            let activity = try await store.experimentActivity(experimentIDs: experiments.map(\.experimentID))
            let rows = experiments.map { e -> [HTML] in
                let a = activity[e.experimentID]
                return [
                    "<a href=\"\(base)/ui/experiments/\(HTML.q(e.experimentID))\">\(e.name)</a>", HTML(escaping: e.experimentID),
                    "\(a?.runs ?? 0)", "\(HTML.time(a?.lastActivity ?? e.lastUpdateTime))",
                ]
            }
            var body: HTML = "<h1>Experiments</h1>"
            body += "<form method=\"get\" action=\"\(base)/ui/\" role=\"search\"><label>Find <input type=\"search\" name=\"q\" value=\"\(search)\" placeholder=\"name contains…\"></label> <button>Search</button></form>"
            body += rows.isEmpty ? "<p class=\"muted\">No experiments match.</p>" : HTML.table(["Name", "ID", "Runs", "Last activity"], rows)
            body += "<h2>New experiment</h2><form method=\"post\" action=\"\(base)/ui/experiments\">\(Self.hidden(csrf))<label>Name <input type=\"text\" name=\"name\" required maxlength=\"500\"></label> \(Self.actorField(call)) <button>Create</button></form>"
            return ("Experiments", body)
        })
        route(.post, "/ui/experiments", access: .authenticated, uiForm { _, form in
            let id = try await store.createExperiment(name: form["name"]?.first ?? "", artifactLocation: nil, tags: [])
            try await self.grantCreator(.experiment, id)
            return "/ui/experiments/\(HTML.q(id))"
        })

        route(.get, "/ui/experiments/{experiment_id}", access: .experiment(.read, .pathParameter("experiment_id")), uiPage { [self] call, csrf in
            let id = try call.pathParameter("experiment_id")
            return try await Self.runsPage(
                call, csrf: csrf, experimentIDs: [id], store: store, base: base,
                canEdit: try await callerMay(.update, experiment: id), canDelete: try await callerMay(.delete, experiment: id))
        })
        route(.post, "/ui/experiments/{experiment_id}/rename", access: .experiment(.update, .pathParameter("experiment_id")), uiForm { call, form in
            let id = try call.pathParameter("experiment_id")
            try await store.renameExperiment(id: id, newName: form["name"]?.first ?? "")
            return "/ui/experiments/\(HTML.q(id))"
        })
        route(.post, "/ui/experiments/{experiment_id}/delete", access: .experiment(.delete, .pathParameter("experiment_id")), uiForm { call, _ in
            try await store.deleteExperiment(id: try call.pathParameter("experiment_id"))
            return "/ui/"
        })
        // Runs of several experiments: /ui/runs?experiments=1,2
        route(.get, "/ui/runs", access: .experiments(.read, .commaSeparatedQuery("experiments", runs: false)), uiPage { call, csrf in
            let ids = (call.query["experiments"]?.first ?? "").split(separator: ",").map(String.init)
            return try await Self.runsPage(call, csrf: csrf, experimentIDs: ids, store: store, base: base)
        })

        // MARK: Run page
        let runRead = Access.experiment(.read, .pathRun("run_id"))
        route(.get, "/ui/runs/{run_id}", access: runRead, uiPage { [self] call, csrf in
            let id = try call.pathParameter("run_id")
            // The notes form only for those who may change the run (no lookup with authentication off).
            var canEdit = true
            if let authorizer { canEdit = try await callerMay(.update, experiment: try await authorizer.experimentID(ofRun: id)) }
            return try await Self.runPage(call, csrf: csrf, runID: id, store: store, repro: repro, base: base, canEdit: canEdit, registry: registry)
        })
        route(.get, "/ui/runs/{run_id}/artifacts", access: runRead, uiPage { [self] call, _ in
            try await Self.artifactPage(call, runID: try call.pathParameter("run_id"), store: store, resolve: { try self.repository(for: $0) }, base: base)
        })
        route(.get, "/ui/runs/{run_id}/runbook", access: runRead, uiPage { call, _ in
            let id = try call.pathParameter("run_id")
            let book = try await Self.runbook(call, runID: id, store: store, repro: repro, base: base)
            let links: HTML = "<p><a href=\"\(base)/ui/runs/\(HTML.q(id))/reproduce.sh\" download>reproduce.sh</a> · <a href=\"\(base)/ui/runs/\(HTML.q(id))/runbook.md\" download>runbook.md</a> · <a href=\"\(base)/ui/runs/\(HTML.q(id))\">back to the run</a></p>"
            // Raw on purpose: RepriseCore's run book renderer escapes every value itself (RepriseCore cannot use this type).
            return ("Run book", "<h1>Run book: \(book.json["run"]?["name"]?.stringValue ?? id)</h1>" + links + HTML(unsafeRaw: book.htmlBody))
        })
        route(.get, "/ui/runs/{run_id}/runbook.md", access: runRead, uiPage { call, _ in
            let id = try call.pathParameter("run_id")
            let book = try await Self.runbook(call, runID: id, store: store, repro: repro, base: base)
            throw Download(text: book.markdown, type: "text/markdown; charset=utf-8", filename: "runbook-\(id.prefix(8)).md")
        })
        route(.get, "/ui/runs/{run_id}/reproduce.sh", access: runRead, uiPage { call, _ in
            let id = try call.pathParameter("run_id")
            let book = try await Self.runbook(call, runID: id, store: store, repro: repro, base: base)
            throw Download(text: book.script, type: "text/x-shellscript; charset=utf-8", filename: "reproduce-\(id.prefix(8)).sh")
        })
        // Run editing: rename, tags, delete and restore, as forms (CSRF token, same-origin) like the notes.
        route(.post, "/ui/runs/{run_id}/rename", access: .experiment(.update, .pathRun("run_id")), uiForm { call, form in
            let id = try call.pathParameter("run_id")
            let name = (form["name"]?.first ?? "").trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty else { throw RepriseError.invalid("A run's new name must not be empty.") }
            _ = try await store.updateRun(id: id, status: nil, endTime: nil, runName: name)
            return "/ui/runs/\(HTML.q(id))"
        })
        route(.post, "/ui/runs/{run_id}/tags", access: .experiment(.update, .pathRun("run_id")), uiForm { call, form in
            let id = try call.pathParameter("run_id")
            let key = (form["key"]?.first ?? "").trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty else { throw RepriseError.invalid("A tag needs a key.") }
            try await store.logBatch(runID: id, metrics: [], params: [], tags: [KeyValue(key, form["value"]?.first ?? "")], conflictStyle: .batch)
            return "/ui/runs/\(HTML.q(id))#tags"
        })
        route(.post, "/ui/runs/{run_id}/tags/delete", access: .experiment(.update, .pathRun("run_id")), uiForm { call, form in
            let id = try call.pathParameter("run_id")
            try await store.deleteTag(runID: id, key: form["key"]?.first ?? "")
            return "/ui/runs/\(HTML.q(id))#tags"
        })
        route(.post, "/ui/runs/{run_id}/delete", access: .experiment(.delete, .pathRun("run_id")), uiForm { call, _ in
            let id = try call.pathParameter("run_id")
            try await store.deleteRun(id: id)
            return "/ui/runs/\(HTML.q(id))"
        })
        route(.post, "/ui/runs/{run_id}/restore", access: .experiment(.delete, .pathRun("run_id")), uiForm { call, _ in
            let id = try call.pathParameter("run_id")
            try await store.restoreRun(id: id)
            return "/ui/runs/\(HTML.q(id))"
        })
        route(.post, "/ui/runs/{run_id}/note", access: .experiment(.update, .pathRun("run_id")), uiForm { call, form in
            let id = try call.pathParameter("run_id")
            try await store.logBatch(
                runID: id, metrics: [], params: [], tags: [KeyValue("mlflow.note.content", form["note"]?.first ?? "")],
                conflictStyle: .batch)
            return "/ui/runs/\(HTML.q(id))"
        })

        // MARK: Compare
        route(.get, "/ui/compare", access: .experiments(.read, .commaSeparatedQuery("runs", runs: true)), uiPage { call, _ in
            try await Self.comparePage(call, store: store, base: base)
        })

        // MARK: Registry
        route(.get, "/ui/models", access: .authenticated, uiPage { [self] call, _ in
            let page = try await registry.searchRegisteredModels(
                try RegisteredModelSearchQuery(filter: nil, orderBy: ["name ASC"], maxResults: 1000, pageToken: nil))
            var models: [RegisteredModel] = []
            for m in page.items where try await callerMay(.read, registeredModel: m.name) { models.append(m) }
            let rows = models.map { m -> [HTML] in
                [
                    "<a href=\"\(base)/ui/models/\(HTML.q(m.name))\">\(m.name)</a>",
                    m.latestVersions.map { "v\($0.version) (\($0.currentStage))" as HTML }.joined(separator: ", "),
                    m.aliases.map { "<code>@\($0.0)</code> → v\($0.1)" as HTML }.joined(separator: ", "), "\(HTML.time(m.lastUpdatedTime))",
                    HTML(escaping: m.description),
                ]
            }
            return ("Models", "<h1>Registered models</h1>" + (rows.isEmpty ? "<p class=\"muted\">No registered models yet.</p>"
                : HTML.table(["Name", "Latest versions", "Aliases", "Updated", "Description"], rows)))
        })
        route(.get, "/ui/models/{name}", access: .registeredModel(.read, .pathParameter("name")), uiPage { [self] call, csrf in
            let name = try call.pathParameter("name")
            return try await Self.modelPage(
                call, csrf: csrf, name: name, registry: registry, governance: governance, repro: repro, base: base,
                visible: { try await self.readableLineage($0) })
        })
        route(.get, "/ui/approvals", access: .authenticated, uiPage { [self] call, csrf in
            var open: [ApprovalRequest] = []
            for r in try await governance.approvalRequests(model: nil, state: .open) where try await callerMay(.read, registeredModel: r.model) {
                open.append(r)
            }
            let body: HTML = "<h1>Open approval requests</h1>" + (open.isEmpty ? "<p class=\"muted\">Nothing is waiting for approval.</p>"
                : open.map { Self.requestCard($0, csrf: csrf, call: call, base: base) }.joined())
            return ("Approvals", body)
        })
        for action in ["approve", "reject"] {
            route(.post, "/ui/approvals/{request_id}/\(action)", access: .authenticated, uiForm { call, form in
                let id = try call.pathParameter("request_id")
                let rationale = form["rationale"]?.first ?? ""
                try await self.requireVoter(try await governance.approvalRequest(id: id), action: action)
                let r = try await governance.vote(requestID: id, approve: action == "approve", rationale: rationale)
                return "/ui/models/\(HTML.q(r.model))"
            })
        }

        // MARK: Lineage
        route(.get, "/ui/lineage", access: .authenticated, uiPage { [self] call, _ in
            guard let repro else { throw RepriseError(.notImplemented, "Lineage is not available on this server.") }
            let entity = call.query["entity"]?.first ?? ""
            let g = try await readableLineage(try await repro.lineage(entity: entity, depth: 10))
            return ("Lineage", "<h1>Lineage of <code>\(entity)</code></h1>" + Self.lineageSVG(g, base: base)
                + HTML.table(["From", "Relation", "To"], g.edges.map { [HTML(escaping: $0.from), HTML(escaping: $0.relation), HTML(escaping: $0.to)] }))
        })

        // MARK: Login, logout, tokens, admin (AuthPages.swift)
        registerAuthPages()
    }

    static func href(_ node: LineageNode, base: String) -> String? {
        switch node.type {
        case "run": return "\(base)/ui/runs/\(HTML.q(node.id))"
        case "model_version":
            return Validation.pathComponents(node.id).first.map { "\(base)/ui/models/\(HTML.q($0))" }
        case "alias": return node.id.split(separator: "@").first.map { "\(base)/ui/models/\(HTML.q(String($0)))" }
        case "registered_model": return "\(base)/ui/models/\(HTML.q(node.id))"
        case "deployment": return "\(base)/ui/deployments/\(HTML.q(node.id))"
        case "incident": return "\(base)/ui/incidents/\(HTML.q(node.id))"
        default: return nil
        }
    }

    static func lineageSVG(_ g: LineageGraph, base: String) -> HTML {
        "<div class=\"card\">" + SVGChart.lineage(
            g.nodes.map { ($0.key, $0.type, $0.label.isEmpty ? $0.id : $0.label, href($0, base: base)) },
            g.edges.map { ($0.from, $0.to, $0.relation) }) + "</div>"
    }

    // MARK: - Runs table

    /// - Parameters: canEdit, canDelete: whether the caller may rename or delete the experiment
    ///   (the forms are left out otherwise).
    static func runsPage(
        _ call: Call, csrf: String, experimentIDs: [String], store: any TrackingStore, base: String, canEdit: Bool = false, canDelete: Bool = false
    ) async throws -> Page {
        guard !experimentIDs.isEmpty else { throw RepriseError.invalid("Choose at least one experiment.") }
        var experiments: [Experiment] = []
        for id in experimentIDs { experiments.append(try await store.getExperiment(id: id)) }
        let filter = call.query["filter"]?.first ?? ""
        let order = call.query["order"]?.first ?? "attributes.start_time DESC"
        let pageSize = min(max(Int(call.query["size"]?.first ?? "") ?? 50, 1), 1000)
        let token = call.query["page"]?.first
        var error: String?
        var page = RepriseCore.Page<Run>(items: [], nextOffset: nil)
        do {
            page = try await store.searchRuns(
                try RunSearchQuery(experimentIDs: experimentIDs, filter: filter.isEmpty ? nil : filter, orderBy: [order], viewType: .activeOnly,
                                   maxResults: pageSize, pageToken: token))
        } catch let e as RepriseError where e.code == .invalidParameterValue || e.code == .badRequest {
            error = e.message
        }
        let runs = page.items
        // Columns: chosen, else the first few keys seen on this page.
        func keys(_ pick: (Run) -> [String]) -> [String] {
            var seen: [String] = []
            for r in runs { for k in pick(r) where !seen.contains(k) { seen.append(k) } }
            return seen.sorted()
        }
        let chosenParams = call.query["params"]?.first.map { $0.split(separator: ",").map(String.init) } ?? Array(keys { $0.params.map(\.key) }.prefix(4))
        let chosenMetrics = call.query["metrics"]?.first.map { $0.split(separator: ",").map(String.init) }
            ?? Array(keys { $0.metrics.map(\.key).filter { !$0.hasPrefix("system/") } }.prefix(4))
        let chosenTags = call.query["tags"]?.first.map { $0.split(separator: ",").map(String.init) } ?? []

        if call.query["format"]?.first == "csv" { throw CSVExport(runs: runs, params: chosenParams, metrics: chosenMetrics, tags: chosenTags) }

        // Nested runs: children right after their parent on this page.
        let byID = Dictionary(runs.map { ($0.info.runID, $0) }, uniquingKeysWith: { a, _ in a })
        func parent(_ r: Run) -> String? { r.tags.last { $0.key == "mlflow.parentRunId" }?.value }
        var ordered: [(Run, Int)] = []
        var placed = Set<String>()
        func place(_ r: Run, _ depth: Int) {
            guard !placed.contains(r.info.runID) else { return }
            placed.insert(r.info.runID)
            ordered.append((r, depth))
            for c in runs where parent(c) == r.info.runID { place(c, depth + 1) }
        }
        for r in runs where parent(r).flatMap({ byID[$0] }) == nil { place(r, 0) }
        for r in runs { place(r, 0) }

        func sortLink(_ label: String, _ field: String) -> HTML {
            let desc = order == "\(field) DESC"
            var q = call.query
            q["order"] = ["\(field) \(desc ? "ASC" : "DESC")"]
            q["page"] = nil
            let arrow = order.hasPrefix(field + " ") ? (desc ? " ↓" : " ↑") : ""
            return "<a href=\"?\(Self.encodeQuery(q))\">\(label)\(arrow)</a>"
        }
        func quoted(_ k: String) -> String { "`\(k)`" }
        var header: [HTML] = ["<input type=\"checkbox\" data-select-all aria-label=\"select all runs\">", sortLink("Run", "attributes.run_name"),
                      sortLink("Status", "attributes.status"), sortLink("Started", "attributes.start_time"), "Duration",
                      sortLink("User", "attributes.user_id"), "Evidence"]
        header += chosenParams.map { sortLink($0, "params.\(quoted($0))") }
        header += chosenMetrics.map { sortLink($0, "metrics.\(quoted($0))") }
        header += chosenTags.map { HTML(escaping: $0) }
        let showRange = call.query["range"]?.first == "1"
        let ranges = showRange ? try await store.metricRanges(runIDs: runs.map(\.info.runID), keys: chosenMetrics) : [:]
        var rows: [[HTML]] = []
        for (r, depth) in ordered {
            let params = Dictionary(r.params.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            let metrics = Dictionary(r.metrics.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            let tags = Dictionary(r.tags.map { ($0.key, $0.value) }, uniquingKeysWith: { _, b in b })
            var row: [HTML] = [
                "<input type=\"checkbox\" name=\"runs\" value=\"\(r.info.runID)\" aria-label=\"select \(r.info.runName)\">",
                Array(repeating: "<span class=\"tree\">↳</span>", count: min(depth, 6)).joined() + "<a href=\"\(base)/ui/runs/\(HTML.q(r.info.runID))\">\(r.info.runName.isEmpty ? r.info.runID : r.info.runName)</a>",
                HTML.statusBadge(r.info.status.rawValue), "\(HTML.time(r.info.startTime))", "\(HTML.duration(r.info.startTime, r.info.endTime))",
                HTML(escaping: r.info.userID), HTML.evidenceBadges(r.tags),
            ]
            row += chosenParams.map { HTML(escaping: params[$0] ?? "") }
            row += chosenMetrics.map { k -> HTML in
                var cell = HTML(escaping: metrics[k].map(HTML.number) ?? "")
                if let range = ranges[r.info.runID]?[k] {
                    cell += " <span class=\"muted\">(\(HTML.number(range.min))–\(HTML.number(range.max)))</span>"
                }
                return cell
            }
            row += chosenTags.map { HTML(escaping: tags[$0] ?? "") }
            rows.append(row)
        }
        let title = experiments.map(\.name).joined(separator: ", ")
        var body: HTML = "<h1>\(title)</h1>"
        if experiments.count == 1, let e = experiments.first {
            body += "<p class=\"muted\">Experiment \(e.experimentID) · artifacts at <code>\(e.artifactLocation)</code> · <a href=\"\(base)/ui/experiments/\(HTML.q(e.experimentID))/traces\">traces</a> · <a href=\"\(base)/ui/experiments/\(HTML.q(e.experimentID))/models\">logged models</a></p>"
        }
        var keep = HTML()
        for (k, vs) in call.query where !["filter", "page", "format"].contains(k) {
            for v in vs { keep += "<input type=\"hidden\" name=\"\(k)\" value=\"\(v)\">" }
        }
        body += "<form method=\"get\" role=\"search\">\(keep)<label>Filter <input type=\"search\" name=\"filter\" value=\"\(filter)\" placeholder=\"metrics.accuracy > 0.9 and params.C = '1.0' and tags.&quot;reprise.compliant&quot; = 'true'\" aria-describedby=\"filter-help\"></label> <button>Apply</button>"
        body += " <span id=\"filter-help\" class=\"muted\">the MLflow search grammar</span></form>"
        if let error { body += "<p class=\"error\" role=\"alert\">\(error)</p>" }
        var columnsQuery = call.query
        columnsQuery["page"] = nil
        body += "<details><summary>Columns</summary><form method=\"get\">"
        for (k, vs) in call.query where !["params", "metrics", "tags", "page", "range"].contains(k) {
            for v in vs { body += "<input type=\"hidden\" name=\"\(k)\" value=\"\(v)\">" }
        }
        body += "<label>Params <input type=\"text\" name=\"params\" value=\"\(chosenParams.joined(separator: ","))\"></label> "
        body += "<label>Metrics <input type=\"text\" name=\"metrics\" value=\"\(chosenMetrics.joined(separator: ","))\"></label> "
        body += "<label>Tags <input type=\"text\" name=\"tags\" value=\"\(chosenTags.joined(separator: ","))\"></label> "
        body += "<label><input type=\"checkbox\" name=\"range\" value=\"1\"\(showRange ? " checked" : "")> metric min–max</label> <button>Show</button></form></details>"
        var csvQuery = call.query
        csvQuery["format"] = ["csv"]
        csvQuery["params"] = [chosenParams.joined(separator: ",")]
        csvQuery["metrics"] = [chosenMetrics.joined(separator: ",")]
        body += "<form method=\"get\" action=\"\(base)/ui/compare\">"
        body += rows.isEmpty ? "<p class=\"muted\">No runs match.</p>" : HTML.table(header, rows)
        var chartQuery: [String: [String]] = ["order": [order]]
        if !filter.isEmpty { chartQuery["filter"] = [filter] }
        let chartLink: HTML = experiments.count == 1
            ? " · <a href=\"\(base)/ui/experiments/\(HTML.q(experimentIDs[0]))/chart?\(Self.encodeQuery(chartQuery))\" id=\"experiment-chart\">Chart a metric across these runs</a>" : ""
        body += "<p><button>Compare selected</button> <button formaction=\"\(base)/ui/charts\" id=\"chart-selected\">Chart selected</button> · <a href=\"?\(Self.encodeQuery(csvQuery))\" download>Export CSV</a>\(chartLink) · \(runs.count) run(s) shown</p></form>"
        body += Self.pager(call, first: token != nil ? "First page" : nil, next: page.nextOffset, nextLabel: "Next \(pageSize) →")
        if experiments.count == 1, let e = experiments.first, canEdit {
            body += "<details><summary>Rename\(canDelete ? " or delete" : "") this experiment</summary>"
            body += "<form method=\"post\" action=\"\(base)/ui/experiments/\(HTML.q(e.experimentID))/rename\">\(hidden(csrf))<label>New name <input type=\"text\" name=\"name\" required value=\"\(e.name)\"></label> \(actorField(call)) <button>Rename</button></form>"
            if canDelete {
                body += "<form method=\"post\" action=\"\(base)/ui/experiments/\(HTML.q(e.experimentID))/delete\">\(hidden(csrf))\(actorField(call)) <button>Delete experiment</button></form>"
            }
            body += "</details>"
        }
        return (title, body)
    }

    /// A query string for an href: percent-encoded components (so the escaping of each is a no-op),
    /// joined by a literal `&` as before.
    /// Links to the first page (when `first` names it) and to the page at offset `next`, keeping
    /// the rest of the query.
    static func pager(_ call: Call, first: String?, next: Int?, nextLabel: String) -> HTML {
        var pager: HTML = "<div class=\"pager\">"
        if let first {
            var q = call.query
            q["page"] = nil
            pager += "<a href=\"?\(Self.encodeQuery(q))\">\(first)</a>"
        }
        if let next {
            var q = call.query
            q["page"] = [PageToken.encode(offset: next)]
            pager += "<a href=\"?\(Self.encodeQuery(q))\" rel=\"next\">\(nextLabel)</a>"
        }
        return pager + "</div>"
    }

    static func encodeQuery(_ q: [String: [String]]) -> HTML {
        q.sorted { $0.key < $1.key }.flatMap { k, vs in vs.map { "\(HTML.q(k))=\(HTML.q($0))" as HTML } }.joined(separator: "&")
    }

    struct CSVExport: Error {
        var runs: [Run]
        var params: [String]
        var metrics: [String]
        var tags: [String]

        var text: String {
            func cell(_ s: String) -> String {
                var v = s
                if let f = v.first, "=+-@".contains(f) { v = "'" + v }  // no formula injection in spreadsheets
                return v.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                    ? "\"" + v.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : v
            }
            var lines = [(["run_id", "run_name", "status", "start_time", "end_time", "user"] + params.map { "params." + $0 }
                + metrics.map { "metrics." + $0 } + tags.map { "tags." + $0 }).map(cell).joined(separator: ",")]
            for r in runs {
                let p = Dictionary(r.params.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
                let m = Dictionary(r.metrics.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
                let t = Dictionary(r.tags.map { ($0.key, $0.value) }, uniquingKeysWith: { _, b in b })
                var row = [r.info.runID, r.info.runName, r.info.status.rawValue, String(r.info.startTime), r.info.endTime.map(String.init) ?? "", r.info.userID]
                row += params.map { p[$0] ?? "" }
                row += metrics.map { m[$0].map { String($0) } ?? "" }
                row += tags.map { t[$0] ?? "" }
                lines.append(row.map(cell).joined(separator: ","))
            }
            return lines.joined(separator: "\r\n") + "\r\n"
        }
    }

    // MARK: - Run book

    static func runbook(_ call: Call, runID: String, store: any TrackingStore, repro: (any ReproStore)?, base: String) async throws
        -> RunbookDocument.Output
    {
        let run = try await store.getRun(id: runID)
        func latest(_ r: Run) -> [String: Double] { Dictionary(r.metrics.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a }) }
        let tags = Dictionary(run.tags.map { ($0.key, $0.value) }, uniquingKeysWith: { _, b in b })
        var baseline: Run?
        if let b = tags[PassportTag.baseline], !b.isEmpty { baseline = try? await store.getRun(id: b) }
        let reproductions = try? await repro?.reproductions(runID: runID)
        let lineage = try? await repro?.lineage(entity: "run:\(runID)", depth: 6)
        let host = call.request.headers[HTTPField.Name("Host")!] ?? call.request.head.authority ?? "127.0.0.1:5000"
        return RunbookDocument.build(
            RunbookInput(
                runID: runID, name: run.info.runName, experimentID: run.info.experimentID, status: run.info.status.rawValue,
                startTime: run.info.startTime, endTime: run.info.endTime, tags: tags,
                params: Dictionary(run.params.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a }), metrics: latest(run),
                baselineID: baseline?.info.runID, baselineMetrics: baseline.map(latest) ?? [:],
                reproductions: reproductions.map { .array($0.map(\.json)) }, lineage: lineage?.json, trackingURI: "http://\(host)\(base)"))
    }

    // MARK: - Run page

    static func runPage(
        _ call: Call, csrf: String, runID: String, store: any TrackingStore, repro: (any ReproStore)?, base: String, canEdit: Bool = true,
        registry: (any RegistryStore)? = nil
    ) async throws -> Page {
        let run = try await store.getRun(id: runID)
        let experiment = try await store.getExperiment(id: run.info.experimentID)
        let tags = Dictionary(run.tags.map { ($0.key, $0.value) }, uniquingKeysWith: { _, b in b })
        let name = run.info.runName.isEmpty ? runID : run.info.runName
        var body: HTML = "<p class=\"muted\"><a href=\"\(base)/ui/experiments/\(HTML.q(experiment.experimentID))\">\(experiment.name)</a> /</p>"
        let deleted: HTML = run.info.lifecycleStage == .deleted ? " <span class=\"badge bad\">deleted</span>" : ""
        body += "<h1>\(name) \(HTML.statusBadge(run.info.status.rawValue))\(deleted) \(HTML.evidenceBadges(run.tags))</h1>"
        var overview: [[HTML]] = [
            ["Run ID", "<code>\(runID)</code>"], ["Started", "\(HTML.time(run.info.startTime))"],
            ["Duration", "\(HTML.duration(run.info.startTime, run.info.endTime))"],
            ["Owner", HTML(escaping: tags[PassportTag.owner] ?? run.info.userID)],
        ]
        if let p = tags[PassportTag.purpose] { overview.append(["Purpose", HTML(escaping: p)]) }
        if let s = tags["mlflow.source.name"] { overview.append(["Source", HTML(escaping: s)]) }
        if let parent = tags["mlflow.parentRunId"] { overview.append(["Parent run", "<a href=\"\(base)/ui/runs/\(HTML.q(parent))\">\(parent)</a>"]) }
        overview.append(["Artifacts", "<a href=\"\(base)/ui/runs/\(HTML.q(runID))/artifacts\">browse</a>\(tags["mlflow.loggedImages"] != nil ? " · <a href=\"\(base)/ui/runs/\(HTML.q(runID))/images\">images by step</a>" as HTML : "") · <code>\(run.info.artifactURI)</code>"])
        overview.append(["Lineage", "<a href=\"\(base)/ui/lineage?entity=\(HTML.q("run:" + runID))\">graph</a>"])
        body += "<h2>Overview</h2>" + HTML.table(["", ""], overview)

        // The passport card.
        body += "<h2>Passport</h2>"
        if tags[PassportTag.version] == nil && tags[PassportTag.commit] == nil {
            body += "<p class=\"muted\">This run was not started with <code>reprise run</code>: it carries no passport.</p>"
        } else {
            func field(_ label: String, _ present: Bool, _ detail: HTML) -> HTML {
                "<div class=\"card\"><strong>\(label)</strong> <span class=\"badge \(present ? "ok" : "bad")\">\(present ? "recorded" : "missing")</span><br>\(detail)</div>"
            }
            let inputs = (tags[PassportTag.dataInputs]).flatMap { try? JSONValue.parse($0) }
            var dataDetail = HTML()
            if case .array(let items)? = inputs {
                dataDetail = items.map { "<code>\($0["path"]?.stringValue ?? "")</code> \(String(($0["digest"]?.stringValue ?? "").prefix(16)))…" as HTML }.joined(separator: "<br>")
            }
            let dirty: HTML = tags[PassportTag.dirty] == "true" ? " <span class=\"badge warn\">dirty</span>" : ""
            let env = [tags[PassportTag.envOS], tags[PassportTag.envPython], tags[PassportTag.envGPU]].compactMap { $0 }.filter { !$0.isEmpty }
                .map { HTML(escaping: $0) }.joined(separator: "<br>")
            var seeds: HTML = tags[PassportTag.seed].map { "root \($0)" } ?? ""
            for (k, v) in tags.sorted(by: { $0.key < $1.key }) where k.hasPrefix(PassportTag.seedPrefix) {
                seeds += "<br>\(String(k.dropFirst(PassportTag.seedPrefix.count))) \(v)"
            }
            // "Recorded" is the policy's own rule (PassportField.isPresent), so the card and a refusal agree.
            let recorded = { (f: PassportField) in f.isPresent(tags: tags, datasets: run.datasetInputs.count) }
            let commit = tags[PassportTag.commit].flatMap { $0.isEmpty ? nil : $0 } ?? tags["mlflow.source.git.commit"]
            let code: HTML = commit.map { "commit <code>\(String($0.prefix(12)))</code> on \(tags[PassportTag.branch] ?? "?")\(dirty)" } ?? ""
            body += "<div class=\"cards\">"
            body += field("Code", recorded(.code), code)
            body += field("Data", recorded(.data), dataDetail)
            body += field("Environment", recorded(.environment), env)
            body += field("Seeds", recorded(.seed), seeds)
            body += field("Command", recorded(.command), "<code>\(tags[PassportTag.command] ?? "")</code>")
            body += "</div>"
            if let missing = tags[PassportTag.complianceMissing] { body += "<p class=\"error\">Missing under the experiment's policy: \(missing)</p>" }
            body += "<p><a href=\"\(base)/ui/runs/\(HTML.q(runID))/runbook\">Run book</a> · <a href=\"\(base)/ui/runs/\(HTML.q(runID))/reproduce.sh\" download>reproduce.sh</a> · <span class=\"muted\">or <code>reprise reproduce \(runID)</code></span></p>"
        }
        if let repro, let list = try? await repro.reproductions(runID: runID), !list.isEmpty {
            body += "<h2>Reproductions</h2>" + HTML.table(["Verdict", "Original", "Rerun", "Summary", "When", "By"], list.map { r in
                let cls = r.verdict == .reproduced ? "ok" : (r.verdict == .diverged ? "bad" : "warn")
                let cells: [HTML] = ["<span class=\"badge \(cls)\">\(r.verdict.rawValue)</span>",
                        "<a href=\"\(base)/ui/runs/\(HTML.q(r.originalRunID))\">\(String(r.originalRunID.prefix(8)))</a>",
                        r.rerunRunID.isEmpty ? "" : "<a href=\"\(base)/ui/runs/\(HTML.q(r.rerunRunID))\">\(String(r.rerunRunID.prefix(8)))</a>",
                        HTML(escaping: r.summary), HTML(escaping: HTML.time(r.time)), HTML(escaping: r.actor)]
                return cells
            })
        }

        body += "<h2>Parameters</h2>" + (run.params.isEmpty ? "<p class=\"muted\">none</p>"
            : HTML.table(["Name", "Value"], run.params.sorted { $0.key < $1.key }.map { [HTML(escaping: $0.key), HTML(escaping: $0.value)] }))
        body += "<h2>Metrics</h2>"
        let modelMetrics = run.metrics.sorted { $0.key < $1.key }
        if modelMetrics.isEmpty {
            body += "<p class=\"muted\">none</p>"
        } else {
            body += HTML.table(["Name", "Latest", "Step"], modelMetrics.map { [HTML(escaping: $0.key), HTML(escaping: HTML.number($0.value)), "\($0.step)"] })
            // A metric logged once is a value (it is in the table above), not a one-point chart.
            let options = try ChartOptions(query: call.query)
            let keys = modelMetrics.map(\.key).filter { !$0.hasPrefix("system/") } + modelMetrics.map(\.key).filter { $0.hasPrefix("system/") }
            let grid = try await chartGrid(store: store, runs: [run], keys: Array(keys.prefix(24)), options: options)
            if grid.charts > 0 || options.zoomed {
                body += options.form(keep: [])
                body += grid.html
            }
            body += "<p><a href=\"\(base)/ui/charts?runs=\(HTML.q(runID))\" id=\"workspace-link\">All \(modelMetrics.count) metric(s) in the charts workspace</a></p>"
        }
        if !run.datasetInputs.isEmpty {
            body += "<h2>Datasets</h2>" + HTML.table(["Name", "Digest", "Source type", "Context"], run.datasetInputs.map { d in
                [HTML(escaping: d.dataset.name), "<code>\(d.dataset.digest)</code>", HTML(escaping: d.dataset.sourceType),
                 HTML(escaping: d.tags.first { $0.key == "mlflow.data.context" }?.value ?? "")]
            })
        }
        if let registry {
            body += try await loggedModelsSection(
                store: store, registry: registry, experimentIDs: [run.info.experimentID], filter: "source_run_id = '\(runID)'",
                extraIDs: run.modelOutputs.map(\.modelID), title: "Models", base: base)
        }
        let visibleTags = run.tags.filter { $0.key != "mlflow.note.content" }.sorted { $0.key < $1.key }
        let action = { (path: String) -> HTML in "\(base)/ui/runs/\(HTML.q(runID))/\(path)" }
        body += "<h2 id=\"tags\">Tags</h2>" + HTML.table(canEdit ? ["Key", "Value", ""] : ["Key", "Value"], visibleTags.map { t -> [HTML] in
            var row: [HTML] = [HTML(escaping: t.key), HTML(escaping: t.value)]
            // The server's own tags (mlflow.*, reprise.*) are not for hand editing here.
            if canEdit {
                row.append(t.key.hasPrefix("mlflow.") || t.key.hasPrefix("reprise.") ? "" :
                    "<form method=\"post\" action=\"\(action("tags/delete"))\" class=\"inline\">\(hidden(csrf))<input type=\"hidden\" name=\"key\" value=\"\(t.key)\"><button aria-label=\"delete tag \(t.key)\">Delete</button></form>")
            }
            return row
        })
        if canEdit {
            body += "<details><summary>Edit the run</summary>"
            body += "<form method=\"post\" action=\"\(action("rename"))\">\(hidden(csrf))<label>Name <input type=\"text\" name=\"name\" required maxlength=\"500\" value=\"\(run.info.runName)\"></label> \(actorField(call)) <button>Rename</button></form>"
            body += "<form method=\"post\" action=\"\(action("tags"))\">\(hidden(csrf))<label>Tag <input type=\"text\" name=\"key\" required maxlength=\"250\"></label> <label>value <input type=\"text\" name=\"value\"></label> \(actorField(call)) <button>Set tag</button></form>"
            if run.info.lifecycleStage == .deleted {
                body += "<form method=\"post\" action=\"\(action("restore"))\">\(hidden(csrf))\(actorField(call)) <button>Restore the run</button></form>"
            } else {
                body += "<form method=\"post\" action=\"\(action("delete"))\">\(hidden(csrf))\(actorField(call)) <button>Delete the run</button> <span class=\"muted\">(it can be restored)</span></form>"
            }
            body += "</details>"
        }
        let note = tags["mlflow.note.content"] ?? ""
        body += "<h2>Notes</h2>" + (note.isEmpty ? "<p class=\"muted\">No notes yet.</p>" : "<div class=\"card\">\(Markdown.render(note))</div>")
        if canEdit {
            body += "<details><summary>Edit notes (Markdown)</summary><form method=\"post\" action=\"\(base)/ui/runs/\(HTML.q(runID))/note\">\(hidden(csrf))"
            body += "<p><textarea name=\"note\" rows=\"8\" cols=\"90\" aria-label=\"notes\">\(note)</textarea></p>\(actorField(call)) <button>Save notes</button></form></details>"
        }
        return (name, body)
    }

    /// The artifact browser of one run, over whichever repository holds the run's artifact URI
    /// (`resolve` is `repository(for:)`: the proxy, a local root or an S3 bucket the server was
    /// started with).
    static func artifactPage(
        _ call: Call, runID: String, store: any TrackingStore, resolve: (String) throws -> (any ArtifactRepository, [String]), base: String
    ) async throws -> Page {
        let run = try await store.getRun(id: runID)
        let path = call.query["path"]?.first ?? ""
        var body: HTML = "<p class=\"muted\"><a href=\"\(base)/ui/runs/\(HTML.q(runID))\">\(run.info.runName)</a> / artifacts</p><h1>Artifacts\(path.isEmpty ? "" : ": " + path)</h1>"
        guard let (artifacts, rootParts) = try? resolve(run.info.artifactURI) else {
            return ("Artifacts", body + "<p class=\"muted\">This server does not serve this run's artifacts (\(run.info.artifactURI)).</p>")
        }
        let relParts = try Validation.artifactPathComponents(path)
        let parts = rootParts + relParts
        let download: HTML = "\(base)/get-artifact?run_uuid=\(HTML.q(runID))&path=\(HTML.q(path))"
        let kind = try await artifacts.kind(parts)
        if kind == .missing {
            if path.isEmpty { return ("Artifacts", body + "<p class=\"muted\">No artifacts yet.</p>") }
            throw RepriseError.notFound("Run \(runID) has no artifact '\(path)'.")
        }
        if kind == .directory, let listing = try await artifacts.list(parts) {
            if !path.isEmpty {
                let up = Validation.pathComponents(path).dropLast().joined(separator: "/")
                body += "<p><a href=\"?path=\(HTML.q(up))\">↑ up</a></p>"
            }
            body += listing.isEmpty ? "<p class=\"muted\">empty</p>" : HTML.table(["Name", "Size"], listing.map { f -> [HTML] in
                let child = path.isEmpty ? f.path : path + "/" + f.path
                return ["<a href=\"?path=\(HTML.q(child))\">\(f.path)\(f.isDir ? "/" : "")</a>", "\(f.fileSize.map { String($0) } ?? "")"]
            })
            return ("Artifacts", body)
        }
        // A file: preview what can be shown, always offer the download.
        body += "<p><a href=\"\(download)\" download>Download</a></p>"
        let lower = path.lowercased()
        if [".png", ".jpg", ".jpeg", ".gif", ".webp"].contains(where: lower.hasSuffix) {
            body += "<p><img alt=\"\(path)\" src=\"\(download)\" style=\"max-width:100%\"></p>"
        } else if case .file(let size) = kind {
            let text: String
            if size <= 256 * 1024 {
                var bytes = ByteBuffer()
                try await artifacts.read(parts) { chunk in
                    var c = chunk
                    bytes.writeBuffer(&c)
                }
                text = String(buffer: bytes)
            } else {
                text = "\u{0}"
                body += "<p class=\"muted\">\(size) bytes: too large to preview here.</p>"
            }
            if text.contains("\u{0}") {
                if size <= 256 * 1024 { body += "<p class=\"muted\">Binary file; no preview.</p>" }
            } else if lower.hasSuffix(".csv") {
                let rows = text.split(separator: "\n").prefix(200).map { $0.split(separator: ",", omittingEmptySubsequences: false).map { HTML(escaping: $0) } }
                if let head = rows.first { body += HTML.table(head, Array(rows.dropFirst())) }
            } else if lower.hasSuffix(".json"), let json = try? JSONValue.parse(text) {
                // `mlflow.log_table` writes {"columns": [...], "data": [[...], ...]}: show it as a table.
                if case .array(let columns)? = json["columns"], case .array(let data)? = json["data"],
                    columns.allSatisfy({ $0.stringValue != nil })
                {
                    let cell = { (v: JSONValue) -> HTML in HTML(escaping: v.stringValue ?? v.jsonString) }
                    let rows = data.prefix(500).map { row -> [HTML] in
                        guard case .array(let cells) = row else { return [cell(row)] }
                        return cells.map(cell)
                    }
                    body += "<p class=\"muted\">A table: \(columns.count) columns, \(data.count) rows\(data.count > 500 ? " (the first 500 shown)" : "").</p>"
                    body += HTML.table(columns.map(cell), rows)
                } else {
                    body += "<pre>\(json.jsonString)</pre>"
                }
            } else {
                body += "<pre>\(text)</pre>"
            }
        }
        return ("Artifacts", body)
    }

    // MARK: - Compare

    static func comparePage(_ call: Call, store: any TrackingStore, base: String) async throws -> Page {
        let ids = (call.query["runs"] ?? []).flatMap { $0.split(separator: ",").map(String.init) }.filter { !$0.isEmpty }
        guard ids.count >= 2 else { throw RepriseError.invalid("Select at least two runs to compare.") }
        var runs: [Run] = []
        for id in ids.prefix(50) { runs.append(try await store.getRun(id: id)) }
        let diffOnly = call.query["diff"]?.first == "1"
        let baselineID = call.query["baseline"]?.first ?? ""
        let baseline = runs.first { $0.info.runID == baselineID }
        func label(_ r: Run) -> String { r.info.runName.isEmpty ? String(r.info.runID.prefix(8)) : r.info.runName }
        var body: HTML = "<h1>Compare \(runs.count) runs</h1>"
        var q = call.query
        q["diff"] = [diffOnly ? "0" : "1"]
        body += "<p><a href=\"?\(encodeQuery(q))\" id=\"diff-toggle\">\(diffOnly ? "Show all rows" : "Differences only")</a>"
        body += " · baseline: " + runs.map { r -> HTML in
            var bq = call.query
            bq["baseline"] = [r.info.runID]
            return r.info.runID == baselineID ? "<strong>\(label(r))</strong>" : "<a href=\"?\(encodeQuery(bq))\">\(label(r))</a>"
        }.joined(separator: ", ") + "</p>"
        let header: [HTML] = ["Field"] + runs.map { "<a href=\"\(base)/ui/runs/\(HTML.q($0.info.runID))\">\(label($0))</a>" }
        func section(_ title: String, _ rows: [(String, [String?])], numeric: [[Double?]]? = nil) -> HTML {
            var out: [[HTML]] = []
            var classes: [String] = []
            for (i, (key, values)) in rows.enumerated() {
                let differs = Set(values.map { $0 ?? "\u{0}" }).count > 1
                if diffOnly && !differs { continue }
                var cells = [HTML(escaping: key)]
                for (j, v) in values.enumerated() {
                    var cell = HTML(escaping: v ?? "—")
                    if let numeric, let b = baseline, let bi = runs.firstIndex(where: { $0.info.runID == b.info.runID }),
                        j != bi, let x = numeric[i][j], let y = numeric[i][bi]
                    {
                        cell += " <span class=\"muted\">(\(x - y >= 0 ? "+" : "")\(HTML.number(x - y)))</span>"
                    }
                    cells.append(cell)
                }
                out.append(cells)
                classes.append(differs ? "diff" : "")
            }
            let h2: HTML = "<h2>\(title)</h2>"
            return h2 + (out.isEmpty ? "<p class=\"muted\">\(diffOnly ? "no differences" : "none")</p>" : HTML.table(header, out, rowClasses: classes))
        }
        let paramKeys = Set(runs.flatMap { $0.params.map(\.key) }).sorted()
        body += section("Parameters", paramKeys.map { k in (k, runs.map { r in r.params.first { $0.key == k }?.value }) })
        let metricKeys = Set(runs.flatMap { $0.metrics.map(\.key) }).sorted()
        let metricValues: [[Double?]] = metricKeys.map { k in runs.map { r in r.metrics.first { $0.key == k }?.value } }
        body += section("Metrics", metricKeys.enumerated().map { i, k in (k, metricValues[i].map { $0.map(HTML.number) }) }, numeric: metricValues)
        let tagKeys = Set(runs.flatMap { $0.tags.map(\.key) }).filter { !$0.hasPrefix("mlflow.log-model") }.sorted()
        body += section("Tags", tagKeys.map { k in (k, runs.map { r in r.tags.last { $0.key == k }?.value }) })

        let options = try ChartOptions(query: call.query)
        body += "<h2>Metric history</h2>"
        body += options.form(keep: call.query.filter { !ChartOptions.parameters.contains($0.key) }.sorted { $0.key < $1.key }.flatMap { k, vs in vs.map { (k, $0) } })
        let grid = try await chartGrid(store: store, runs: runs, keys: Array(metricKeys.filter({ !$0.hasPrefix("system/") }).prefix(12)), options: options)
        body += grid.html
        body += "<p><a href=\"\(base)/ui/charts?runs=\(HTML.q(runs.map(\.info.runID).joined(separator: ",")))\" id=\"workspace-link\">All their metrics in the charts workspace</a></p>"

        // Scatter of any two columns, parallel coordinates over chosen ones.
        let columns = paramKeys.map { "params.\($0)" } + metricKeys.map { "metrics.\($0)" }
        func value(_ r: Run, _ column: String) -> Double? {
            if column.hasPrefix("params.") { return r.params.first { $0.key == String(column.dropFirst(7)) }.flatMap { Double($0.value) } }
            if column.hasPrefix("metrics.") { return r.metrics.first { $0.key == String(column.dropFirst(8)) }?.value }
            return nil
        }
        let numericColumns = columns.filter { c in runs.contains { value($0, c) != nil } }
        let x = call.query["x"]?.first ?? numericColumns.first ?? ""
        let y = call.query["y"]?.first ?? numericColumns.dropFirst().first ?? x
        func select(_ name: String, _ current: String) -> HTML {
            let open: HTML = "<label>\(name) <select name=\"\(name)\">"
            return open + numericColumns.map {
                "<option value=\"\($0)\"\($0 == current ? " selected" : "")>\($0)</option>" as HTML
            }.joined() + "</select></label>"
        }
        var keep = HTML()
        for (k, vs) in call.query where !["x", "y", "axes"].contains(k) {
            for v in vs { keep += "<input type=\"hidden\" name=\"\(k)\" value=\"\(v)\">" }
        }
        body += "<h2>Scatter</h2><form method=\"get\">\(keep)\(select("x", x)) \(select("y", y)) <button>Plot</button></form>"
        body += SVGChart.scatter(xName: x, yName: y, runs.compactMap { r in value(r, x).flatMap { vx in value(r, y).map { (label(r), vx, $0) } } })
        let axes = call.query["axes"]?.first.map { $0.split(separator: ",").map(String.init) } ?? Array(numericColumns.prefix(6))
        body += "<h2>Parallel coordinates</h2><form method=\"get\">\(keep)<input type=\"hidden\" name=\"x\" value=\"\(x)\"><input type=\"hidden\" name=\"y\" value=\"\(y)\"><label>Columns <input type=\"text\" name=\"axes\" value=\"\(axes.joined(separator: ","))\"></label> <button>Draw</button></form>"
        body += SVGChart.parallel(axes, runs.map { r in (label(r), axes.map { value(r, $0) }) })
        return ("Compare", body)
    }

    // MARK: - Registry pages

    static func requestCard(_ r: ApprovalRequest, csrf: String, call: Call, base: String) -> HTML {
        var h: HTML = "<div class=\"card\"><strong>\(r.model)@\(r.alias) → v\(r.targetVersion)</strong> <span class=\"badge warn\">\(r.state.rawValue)</span>"
        h += "<br>requested by \(r.requester) on \(HTML.time(r.createdTime)): \(r.rationale)"
        h += "<br>needs \(r.requiredApprovals) approval(s)\(r.approvers.isEmpty ? "" : " from " + r.approvers.joined(separator: ", "))"
        if !r.checks.isEmpty { h += "<br>checks: " + r.checks.map { HTML(escaping: $0.json["type"]?.stringValue ?? "") }.joined(separator: ", ") }
        for v in r.votes { h += "<br>\(v.decision) by \(v.approver) on \(HTML.time(v.time)): \(v.rationale)" }
        if r.state == .open {
            h += "<form method=\"post\" action=\"\(base)/ui/approvals/\(HTML.q(r.id))/approve\" class=\"approve\">\(hidden(csrf))"
            h += "<p><label>Rationale <input type=\"text\" name=\"rationale\" required maxlength=\"2000\"></label> \(actorField(call))</p>"
            h += "<button>Approve</button> <button formaction=\"\(base)/ui/approvals/\(HTML.q(r.id))/reject\">Reject</button></form>"
        }
        return h + "</div>"
    }

    static func modelPage(
        _ call: Call, csrf: String, name: String, registry: any RegistryStore, governance: any GovernanceStore, repro: (any ReproStore)?, base: String,
        visible: @Sendable (LineageGraph) async throws -> LineageGraph = { $0 }
    ) async throws -> Page {
        let model = try await registry.getRegisteredModel(name: name)
        let filter = "name = '\(name.replacingOccurrences(of: "'", with: "''"))'"
        let versions = try await registry.searchModelVersions(
            try ModelVersionSearchQuery(filter: filter, orderBy: ["version_number DESC"], maxResults: 1000, pageToken: nil)).items
        var body: HTML = "<p class=\"muted\"><a href=\"\(base)/ui/models\">Models</a> /</p><h1>\(name)</h1>"
        if !model.description.isEmpty { body += "<p>\(model.description)</p>" }
        if !model.aliases.isEmpty {
            body += "<h2>Aliases</h2>" + HTML.table(["Alias", "Version", "Lineage"], model.aliases.map { a, v -> [HTML] in
                ["<code>@\(a)</code>", "v\(v)", "<a href=\"\(base)/ui/lineage?entity=\(HTML.q("alias:\(name)@\(a)"))\">graph</a>"]
            })
        }
        body += "<h2>Versions</h2>" + HTML.table(["Version", "Stage", "Aliases", "Source run", "Created", "Tags"], versions.map { v -> [HTML] in
            [
                "<a href=\"\(base)/ui/models/\(HTML.q(name))/versions/\(v.version)\">v\(v.version)</a>", HTML(escaping: v.currentStage),
                v.aliases.map { "<code>@\($0)</code>" as HTML }.joined(separator: " "),
                v.runID.isEmpty ? HTML(escaping: v.source) : "<a href=\"\(base)/ui/runs/\(HTML.q(v.runID))\">\(String(v.runID.prefix(8)))</a>",
                HTML(escaping: HTML.time(v.creationTime)), v.tags.map { "\($0.key)=\($0.value)" as HTML }.joined(separator: ", "),
            ]
        })
        if !model.tags.isEmpty { body += "<h2>Tags</h2>" + HTML.table(["Key", "Value"], model.tags.map { [HTML(escaping: $0.key), HTML(escaping: $0.value)] }) }
        let requests = try await governance.approvalRequests(model: name, state: nil)
        if !requests.isEmpty {
            body += "<h2>Approval requests</h2>" + requests.map { requestCard($0, csrf: csrf, call: call, base: base) }.joined()
        }
        if let repro, let v = versions.first, let found = try? await repro.lineage(entity: "model_version:\(name)/\(v.version)", depth: 6) {
            let g = try await visible(found)
            body += "<h2>Lineage of v\(v.version)</h2>" + lineageSVG(g, base: base)
        }
        let events = try await governance.auditEvents(entityType: nil, entityID: name, afterSeq: 0, limit: 500)
        body += "<h2>Audit history</h2>" + HTML.table(["#", "When", "Who", "Action", "Entity", "Details"], events.reversed().map { e -> [HTML] in
            ["\(e.seq)", HTML(escaping: HTML.time(e.time)), HTML(escaping: e.actor), HTML(escaping: e.action), HTML(escaping: e.entityID), "<code>\(e.summary)</code>"]
        })
        return (name, body)
    }
}
