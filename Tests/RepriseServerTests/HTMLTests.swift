import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import RepriseCore
import Testing

@testable import RepriseServer

/// Every user-controlled field of the UI set to one payload.
struct HostileFixture {
    static let payload = "\"'><img src=x onerror=alert(1)>"
    static var json: String { JSONValue.string(payload).jsonString }
    static var encoded: String { HTML.q(payload) }

    var exp = "", exp2 = "", a = "", b = "", model = HostileFixture.payload, token = "", cookie = "", requestID = ""

    static func send(
        _ client: some TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, _ body: String? = nil, actor: String? = nil
    ) async throws -> (HTTPResponse.Status, JSONValue) {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let actor { headers[.xRepriseActor] = actor }
        return try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { r in
            let text = String(buffer: r.body)
            return (r.status, text.isEmpty ? .null : ((try? JSONValue.parse(text)) ?? .string(text)))
        }
    }

    static func seed(_ client: some TestClientProtocol) async throws -> HostileFixture {
        var f = HostileFixture()
        let p = json
        func ok(_ r: (HTTPResponse.Status, JSONValue), _ what: String) -> JSONValue {
            #expect(r.0 == .ok || r.0 == .accepted, "\(what): \(r.1)")
            return r.1
        }
        let (_, headers, _) = try await client.page("/ui/")
        f.cookie = try #require(headers[.setCookie]?.split(separator: ";").first.map(String.init))
        f.token = String(f.cookie.dropFirst("reprise_csrf=".count))

        f.exp = try #require(ok(try await send(client, .post, "/api/2.0/mlflow/experiments/create", #"{"name": \#(p)}"#), "experiment")["experiment_id"]?.stringValue)
        f.exp2 = try #require(ok(try await send(client, .post, "/api/2.0/mlflow/experiments/create", #"{"name": "second \#(payload.dropFirst(2))"}"#), "experiment 2")["experiment_id"]?.stringValue)
        // A policy, so runs carry compliance badges.
        _ = ok(try await send(client, .put, "/api/reprise/v1/experiments/\(f.exp)/policy", #"{"mode": "soft", "required": ["baseline", "environment"]}"#), "policy")
        var ids: [String] = []
        for i in 0..<2 {
            let r = ok(try await send(client, .post, "/api/2.0/mlflow/runs/create",
                #"{"experiment_id": "\#(f.exp)", "run_name": \#(JSONValue.string("\(i) \(payload)").jsonString), "user_id": \#(p), "start_time": 1000}"#), "run")
            let id = try #require(r["run"]?["info"]?["run_id"]?.stringValue)
            ids.append(id)
            let points = (0..<3).map { #"{"key": "loss", "value": \#(1.0 / Double($0 + 1 + i)), "timestamp": 1, "step": \#($0)}"# }.joined(separator: ",")
            let tags = [
                ("mlflow.note.content", "**n** \(payload) [x](https://example.com/\(payload))"), ("t", payload), (PassportTag.commit, payload),
                (PassportTag.branch, payload), (PassportTag.dirty, "true"), (PassportTag.command, payload), (PassportTag.seed, payload),
                (PassportTag.seedPrefix + "torch", payload), (PassportTag.envOS, payload), (PassportTag.envPython, payload), (PassportTag.envGPU, payload),
                (PassportTag.owner, payload), (PassportTag.purpose, payload), ("mlflow.source.name", payload),
                (PassportTag.dataInputs, JSONValue.array([["path": .string(payload), "digest": .string(payload)]]).jsonString),
            ] + (i == 1 ? [("mlflow.parentRunId", ids[0])] : [])
            let tagJSON = tags.map { #"{"key": \#(JSONValue.string($0.0).jsonString), "value": \#(JSONValue.string($0.1).jsonString)}"# }.joined(separator: ",")
            _ = ok(try await send(client, .post, "/api/2.0/mlflow/runs/log-batch",
                #"{"run_id": "\#(id)", "metrics": [\#(points), {"key": "acc", "value": \#(0.5 + Double(i)), "timestamp": 1, "step": 0}], "params": [{"key": "p", "value": \#(JSONValue.string("\(i)\(payload)").jsonString)}, {"key": "num", "value": "\#(i)"}], "tags": [\#(tagJSON)]}"#), "log-batch")
            _ = ok(try await send(client, .post, "/api/2.0/mlflow/runs/log-inputs",
                #"{"run_id": "\#(id)", "datasets": [{"tags": [{"key": "mlflow.data.context", "value": \#(p)}], "dataset": {"name": \#(p), "digest": \#(p), "source_type": \#(p), "source": \#(p)}}]}"#), "log-inputs")
        }
        (f.a, f.b) = (ids[0], ids[1])
        _ = ok(try await send(client, .post, "/api/reprise/v1/reproductions",
            #"{"original_run_id": "\#(f.a)", "incomplete_reason": \#(p)}"#, actor: payload), "reproduction")
        // Artifacts whose names and contents carry the payload.
        let run = ok(try await send(client, .get, "/api/2.0/mlflow/runs/get?run_id=\(f.a)"), "get run")
        let root = try #require(run["run"]?["info"]?["artifact_uri"]?.stringValue?.dropFirst("mlflow-artifacts:".count))
        for (name, content) in [("dir/\(payload).txt", payload), ("t.csv", "\(payload),b\n1,\(payload)"), ("j.json", #"{"k": \#(p)}"#), ("img.png", "x")] {
            let path = (root + "/" + name).split(separator: "/").map { HTML.q(String($0)) }.joined(separator: "/")
            let status = try await client.execute(uri: RepriseAPI.proxyPrefix + "/" + path, method: .put, body: ByteBuffer(string: content)) { $0.status }
            #expect(status == .ok, "upload \(name)")
        }
        // Registry: model, version from run a, tags, description, a policy and a request, all hostile.
        _ = ok(try await send(client, .post, "/api/2.0/mlflow/registered-models/create",
            #"{"name": \#(p), "description": \#(p), "tags": [{"key": "k", "value": \#(p)}]}"#), "model")
        _ = ok(try await send(client, .post, "/api/2.0/mlflow/model-versions/create",
            #"{"name": \#(p), "source": "s3://b/m", "run_id": "\#(f.a)", "tags": [{"key": "k", "value": \#(p)}]}"#), "version")
        _ = ok(try await send(client, .post, "/api/2.0/mlflow/model-versions/create",
            #"{"name": \#(p), "source": \#(JSONValue.string("s3://b/" + payload).jsonString)}"#), "version 2")
        _ = ok(try await send(client, .post, "/api/2.0/mlflow/registered-models/alias", #"{"name": \#(p), "alias": "staging", "version": "1"}"#), "alias")
        _ = ok(try await send(client, .put, "/api/reprise/v1/alias-policies",
            #"{"model": \#(p), "alias": "production", "required_approvals": 2, "approvers": [\#(p), "carol"]}"#), "policy")
        let req = ok(try await send(client, .post, "/api/reprise/v1/approval-requests",
            #"{"model": \#(p), "alias": "production", "version": "1", "rationale": \#(p)}"#, actor: payload), "request")
        f.requestID = try #require(req["approval_request"]?["id"]?.stringValue)
        let (vs, _, vb) = try await client.page("/ui/approvals/\(f.requestID)/approve", method: .post,
            form: [("rationale", payload), ("csrf", f.token), ("actor", "carol")], cookie: f.cookie)
        #expect(vs == .seeOther, "\(vb)")
        return f
    }

    /// Each page of the UI over the fixture, with hostile query strings too.
    func pages() -> [String] {
        let e = Self.encoded
        return [
            "/ui/", "/ui/?q=\(e)", "/ui/?view=deleted",
            "/ui/experiments/\(exp)", "/ui/experiments/\(exp)?params=p,num&metrics=loss,acc&tags=t,\(e)&range=1&filter=\(e)&\(e)=\(e)",
            "/ui/experiments/\(exp)?filter=params.p%20%3D%20%27x%27&size=1", "/ui/experiments/\(exp)?size=1&page=MQ%3D%3D",
            "/ui/runs?experiments=\(exp),\(exp2)",
            "/ui/runs/\(a)", "/ui/runs/\(b)", "/ui/runs/\(a)/runbook",
            "/ui/runs/\(a)/artifacts", "/ui/runs/\(a)/artifacts?path=dir", "/ui/runs/\(a)/artifacts?path=dir/\(e).txt",
            "/ui/runs/\(a)/artifacts?path=t.csv", "/ui/runs/\(a)/artifacts?path=j.json", "/ui/runs/\(a)/artifacts?path=img.png",
            "/ui/compare?runs=\(a),\(b)", "/ui/compare?runs=\(a),\(b)&baseline=\(a)&diff=1&\(e)=\(e)",
            "/ui/compare?runs=\(a),\(b)&x=metrics.acc&y=params.num&axes=metrics.acc,params.num,\(e)",
            "/ui/models", "/ui/models/\(HTML.q(model))", "/ui/approvals",
            "/ui/lineage?entity=run:\(a)", "/ui/lineage?entity=\(HTML.q("model_version:\(model)/1"))", "/ui/lineage?entity=\(e)",
            "/ui/runs/\(e)", "/ui/experiments/\(e)", "/ui/models/\(e)x", "/ui/compare?runs=\(e),\(e)x",
            "/ui/experiments/\(exp)?tags=t,\(e)",
            // Charts, images, model versions, prompts, logged models: hostile names, keys, bounds and options.
            "/ui/charts?runs=\(a),\(b)", "/ui/charts?runs=\(a)&metrics=loss,\(e)&from=-1e300&to=1e300&log=1&smooth=0.5&xaxis=relative",
            "/ui/charts?runs=\(a)&xaxis=\(e)", "/ui/charts?runs=\(a)&smooth=\(e)", "/ui/charts?runs=\(a)&from=\(e)", "/ui/charts?runs=\(e)",
            "/ui/runs/\(a)?xaxis=time&from=0&to=9e18", "/ui/experiments/\(exp)/chart", "/ui/experiments/\(exp)/chart?metric=\(e)&size=\(e)&order=\(e)",
            "/ui/experiments/\(exp)/chart?filter=\(e)", "/ui/experiments/\(exp)/models",
            "/ui/runs/\(a)/images?key=\(e)&step=\(e)", "/ui/runs/\(a)/images?key=..%2F..%2Fetc%2Fpasswd%00&step=-9223372036854775808",
            "/ui/models/\(HTML.q(model))/versions/1", "/ui/models/\(HTML.q(model))/versions/\(e)", "/ui/models/\(e)x/versions/1",
            "/ui/prompts/\(e)", "/ui/prompts/\(e)/diff?from=\(e)&to=\(e)",
        ]
    }
}

@Suite("HTML")
struct HTMLTests {
    static let hostile = "<script>\"'&"
    static let hostileEscaped = "&lt;script&gt;&quot;&#39;&amp;"

    @Test func interpolatedValuesAreEscaped() {
        let s = Self.hostile
        let h: HTML = "<p title=\"\(s)\">\(s)</p>"
        #expect(h.rendered == "<p title=\"\(Self.hostileEscaped)\">\(Self.hostileEscaped)</p>")
        struct Thing: CustomStringConvertible { var description: String { "<b>" } }
        let kinds: HTML = "\(s.dropFirst(0))|\(42)|\(Int64(-7))|\(1.5)|\(Thing())"
        #expect(kinds.rendered == "\(Self.hostileEscaped)|42|-7|1.5|&lt;b&gt;")
        #expect(HTML(escaping: s).rendered == Self.hostileEscaped)
    }

    @Test func literalsGoInAsWrittenAndNestedMarkupIsNotEscapedTwice() {
        #expect(("<i class=\"x\">&amp;</i>" as HTML).rendered == "<i class=\"x\">&amp;</i>")
        let inner: HTML = "<b>\("a&b")</b>"
        let outer: HTML = "<p>\(inner)</p>"
        #expect(outer.rendered == "<p><b>a&amp;b</b></p>")
        #expect([inner, "<br>", HTML(escaping: "<")].joined(separator: ", ").rendered == "<b>a&amp;b</b>, <br>, &lt;")
        #expect([inner, inner].joined().rendered == "<b>a&amp;b</b><b>a&amp;b</b>" && [HTML]().joined().isEmpty)
        var list: HTML = "<ul>"
        list += "<li>\("<x>")</li>"
        #expect((list + "</ul>").rendered == "<ul><li>&lt;x&gt;</li></ul>")
        #expect(HTML.table(["<i>k</i>"], [["\("<v>")"]], rowClasses: ["\"c"], caption: "<c>").rendered
            == "<table><caption class=\"muted\">&lt;c&gt;</caption><thead><tr><th scope=\"col\"><i>k</i></th></tr></thead><tbody><tr class=\"&quot;c\"><td>&lt;v&gt;</td></tr></tbody></table>")
    }

    @Test func unsafeRawIsTheOnlyUnescapedPath() throws {
        let s = Self.hostile
        #expect(HTML(unsafeRaw: s).rendered == s)
        let interpolated: HTML = "\(s)"
        #expect(interpolated.rendered == Self.hostileEscaped)
        // The page takes HTML (a String body does not compile); its title is text.
        let page = HTML.page(s, base: s, body: "<main-part>\(s)</main-part>").rendered
        #expect(!page.contains(s) && page.contains("<main-part>\(Self.hostileEscaped)</main-part>") && page.contains("<title>\(Self.hostileEscaped) · Reprise</title>"))
        #expect(!Markdown.render("# \(s)\n\n- \(s)\n\n```\n\(s)\n```\n[a](\(s))").rendered.contains(s))

        // Every raw path in the sources is one of these, each with its reason in a comment above it.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let sources = root.appendingPathComponent("Sources")
        let files = try #require(FileManager.default.enumerator(atPath: sources.path)).compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }
        var uses: [String: Int] = [:]
        for file in files {
            let lines = try String(contentsOf: sources.appendingPathComponent(file), encoding: .utf8).components(separatedBy: "\n")
            for (n, line) in lines.enumerated() where line.contains("HTML(unsafeRaw:") && !line.trimmingCharacters(in: .whitespaces).hasPrefix("//") {
                uses[file, default: 0] += 1
                #expect(lines[max(0, n - 3)..<n].contains { $0.contains("Raw on purpose") }, "\(file):\(n + 1) makes raw HTML without saying why")
            }
            if !file.hasSuffix("UI/HTML.swift") && file.hasPrefix("RepriseServer/UI/") {
                #expect(!lines.contains { $0.contains("htmlEscape(") || $0.contains("HTML.esc(") }, "\(file) escapes by hand")
            }
        }
        #expect(uses == ["RepriseServer/UI/Markdown.swift": 1, "RepriseServer/UI/UIRoutes.swift": 1], "\(uses)")
    }

    /// Every page over data whose every user-controlled field is the payload: the payload only ever
    /// appears escaped.
    @Test func noPageLetsTheHostilePayloadThrough() async throws {
        try await TestServer().test { client in
            let f = try await HostileFixture.seed(client)
            let e = "&quot;&#39;&gt;&lt;img src=x onerror=alert(1)&gt;"
            var pages: [String: (HTTPResponse.Status, String)] = [:]
            for uri in f.pages() {
                let (status, _, html) = try await client.page(uri, cookie: f.cookie)
                pages[uri] = (status, html)
            }
            // The form error pages: refused, and one echoing a hostile Referer.
            let (rs, _, refused) = try await client.page("/ui/experiments", method: .post, form: [("name", HostileFixture.payload)])
            pages["refused form"] = (rs, refused)
            let headers: HTTPFields = [.contentType: "application/x-www-form-urlencoded", .cookie: f.cookie, .referer: "http://h/\(HostileFixture.payload)"]
            pages["failed form"] = try await client.execute(
                uri: "/ui/experiments", method: .post, headers: headers, body: ByteBuffer(string: "name=&csrf=\(f.token)")
            ) { ($0.status, String(buffer: $0.body)) }

            for (uri, (status, html)) in pages {
                #expect([.ok, .badRequest, .notFound, .forbidden].contains(status), "\(uri): \(status)")
                #expect(!html.contains(HostileFixture.payload) && !html.contains("<img src=x") && !html.contains("'>"), "\(uri) lets the payload through")
                if status == .ok && uri != "/ui/?view=deleted" { #expect(html.contains(e), "\(uri) does not show the payload") }
            }
            // Each field is on its page, escaped in place.
            for (uri, snippets) in [
                ("/ui/", [">\(e)</a>"]), ("/ui/?q=\(HostileFixture.encoded)", ["name=\"q\" value=\"\(e)\""]),
                ("/ui/experiments/\(f.exp)", ["<h1>\(e)</h1>", "<td>\(e)</td>", "<td>0\(e)</td>", "required value=\"\(e)\""]),
                (f.pages()[4], ["name=\"\(e)\" value=\"\(e)\"", "value=\"t,\(e)\"", "role=\"alert\">Invalid filter &#39;\(e)&#39;"]),
                ("/ui/experiments/\(f.exp)?tags=t,\(HostileFixture.encoded)", ["<th scope=\"col\">\(e)</th>", "<td>\(e)</td>"]),
                ("/ui/runs/\(f.a)", [
                    "<h1>0 \(e) <span", "<td>Owner</td><td>\(e)</td>", "<td>Purpose</td><td>\(e)</td>", "<td>Source</td><td>\(e)</td>",
                    "on \(e) <span class=\"badge warn\">dirty</span>", "<br><code>\(e)</code>", "root \(e)", "<strong>n</strong> \(e)",
                    "aria-label=\"notes\">**n** \(e)", "<td>p</td><td>0\(e)</td>", "<tbody><tr><td>\(e)</td><td><code>", "title=\"missing: ",
                ]),
                ("/ui/runs/\(f.a)/runbook", ["<h1>Run book: 0 \(e)</h1>"]),
                (f.pages()[12], [">\(e).txt</a>"]), (f.pages()[13], ["<pre>\(e)</pre>"]), (f.pages()[14], ["<th scope=\"col\">\(e)</th>", "<td>\(e)</td>"]),
                ("/ui/compare?runs=\(f.a),\(f.b)", ["<title>0 \(e)</title>", ">0 \(e)</a>"]), (f.pages()[18], ["name=\"\(e)\" value=\"\(e)\""]),
                ("/ui/models", [">\(e)</a>", "<td>\(e)</td>"]),
                ("/ui/models/\(HostileFixture.encoded)", [
                    "<h1>\(e)</h1>", "<p>\(e)</p>", "<td>k</td><td>\(e)</td>", "s3://b/\(e)", "k=\(e)", "from \(e), carol", "requested by \(e) on",
                    "<strong>\(e)@production → v1</strong>", "approve by carol on ", "UTC: \(e)",
                ]),
                ("/ui/approvals", ["requested by \(e) on"]), ("/ui/lineage?entity=\(HostileFixture.encoded)", ["Invalid entity &#39;\(e)&#39;"]),
                ("failed form", ["<a href=\"http://h/\(e)\">Back</a>"]),
            ] {
                let html = try #require(pages[uri]?.1, "\(uri)")
                for snippet in snippets { #expect(html.contains(snippet), "\(uri) lacks \(snippet)") }
            }
        }
    }
}
