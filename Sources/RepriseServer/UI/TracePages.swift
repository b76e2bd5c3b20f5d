import Foundation
import RepriseCore

// The web UI's trace pages (an experiment's traces with filters; one trace as a span tree with
// timings, inputs, outputs and assessments) and deployment pages (an environment's history, one
// deployment with its measurements and incidents, linked into lineage).
extension RepriseAPI {
    func registerTracePages() {
        let base = config.staticPrefix
        route(.get, "/ui/experiments/{experiment_id}/traces", access: .experiment(.read, .pathParameter("experiment_id")), uiPage { [self] call, _ in
            try await tracesPage(call, experimentID: try call.pathParameter("experiment_id"), base: base)
        })
        route(.get, "/ui/traces/{trace_id}", access: .experiment(.read, .pathTrace("trace_id")), uiPage { [self] call, _ in
            try await tracePage(try call.pathParameter("trace_id"), base: base)
        })
        route(.get, "/ui/deployments", access: .authenticated, uiPage { [self] call, _ in
            try await deploymentsPage(call, base: base)
        })
        route(.get, "/ui/deployments/{deployment_id}", access: .registeredModel(.read, .pathDeployment("deployment_id")), uiPage { [self] call, _ in
            try await deploymentPage(try call.pathParameter("deployment_id"), base: base)
        })
        route(.get, "/ui/incidents/{incident_id}", access: .registeredModel(.read, .pathIncident("incident_id")), uiPage { [self] call, _ in
            let store = try deploymentStore()
            let i = try await store.getIncident(id: try call.pathParameter("incident_id"))
            return try await deploymentPage(i.deploymentID, base: base, incident: i)
        })
    }

