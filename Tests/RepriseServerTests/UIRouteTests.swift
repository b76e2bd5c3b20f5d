import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import RepriseCore
import Testing

@testable import RepriseServer

extension TestClientProtocol {
    /// GET (or POST a form) and return status, headers and body text.
    func page(_ uri: String, method: HTTPRequest.Method = .get, form: [(String, String)]? = nil, cookie: String? = nil, origin: String? = nil)
        async throws -> (HTTPResponse.Status, HTTPFields, String)
    {
        var headers: HTTPFields = [:]
        if let cookie { headers[.cookie] = cookie }
        if let origin { headers[.origin] = origin }
        var body: ByteBuffer?
        if let form {
            headers[.contentType] = "application/x-www-form-urlencoded"
            body = ByteBuffer(string: form.map { "\(HTML.q($0.0))=\(HTML.q($0.1))" }.joined(separator: "&"))
        }
        return try await execute(uri: uri, method: method, headers: headers, body: body) { r in (r.status, r.headers, String(buffer: r.body)) }
    }
}

@Suite("Web UI routes")
struct UIRouteTests {
    static let hostile = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>"

    /// An experiment, two runs with hostile strings everywhere, metric histories and a note.
    func seed(_ client: some TestClientProtocol) async throws -> (exp: String, a: String, b: String) {
        let (_, e) = try await client.json(.post, "/api/2.0/mlflow/experiments/create", #"{"name": "exp \#(Self.hostile.replacingOccurrences(of: "\"", with: "\\\""))"}"#)
        let exp = try #require(e["experiment_id"]?.stringValue)
        var ids: [String] = []
        for (i, c) in ["0.5", "1.0"].enumerated() {
            let (_, r) = try await client.json(.post, "/api/2.0/mlflow/runs/create", #"{"experiment_id": "\#(exp)", "run_name": "run\#(i) <b>bold</b>", "start_time": 1000}"#)
            let id = try #require(r["run"]?["info"]?["run_id"]?.stringValue)
            ids.append(id)
            let points = (0..<3).map { #"{"key": "loss", "value": \#(1.0 / Double($0 + 1 + i)), "timestamp": 1, "step": \#($0)}"# }.joined(separator: ",")
            let note = "**important** <img src=x onerror=alert(2)> [bad](javascript:alert(3)) [good](https://example.com/a?b=1)"
            try await client.json(
                .post, "/api/2.0/mlflow/runs/log-batch",
                #"{"run_id": "\#(id)", "metrics": [\#(points), {"key": "acc", "value": 0.9, "timestamp": 1, "step": 0}], "params": [{"key": "C", "value": "\#(c)"}, {"key": "same", "value": "<u>same</u>"}], "tags": [{"key": "mlflow.note.content", "value": "\#(note)"}, {"key": "t", "value": "<i>v</i>"}]}"#)
        }
        return (exp, ids[0], ids[1])
    }

    @Test func pagesRenderAndEscapeEverything() async throws {
        try await TestServer().test { client in
            let (exp, a, b) = try await seed(client)
            let (s0, h0, home) = try await client.page("/ui/")
            #expect(s0 == .ok && h0[.contentType]?.hasPrefix("text/html") == true)
            #expect(h0[.contentSecurityPolicy]?.contains("script-src 'self'") == true && h0[.setCookie]?.contains("reprise_csrf=") == true)
            #expect(home.contains("exp &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"))
            #expect(home.contains("Default"))

            for (uri, expected) in [
                ("/ui/experiments/\(exp)", ["run0 &lt;b&gt;bold&lt;/b&gt;", "&lt;u&gt;same&lt;/u&gt;", "Export CSV", "Compare selected"]),
                ("/ui/runs/\(a)", ["data-chart=\"loss\" data-points=\"3\"", "<strong>important</strong>", "&lt;img src=x onerror=alert(2)&gt;",
                                   "href=\"https://example.com/a?b=1\"", "&lt;i&gt;v&lt;/i&gt;", "no passport", "Edit notes"]),
                ("/ui/compare?runs=\(a),\(b)", ["Differences only", "data-chart=\"loss\" data-points=\"6\"", "Parallel coordinates", "data-chart=\"scatter\""]),
                ("/ui/runs/\(a)/artifacts", ["Artifacts", "No artifacts yet"]),
                ("/ui/models", ["Registered models"]), ("/ui/approvals", ["Nothing is waiting"]),
            ] {
                let (status, _, html) = try await client.page(uri)
                #expect(status == .ok, "\(uri)")
                for e in expected { #expect(html.contains(e), "\(uri) lacks \(e)") }
                #expect(!html.contains("<script>alert") && !html.contains("<img src=x") && !html.lowercased().contains("href=\"javascript") && !html.contains("<b>bold") && !html.contains("<u>same"), "\(uri)")
            }
            // Runs of several experiments in one table.
            let (_, e2) = try await client.json(.post, "/api/2.0/mlflow/experiments/create", #"{"name": "second"}"#)
            let exp2 = try #require(e2["experiment_id"]?.stringValue)
            try await client.json(.post, "/api/2.0/mlflow/runs/create", #"{"experiment_id": "\#(exp2)", "run_name": "other-exp-run", "start_time": 2000}"#)
            let (ms, _, multi) = try await client.page("/ui/runs?experiments=\(exp),\(exp2)")
            #expect(ms == .ok && multi.contains("other-exp-run") && multi.contains("run0 &lt;b&gt;") && multi.contains("second"))
            // Differences only: C differs, p<x> does not.
            let (_, _, diff) = try await client.page("/ui/compare?runs=\(a),\(b)&diff=1")
            #expect(diff.contains(">C<") && !diff.contains("&lt;u&gt;same"))
            // A bad filter is an inline error, not a failure.
            let (fs, _, filtered) = try await client.page("/ui/experiments/\(exp)?filter=metrics.acc%20%3E%3E%201")
            #expect(fs == .ok && filtered.contains("class=\"error\""))
            let (_, _, good) = try await client.page("/ui/experiments/\(exp)?filter=params.C%20%3D%20%270.5%27")
            #expect(good.contains("run0") && !good.contains("run1"))
            // Sorting and paging keep working at any page size.
            let (_, _, paged) = try await client.page("/ui/experiments/\(exp)?size=1&order=params.%60C%60%20DESC")
            #expect(paged.contains("run1") && !paged.contains("run0") && paged.contains("rel=\"next\""))
            // Min and max of each shown metric on demand: loss went 1, 1/2, 1/3 for run0.
            let (_, _, ranged) = try await client.page("/ui/experiments/\(exp)?metrics=loss&range=1&filter=params.C%20%3D%20%270.5%27")
            #expect(ranged.contains("(0.333333–1)"))
            // The run book, as a page and as files.
            let (bs, _, book) = try await client.page("/ui/runs/\(a)/runbook")
            #expect(bs == .ok && book.contains("<h2>Parameters</h2>") && book.contains("&lt;u&gt;same&lt;/u&gt;") && !book.contains("<u>same"))
            let (ss, sh, script) = try await client.page("/ui/runs/\(a)/reproduce.sh")
            #expect(ss == .ok && sh[.contentDisposition]?.contains("attachment") == true && script.hasPrefix("#!/usr/bin/env bash"))
            #expect(script.contains("reproduce \(a)"))
            // The lineage page draws the graph.
            let (ls, _, lineage) = try await client.page("/ui/lineage?entity=run:\(a)")
            #expect(ls == .ok && lineage.contains("data-chart=\"lineage\""))
            // CSV of what is shown, with spreadsheet formulas neutralised.
            let (cs, ch, csv) = try await client.page("/ui/experiments/\(exp)?format=csv&params=C&metrics=loss&tags=t")
            #expect(cs == .ok && ch[.contentType]?.hasPrefix("text/csv") == true)
            #expect(csv.hasPrefix("run_id,run_name,status,start_time,end_time,user,params.C,metrics.loss,tags.t\r\n"))
            #expect(csv.contains(",0.5,") && csv.contains("<i>v</i>"))
            // Unknown things are HTML errors with the right status.
            let (ns, _, nf) = try await client.page("/ui/runs/nope")
            #expect(ns == .notFound && nf.contains("Run with id=nope not found"))
            let (cs2, _, _) = try await client.page("/ui/compare?runs=\(a)")
            #expect(cs2 == .badRequest)
        }
    }

    @Test func formsNeedTheTokenAndRecordTheActor() async throws {
        try await TestServer().test { client in
            let (_, headers, _) = try await client.page("/ui/")
            let cookie = try #require(headers[.setCookie]?.split(separator: ";").first.map(String.init))
            let token = String(cookie.dropFirst("reprise_csrf=".count))
            // No token, wrong token, foreign origin: refused, nothing created.
            for (form, c, origin) in [
                ([("name", "x1"), ("actor", "mallory")], cookie, nil as String?),
                ([("name", "x1"), ("csrf", "0123456789abcdef0123456789abcdef"), ("actor", "mallory")], cookie, nil),
                ([("name", "x1"), ("csrf", token), ("actor", "mallory")], cookie, "https://evil.example"),
                ([("name", "x1"), ("csrf", token)], nil, nil),
            ] {
                let (status, _, _) = try await client.page("/ui/experiments", method: .post, form: form, cookie: c, origin: origin)
                #expect(status == .forbidden)
            }
            let (_, list) = try await client.json(.get, "/api/2.0/mlflow/experiments/search?max_results=100")
            #expect(!list.jsonString.contains("x1"))

            let (status, h, _) = try await client.page("/ui/experiments", method: .post, form: [("name", "from the UI"), ("csrf", token), ("actor", "alice")], cookie: cookie)
            #expect(status == .seeOther && h[.location]?.hasPrefix("/ui/experiments/") == true)
            let id = String(h[.location]!.dropFirst("/ui/experiments/".count))
            let (_, events) = try await client.json(.get, "/api/reprise/v1/audit/events?entity_type=experiment&entity_id=\(id)")
            guard case .array(let list)? = events["events"] else { Issue.record("no events: \(events)"); return }
            #expect(list.first?["actor"]?.stringValue == "alice" && list.first?["action"]?.stringValue == "experiment.create")

            // Notes are saved through the form.
            let (_, r) = try await client.json(.post, "/api/2.0/mlflow/runs/create", #"{"experiment_id": "\#(id)", "start_time": 1}"#)
            let run = try #require(r["run"]?["info"]?["run_id"]?.stringValue)
            let (ns, _, _) = try await client.page("/ui/runs/\(run)/note", method: .post, form: [("note", "# Findings\n- one"), ("csrf", token), ("actor", "bob")], cookie: cookie)
            #expect(ns == .seeOther)
            let (_, _, runPage) = try await client.page("/ui/runs/\(run)", cookie: cookie)
            #expect(runPage.contains("<h3>Findings</h3>") && runPage.contains("<li>one</li>"))
        }
    }

    @Test func approvalsFromTheRegistryPage() async throws {
        try await TestServer().test { client in
            let (_, headers, _) = try await client.page("/ui/")
            let cookie = try #require(headers[.setCookie]?.split(separator: ";").first.map(String.init))
            let token = String(cookie.dropFirst("reprise_csrf=".count))
            try await client.json(.post, "/api/2.0/mlflow/registered-models/create", #"{"name": "fraud"}"#)
            try await client.json(.post, "/api/2.0/mlflow/model-versions/create", #"{"name": "fraud", "source": "s3://b/m"}"#)
            try await client.json(.put, "/api/reprise/v1/alias-policies", #"{"model": "fraud", "alias": "production", "required_approvals": 1, "approvers": ["carol"]}"#)
            let (_, req) = try await client.json(.post, "/api/reprise/v1/approval-requests", #"{"model": "fraud", "alias": "production", "version": "1", "rationale": "ship <it>"}"#)
            let id = try #require(req["approval_request"]?["id"]?.stringValue)
            let (_, _, model) = try await client.page("/ui/models/fraud", cookie: cookie)
            #expect(model.contains("ship &lt;it&gt;") && model.contains("/ui/approvals/\(id)/approve") && model.contains("Audit history"))
            let (_, _, open) = try await client.page("/ui/approvals", cookie: cookie)
            #expect(open.contains("fraud@production"))
            // Someone who is not an approver is refused with the reason; carol's approval moves the alias.
            let (ds, _, denied) = try await client.page("/ui/approvals/\(id)/approve", method: .post, form: [("rationale", "ok"), ("csrf", token), ("actor", "dave")], cookie: cookie)
            #expect(ds == .forbidden && denied.contains("dave"))
            let (s, _, _) = try await client.page("/ui/approvals/\(id)/approve", method: .post, form: [("rationale", "checked"), ("csrf", token), ("actor", "carol")], cookie: cookie)
            #expect(s == .seeOther)
            let (_, alias) = try await client.json(.get, "/api/2.0/mlflow/registered-models/alias?name=fraud&alias=production")
            #expect(alias["model_version"]?["version"]?.stringValue == "1")
            let (_, _, after) = try await client.page("/ui/models/fraud", cookie: cookie)
            #expect(after.contains("@production") && after.contains("lineage graph"))
        }
    }

    @Test func staticPrefixIsHonoured() async throws {
        try await TestServer(staticPrefix: "/mlflow").test { client in
            // `/` hands MLflow's #/… links to the router script, under the prefix; without JavaScript it refreshes to /ui/.
            let (s, _, entry) = try await client.page("/mlflow/")
            #expect(s == .ok && entry.contains("data-base=\"/mlflow\"") && entry.contains("src=\"/mlflow/ui/static/route.js\""))
            #expect(entry.contains("url=/mlflow/ui/\""))
            let (js, _, script) = try await client.page("/mlflow/ui/static/route.js")
            #expect(js == .ok && script.contains("location.replace(base + to)"))
            let (_, _, home) = try await client.page("/mlflow/ui/")
            #expect(home.contains("href=\"/mlflow/ui/models\"") && home.contains("action=\"/mlflow/ui/experiments\""))
        }
    }
}