    func tracesPage(_ call: Call, experimentID: String, base: String) async throws -> Page {
        let experiment = try await store.getExperiment(id: experimentID)
        let filter = call.query["filter"]?.first ?? ""
        let token = call.query["page"]?.first
        var error: String?
        var page = RepriseCore.Page<TraceInfo>(items: [], nextOffset: nil)
        do {
            page = try await traceStore().searchTraces(
                try TraceSearchQuery(experimentIDs: [experimentID], filter: filter.isEmpty ? nil : filter, orderBy: [], maxResults: 50, pageToken: token))
        } catch let e as RepriseError where e.code == .invalidParameterValue {
            error = e.message
        }
        var body: HTML = "<h1>Traces of \(experiment.name)</h1>"
        body += "<p class=\"muted\"><a href=\"\(base)/ui/experiments/\(HTML.q(experimentID))\">runs</a> · traces</p>"
        body += "<form method=\"get\" role=\"search\"><label>Filter <input type=\"search\" name=\"filter\" value=\"\(filter)\" placeholder=\"trace.status = 'ERROR' and span.type = 'LLM' and tag.team = 'search'\" aria-describedby=\"trace-filter-help\"></label> <button>Apply</button>"
        body += " <span id=\"trace-filter-help\" class=\"muted\">MLflow's trace search grammar: trace.status, trace.timestamp_ms, tag.*, metadata.*, span.name/type/status, trace.text, feedback.*</span></form>"
        if let error { body += "<p class=\"error\" role=\"alert\">\(error)</p>" }
        let rows: [[HTML]] = page.items.map { t in
            [
                "<a href=\"\(base)/ui/traces/\(HTML.q(t.traceID))\">\(t.tag(TraceKeys.name) ?? t.traceID)</a>",
                HTML.statusBadge(t.state.rawValue), "\(HTML.time(t.requestTime))",
                HTML(escaping: t.executionDuration.map { "\($0) ms" } ?? ""),
                HTML(escaping: String((t.requestPreview ?? "").prefix(120))), HTML(escaping: String((t.responsePreview ?? "").prefix(120))),
                HTML(escaping: t.tags.filter { !$0.key.hasPrefix("mlflow.") }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")),
                HTML(escaping: t.assessments.filter(\.valid).map { "\($0.name): \($0.comparableValue ?? "")" }.joined(separator: ", ")),
            ]
        }
        body += rows.isEmpty ? "<p class=\"muted\">No traces match.</p>"
            : HTML.table(["Trace", "State", "Started", "Duration", "Request", "Response", "Tags", "Assessments"], rows)
        body += Self.pager(call, first: token != nil ? "first page" : nil, next: page.nextOffset, nextLabel: "next page")
        return ("Traces · \(experiment.name)", body)
    }

    func tracePage(_ id: String, base: String) async throws -> Page {
        guard let trace = try await traceStore().getTraces(ids: [id]).first else { throw RepriseError.notFound("Trace with ID \(id) is not found.") }
        let info = trace.info
        let name = info.tag(TraceKeys.name) ?? id
        var body: HTML = "<h1>\(name)</h1>"
        body += "<p>\(HTML.statusBadge(info.state.rawValue)) <code>\(id)</code> · \(HTML.time(info.requestTime))"
        if let d = info.executionDuration { body += " · \(d) ms" }
        body += " · <a href=\"\(base)/ui/experiments/\(HTML.q(info.experimentID))/traces\">experiment \(info.experimentID)</a>"
        if let run = info.metadata(TraceKeys.sourceRun) { body += " · run <a href=\"\(base)/ui/runs/\(HTML.q(run))\">\(run)</a>" }
        body += "</p>"

        // The span tree: children under their parent, ordered by start; a bar shows when each ran.
        struct Span {
            var id: String, parent: String?, name: String, type: String, status: String, start: Int64, end: Int64?
            var attributes: [(String, JSONValue)], events: [String]
        }
        var spans: [Span] = []
        for text in trace.spans {
            let otlp = (try? JSONValue.parse(text)) ?? .null
            let d = MLflowSpanDict.from(otlp: otlp)
            let attrs = MLflowSpanDict.attributes(otlp["attributes"])
            func int(_ v: JSONValue?) -> Int64 { if case .int(let i)? = v { return i } else { return 0 } }
            let spanID = otlp["span_id"]?.stringValue ?? ""
            let parent = d["parent_span_id"]?.stringValue
            var events: [String] = []
            if case .array(let items)? = d["events"] { events = items.compactMap { $0["name"]?.stringValue } }
            let type = attrs.first { $0.0 == TraceKeys.spanType }.map { $0.1.stringValue ?? "" } ?? ""
            let status = (d["status"]?["code"]?.stringValue ?? "").replacingOccurrences(of: "STATUS_CODE_", with: "")
            spans.append(Span(
                id: spanID, parent: parent, name: d["name"]?.stringValue ?? "", type: type, status: status, start: int(d["start_time_unix_nano"]),
                end: int(d["end_time_unix_nano"]) == 0 ? nil : int(d["end_time_unix_nano"]), attributes: attrs, events: events))
        }
        let t0 = spans.map(\.start).min() ?? 0
        let t1 = max(spans.compactMap(\.end).max() ?? t0, t0 + 1)
        let known = Set(spans.map(\.id))
        var ordered: [(Span, Int)] = []
        func place(_ s: Span, _ depth: Int) {
            ordered.append((s, depth))
            for c in spans.filter({ $0.parent == s.id }).sorted(by: { $0.start < $1.start }) where depth < 64 { place(c, depth + 1) }
        }
        for root in spans.filter({ $0.parent == nil || !known.contains($0.parent!) }).sorted(by: { $0.start < $1.start }) { place(root, 0) }
        func ms(_ ns: Int64) -> String { String(format: "%.1f ms", Double(ns) / 1_000_000) }
        var rows: [[HTML]] = []
        for (s, depth) in ordered {
            let left = Double(s.start - t0) / Double(t1 - t0) * 100
            let width = max(0.5, Double((s.end ?? t1) - s.start) / Double(t1 - t0) * 100)
            let bar: HTML = "<svg viewBox=\"0 0 100 6\" width=\"240\" height=\"10\" role=\"img\" aria-label=\"runs from \(ms(s.start - t0)) for \(s.end.map { ms($0 - s.start) } ?? "?")\"><rect x=\"\(String(format: "%.2f", left))\" y=\"0\" width=\"\(String(format: "%.2f", min(width, 100 - left)))\" height=\"6\" fill=\"currentColor\"/></svg>"
            rows.append([
                Array(repeating: "<span class=\"tree\">↳</span>", count: min(depth, 8)).joined() + "<a href=\"#span-\(s.id)\">\(s.name)</a>",
                HTML(escaping: s.type), HTML.statusBadge(s.status), HTML(escaping: ms(s.start - t0)),
                HTML(escaping: s.end.map { ms($0 - s.start) } ?? "running"), bar,
            ])
        }
        body += "<h2>Spans</h2>" + (rows.isEmpty ? "<p class=\"muted\">No spans stored for this trace.</p>"
            : HTML.table(["Span", "Type", "Status", "Starts at", "Took", "Timeline"], rows))
        for (s, _) in ordered {
            body += "<section id=\"span-\(s.id)\" class=\"card\"><h3>\(s.name) <span class=\"muted\">\(s.type)</span></h3>"
            for (key, label) in [("mlflow.spanInputs", "Inputs"), ("mlflow.spanOutputs", "Outputs")] {
                if let v = s.attributes.first(where: { $0.0 == key })?.1 {
                    body += "<h4>\(label)</h4><pre>\(Self.pretty(v))</pre>"
                }
            }
            let other = s.attributes.filter { !["mlflow.spanInputs", "mlflow.spanOutputs", TraceKeys.requestID, TraceKeys.spanType].contains($0.0) }
            if !other.isEmpty {
                body += HTML.table(["Attribute", "Value"], other.map { [HTML(escaping: $0.0), "<code>\(Self.pretty($0.1))</code>"] })
            }
            if !s.events.isEmpty { body += "<p class=\"muted\">Events: \(s.events.joined(separator: ", "))</p>" }
            body += "</section>"
        }
        let assessments: [[HTML]] = info.assessments.map { a in
            [HTML(escaping: a.name), HTML(escaping: a.kind), HTML(escaping: a.comparableValue ?? ""), HTML(escaping: a.body["rationale"]?.stringValue ?? ""),
             HTML(escaping: a.body["source"]?["source_id"]?.stringValue ?? a.body["source"]?["source_type"]?.stringValue ?? ""),
             a.valid ? "<span class=\"ok\">valid</span>" : "<span class=\"muted\">overridden</span>", "\(HTML.time(a.lastUpdateTime))"]
        }
        body += "<h2>Assessments</h2>" + (assessments.isEmpty ? "<p class=\"muted\">No feedback or expectations yet.</p>"
            : HTML.table(["Name", "Kind", "Value", "Rationale", "Source", "", "Updated"], assessments))
        let tags = info.tags.filter { !$0.key.hasPrefix("mlflow.") } + info.metadata.filter { !$0.key.hasPrefix("mlflow.") }
        if !tags.isEmpty { body += "<h2>Tags and metadata</h2>" + HTML.table(["Key", "Value"], tags.map { [HTML(escaping: $0.key), HTML(escaping: $0.value)] }) }
        return ("Trace \(name)", body)
    }

    /// A JSON value for reading: strings as they are, anything else pretty-printed.
    static func pretty(_ v: JSONValue) -> String {
        if case .string(let s) = v { return s }
        if let data = try? JSONSerialization.jsonObject(with: Data(v.jsonString.utf8), options: [.fragmentsAllowed]),
            let out = try? JSONSerialization.data(withJSONObject: data, options: [.prettyPrinted, .sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes])
        {
            return String(decoding: out, as: UTF8.self)
        }
        return v.jsonString
    }

    func deploymentsPage(_ call: Call, base: String) async throws -> Page {
        let environment = call.query["environment"]?.first.flatMap { $0.isEmpty ? nil : $0 }
        let canRead = try await callerPredicate(.read, .registeredModel)
        let page = try await deploymentStore().deployments(environment: environment, maxResults: 200, offset: 0)
        let rows: [[HTML]] = page.items.filter { canRead($0.model.name) }.map { d in
            [
                "<a href=\"\(base)/ui/deployments/\(HTML.q(d.id))\">\(d.id)</a>",
                "<a href=\"?environment=\(HTML.q(d.environment))\">\(d.environment)</a>",
                "<a href=\"\(base)/ui/models/\(HTML.q(d.model.name))\">\(d.model.name)</a> v\(d.model.version)" + (d.model.alias.map { " <span class=\"muted\">@\($0)</span>" as HTML } ?? ""),
                HTML(escaping: d.prompts.map { "\($0.name) v\($0.version)" }.joined(separator: ", ")), "\(HTML.time(d.deployedTime))", HTML(escaping: d.deployedBy),
                HTML(escaping: d.note ?? ""),
            ]
        }
        var body: HTML = "<h1>Deployments\(environment.map { " to \($0)" } ?? "")</h1>"
        if environment != nil { body += "<p><a href=\"\(base)/ui/deployments\">all environments</a></p>" }
        body += rows.isEmpty ? "<p class=\"muted\">Nothing deployed yet. Record one with <code>reprise deploy record</code>.</p>"
            : HTML.table(["Deployment", "Environment", "Model", "Prompts", "Deployed", "By", "Note"], rows)
        return ("Deployments", body)
    }

    func deploymentPage(_ id: String, base: String, incident: Incident? = nil) async throws -> Page {
        let store = try deploymentStore()
        let d = try await store.getDeployment(id: id)
        var body: HTML
        if let incident {
            body = "<h1>Incident \(incident.id)</h1><p>\(HTML.statusBadge(incident.status.uppercased())) · opened \(HTML.time(incident.openedTime)) by \(incident.openedBy)</p><pre>\(incident.note)</pre>"
            if let r = incident.resolution { body += "<p>Resolved by \(incident.closedBy ?? "") \(HTML.time(incident.closedTime)): \(r)</p>" }
            body += "<p><a href=\"\(base)/ui/lineage?entity=\(HTML.q("incident:\(incident.id)"))\">Trace it back: lineage from this incident</a></p><h2>Deployment</h2>"
        } else {
            body = "<h1>Deployment \(d.id)</h1>"
        }
        var facts: [[HTML]] = [
            ["Environment", "<a href=\"\(base)/ui/deployments?environment=\(HTML.q(d.environment))\">\(d.environment)</a>"],
            ["Model", "<a href=\"\(base)/ui/models/\(HTML.q(d.model.name))\">\(d.model.name)</a> v\(d.model.version)" + (d.model.alias.map { " (asked as @\($0))" as HTML } ?? "")],
            ["Deployed", "\(HTML.time(d.deployedTime)) by \(d.deployedBy)"],
        ]
        for p in d.prompts { facts.append(["Prompt", "<a href=\"\(base)/ui/models/\(HTML.q(p.name))\">\(p.name)</a> v\(p.version)"]) }
        if let e = d.endpoint { facts.append(["Endpoint", HTML(escaping: e)]) }
        if let c = d.configDigest { facts.append(["Config SHA-256", "<code>\(c)</code>"]) }
        if let n = d.note { facts.append(["Note", HTML(escaping: n)]) }
        if let p = d.previousID { facts.append(["Replaced", "<a href=\"\(base)/ui/deployments/\(HTML.q(p))\">\(p)</a>"]) }
        body += HTML.table(["", ""], facts)
        body += "<p><a href=\"\(base)/ui/lineage?entity=\(HTML.q("deployment:\(d.id)"))\">Lineage of this deployment</a></p>"
        let measurements = try await store.deploymentMeasurements(id: d.id, key: nil, maxResults: 10_000)
        if !measurements.isEmpty {
            var byKey: [String: [DeploymentMeasurement]] = [:]
            for m in measurements { byKey[m.key, default: []].append(m) }
            body += "<h2>Measurements</h2>" + HTML.table(
                ["Key", "Points", "Latest", "Min", "Max"],
                byKey.keys.sorted().map { k in
                    let v = byKey[k]!
                    return [HTML(escaping: k), "\(v.count)", HTML(escaping: HTML.number(v.last!.value)), HTML(escaping: HTML.number(v.map(\.value).min()!)),
                            HTML(escaping: HTML.number(v.map(\.value).max()!))]
                })
        }
        let incidents = try await store.incidents(deploymentID: d.id, environment: nil, status: nil, maxResults: 100)
        if !incidents.isEmpty {
            body += "<h2>Incidents</h2>" + HTML.table(
                ["Incident", "Status", "Opened", "Note"],
                incidents.map { ["<a href=\"\(base)/ui/incidents/\(HTML.q($0.id))\">\($0.id)</a>", HTML(escaping: $0.status), "\(HTML.time($0.openedTime))", HTML(escaping: $0.note)] })
        }
        return (incident.map { "Incident \($0.id)" } ?? "Deployment \(d.id)", body)
    }
}
