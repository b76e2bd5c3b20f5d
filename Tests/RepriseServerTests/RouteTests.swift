import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import RepriseArtifacts
import RepriseClient
import RepriseCore
import RepriseSQL
import RepriseSQLite
import RepriseServer
import RepriseTestSupport
import Testing

/// A server on a fresh SQLite file and artifact folder, tested through HummingbirdTesting.
struct TestServer {
    let dir: TempDirectory
    let api: RepriseAPI
    let store: SQLTrackingStore

    init(serveArtifacts: Bool = true, staticPrefix: String = "") async throws {
        dir = try TempDirectory(prefix: "reprise-routes")
        store = SQLTrackingStore(
            driver: try SQLiteDriver(path: dir.path + "/reprise.db"),
            artifacts: ArtifactRootPolicy(defaultRoot: serveArtifacts ? "mlflow-artifacts:/" : dir.path + "/artifacts", workingDirectory: dir.path))
        try await store.migrate()
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        api = RepriseAPI(
            store: store, registry: store, governance: store, artifacts: serveArtifacts ? LocalArtifactRepository(root: dir.path + "/artifacts") : nil,
            repro: store, config: ServerConfiguration(staticPrefix: staticPrefix, serveArtifacts: serveArtifacts, localArtifactRoots: [dir.path + "/artifacts"]), logger: logger,
            workingDirectory: dir.path)
    }

    func test(_ mode: TestingSetup = .router, _ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        defer { dir.remove() }
        try await buildApplication(api: api, logger: Logger(label: "test")).test(mode, body)
    }
}

extension TestClientProtocol {
    @discardableResult
    func json(_ method: HTTPRequest.Method, _ uri: String, _ body: String? = nil, contentType: String? = "application/json")
        async throws -> (HTTPResponse.Status, JSONValue)
    {
        var headers: HTTPFields = [:]
        if let contentType { headers[.contentType] = contentType }
        return try await execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { r in
            let text = String(buffer: r.body)
            return (r.status, text.isEmpty ? .null : ((try? JSONValue.parse(text)) ?? .string(text)))
        }
    }
}

func errorCode(_ v: JSONValue) -> String? { v["error_code"]?.stringValue }

extension JSONValue {
    var items: [JSONValue] { if case .array(let a) = self { a } else { [] } }
    var integer: Int64? { if case .int(let i) = self { i } else { nil } }
}

@Suite("Routes")
struct RouteTests {
    @Test func metaRoutes() async throws {
        try await TestServer().test { client in
            try await client.execute(uri: "/health", method: .get) { r in
                #expect(r.status == .ok)
                #expect(String(buffer: r.body) == "OK")
            }
            try await client.execute(uri: "/version", method: .get) { r in #expect(String(buffer: r.body) == "3.17.2") }
            try await client.execute(uri: "/ready", method: .get) { r in #expect(r.status == .ok) }
            let (status, info) = try await client.json(.get, "/api/3.0/mlflow/server-info")
            #expect(status == .ok)
            #expect(info["multipart_uploads_enabled"] == .bool(false))
            let (s2, nf) = try await client.json(.get, "/api/2.0/mlflow/nope")
            #expect(s2 == .notFound)
            #expect(errorCode(nf) == "ENDPOINT_NOT_FOUND")
            let (s3, _) = try await client.json(.get, "/api/2.0/mlflow/runs/create")
            #expect(s3 == .methodNotAllowed)
        }
    }

    @Test func experimentsOverRESTAndAjaxTwin() async throws {
        try await TestServer().test { client in
            let (s, created) = try await client.json(.post, "/api/2.0/mlflow/experiments/create", #"{"name":"e1","tags":[{"key":"a","value":"b"}]}"#)
            #expect(s == .ok)
            #expect(created["experiment_id"] == .string("1"))
            let (_, got) = try await client.json(.get, "/ajax-api/2.0/mlflow/experiments/get?experiment_id=1")
            #expect(got["experiment"]?["name"] == .string("e1"))
            #expect(got["experiment"]?["artifact_location"] == .string("mlflow-artifacts:/1"))
            let (s404, missing) = try await client.json(.get, "/api/2.0/mlflow/experiments/get-by-name?experiment_name=zzz")
            #expect(s404 == .notFound && errorCode(missing) == "RESOURCE_DOES_NOT_EXIST")
            let (sDup, dup) = try await client.json(.post, "/api/2.0/mlflow/experiments/create", #"{"name":"e1"}"#)
            #expect(sDup == .badRequest && errorCode(dup) == "RESOURCE_ALREADY_EXISTS")
            let (sMissing, m) = try await client.json(.post, "/api/2.0/mlflow/experiments/create", "{}")
            #expect(sMissing == .badRequest)
            #expect(m["message"]?.stringValue?.hasPrefix("Missing value for required parameter 'name'") == true)
            let (sType, t) = try await client.json(.post, "/api/2.0/mlflow/experiments/create", #"{"name":"x","artifact_location":9.0}"#)
            #expect(sType == .badRequest)
            #expect(t["message"]?.stringValue?.hasPrefix("Invalid value 9.0 for parameter 'artifact_location' supplied") == true)
            let (_, search) = try await client.json(.post, "/api/2.0/mlflow/experiments/search", #"{"max_results":1000,"filter":"name = 'e1'"}"#)
            if case .array(let items)? = search["experiments"] { #expect(items.count == 1) } else { Issue.record("no experiments") }
            let (sZero, _) = try await client.json(.post, "/api/2.0/mlflow/experiments/search", "{}")
            #expect(sZero == .badRequest)
        }
    }

    @Test func badInputNeverGives5xx() async throws {
        try await TestServer().test { client in
            let cases: [(HTTPRequest.Method, String, String?, String?)] = [
                (.post, "/api/2.0/mlflow/runs/create", "{not json", "application/json"),
                (.post, "/api/2.0/mlflow/runs/create", "[1,2]", "application/json"),
                (.post, "/api/2.0/mlflow/runs/create", #"{"experiment_id":"0"}"#, "text/plain"),
                (.post, "/api/2.0/mlflow/runs/create", #"{"experiment_id":"0"}"#, nil),
                (.post, "/api/2.0/mlflow/runs/log-metric", #"{"run_id":31,"key":"m","value":1,"timestamp":1}"#, "application/json"),
                (.post, "/api/2.0/mlflow/runs/log-metric", #"{"run_id":"abc","key":"m","value":"x","timestamp":1}"#, "application/json"),
                (.post, "/api/2.0/mlflow/runs/search", #"{"experiment_ids":["abc"]}"#, "application/json"),
                (.post, "/api/2.0/mlflow/runs/search", #"{"experiment_ids":["0"],"filter":"a = 'b' OR c = 'd'"}"#, "application/json"),
                (.post, "/api/2.0/mlflow/runs/search", #"{"experiment_ids":["0"],"max_results":50001}"#, "application/json"),
                (.post, "/api/2.0/mlflow/runs/search", #"{"experiment_ids":["0"],"page_token":"@@@"}"#, "application/json"),
                (.get, "/api/2.0/mlflow/experiments/get?experiment_id=abc", nil, nil),
                (.get, "/api/2.0/mlflow/logged-models/m-nope?allow_deleted=maybe", nil, nil),
            ]
            for (method, uri, body, type) in cases {
                let (status, v) = try await client.json(method, uri, body, contentType: type)
                #expect(status == .badRequest, "\(uri) \(body ?? "")")
                #expect(errorCode(v) == "INVALID_PARAMETER_VALUE", "\(uri) \(v)")
            }
            let (s, v) = try await client.json(.get, "/api/2.0/mlflow/runs/get?run_id=deadbeef")
            #expect(s == .notFound && v["message"] == .string("Run with id=deadbeef not found"))
        }
    }

    @Test func runLifecycleAndBatchAtomicity() async throws {
        try await TestServer().test { client in
            let (_, created) = try await client.json(.post, "/api/2.0/mlflow/runs/create", #"{"experiment_id":"0","run_name":"r","start_time":10}"#)
            let runID = try #require(created["run"]?["info"]?["run_id"]?.stringValue)
            try await client.json(.post, "/api/2.0/mlflow/runs/log-metric", #"{"run_id":"\#(runID)","key":"m","value":"NaN","timestamp":5}"#)
            try await client.json(.post, "/api/2.0/mlflow/runs/log-metric", #"{"run_id":"\#(runID)","key":"big","value":"Infinity","timestamp":5}"#)
            let metrics = (0..<1001).map { #"{"key":"k","value":\#($0),"timestamp":1,"step":\#($0)}"# }.joined(separator: ",")
            let (sBig, big) = try await client.json(.post, "/api/2.0/mlflow/runs/log-batch", #"{"run_id":"\#(runID)","metrics":[\#(metrics)]}"#)
            #expect(sBig == .badRequest)
            #expect(big["message"]?.stringValue?.hasPrefix("A batch logging request can contain at most 1000 metrics") == true)
            let (sMissing, missing) = try await client.json(
                .post, "/api/2.0/mlflow/runs/log-batch", #"{"run_id":"\#(runID)","metrics":[{"key":"ok","value":1,"timestamp":1},{"key":"x","value":1}]}"#)
            #expect(sMissing == .badRequest)
            #expect(missing["message"]?.stringValue?.hasPrefix("Missing value for required parameter 'metrics[1].timestamp'") == true)
            let (sDup, _) = try await client.json(
                .post, "/api/2.0/mlflow/runs/log-batch", #"{"run_id":"\#(runID)","params":[{"key":"q","value":"1"},{"key":"q","value":"2"}]}"#)
            #expect(sDup == .badRequest)
            let (_, run) = try await client.json(.get, "/api/2.0/mlflow/runs/get?run_uuid=\(runID)&run_id=\(runID)")
            guard case .array(let latest)? = run["run"]?["data"]?["metrics"] else {
                Issue.record("no metrics")
                return
            }
            // Nothing from the rejected batches; NaN as a string, +inf clamped.
            #expect(latest.count == 2)
            #expect(latest.contains { $0["key"] == "m" && $0["value"] == .string("NaN") })
            #expect(latest.contains { $0["key"] == "big" && $0["value"] == .double(.greatestFiniteMagnitude) })
            #expect(run["run"]?["data"]?["params"] == nil)
            let (_, updated) = try await client.json(.post, "/api/2.0/mlflow/runs/update", #"{"run_id":"\#(runID)","status":"FINISHED","end_time":20}"#)
            #expect(updated["run_info"]?["status"] == "FINISHED")
            #expect(updated["run_info"]?["end_time"] == .int(20))
        }
    }

    /// A history longer than one piece of the streamed body comes back whole over real HTTP, in
    /// order, with MLflow's values for NaN, ±inf and integral values, and pages by token.
    static func historyValue(_ i: Int) -> Double {
        i == 7 ? .nan : i == 8 ? .infinity : i == 9 ? -.infinity : i % 3 == 0 ? Double(i) : Double(i) / 7
    }

    @Test func longHistoriesStreamWhole() async throws {
        let server = try await TestServer()
        let run = try await server.store.createRun(CreateRunInput(experimentID: "0", userID: "t", runName: "h", startTime: 1, tags: []))
        let id = run.info.runID
        let n = 5_001
        for start in stride(from: 0, to: n, by: 1_000) {
            let part = (start..<min(start + 1_000, n)).map { Metric(key: "loss", value: Self.historyValue($0), timestamp: 1_000 + Int64($0), step: Int64($0)) }
            try await server.store.logBatch(runID: id, metrics: part, params: [], tags: [], conflictStyle: .batch)
        }
        try await server.test(.live) { client in
            let (status, all) = try await client.json(.get, "/api/2.0/mlflow/metrics/get-history?run_id=\(id)&metric_key=loss")
            #expect(status == .ok)
            let points = all["metrics"]?.items ?? []
            #expect(points.count == n && all["next_page_token"] == nil)
            #expect(points.map { $0["step"]?.integer } == (0..<n).map { Int64($0) })
            // NaN as MLflow's string; ±inf as the largest double, as the reference's SQL store returns it.
            #expect(points[7]["value"] == .string("NaN"))
            #expect(points[8]["value"] == .double(.greatestFiniteMagnitude) && points[9]["value"] == .double(-.greatestFiniteMagnitude))
            #expect(points[3_000]["value"] == .double(3_000) && points[4_000]["value"] == .double(4_000.0 / 7))
            // Pages: 2,500 + 2,500 + 1.
            var paged: [Int64] = []
            var query = "/api/2.0/mlflow/metrics/get-history?run_id=\(id)&metric_key=loss&max_results=2500"
            for _ in 0..<4 {
                let (_, page) = try await client.json(.get, query)
                paged += (page["metrics"]?.items ?? []).compactMap { $0["step"]?.integer }
                guard let token = page["next_page_token"]?.stringValue else { break }
                query = "/api/2.0/mlflow/metrics/get-history?run_id=\(id)&metric_key=loss&max_results=2500&page_token=" + token
            }
            #expect(paged == (0..<n).map { Int64($0) })
        }
    }

    @Test func artifactProxyConfinesPaths() async throws {
        let server = try await TestServer()
        let root = server.dir.path + "/artifacts"
        try await server.test { client in
            try await client.execute(uri: "/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/a%20b/c.txt", method: .put, body: ByteBuffer(string: "hello")) { r in
                #expect(r.status == .ok)
            }
            try await client.execute(uri: "/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/a%20b/c.txt", method: .get) { r in
                #expect(r.status == .ok)
                #expect(String(buffer: r.body) == "hello")
                #expect(r.headers[.contentType] == "text/plain")
                #expect(r.headers[.contentDisposition] == "attachment; filename=c.txt")
                #expect(r.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")
            }
            let (_, listing) = try await client.json(.get, "/api/2.0/mlflow-artifacts/artifacts?path=1/r/artifacts/a%20b")
            #expect(listing["files"] == .array([["path": "c.txt", "is_dir": false, "file_size": 5]]))
            let (_, fileListing) = try await client.json(.get, "/api/2.0/mlflow-artifacts/artifacts?path=1/r/artifacts/a%20b/c.txt")
            #expect(fileListing == .object(JSONObject()))
            for bad in ["../escape.txt", "%2e%2e/escape.txt", "a/%2E%2E/%2E%2E/escape.txt", "..%2Fescape.txt", "%2Fetc%2Fescape.txt", "a%5C..%5Cescape.txt", "a%23b", "/tmp/escape.txt", "//tmp/escape.txt"] {
                for method in [HTTPRequest.Method.put, .get, .delete] {
                    let (status, v) = try await client.json(method, "/api/2.0/mlflow-artifacts/artifacts/\(bad)", method == .put ? "x" : nil, contentType: nil)
                    #expect(status == .badRequest, "\(method) \(bad)")
                    #expect(errorCode(v) == "INVALID_PARAMETER_VALUE")
                }
            }
            let (sList, _) = try await client.json(.get, "/api/2.0/mlflow-artifacts/artifacts?path=../..")
            #expect(sList == .badRequest)
            let (sMissing, missing) = try await client.json(.get, "/api/2.0/mlflow-artifacts/artifacts/nope.txt")
            #expect(sMissing == .notFound && errorCode(missing) == "RESOURCE_DOES_NOT_EXIST")
            let (sMPU, mpu) = try await client.json(.post, "/api/2.0/mlflow-artifacts/mpu/create/x.bin", #"{"path":"x.bin","num_parts":2}"#)
            #expect(sMPU == .notImplemented)
            #expect(mpu["message"] == .string("Multipart upload is not supported for the current artifact repository"))
            try await client.execute(uri: "/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/a%20b", method: .delete) { r in
                #expect(r.status == .ok)
            }
        }
        let parent = (root as NSString).deletingLastPathComponent
        #expect(!FileManager.default.fileExists(atPath: parent + "/escape.txt"))
        #expect(!FileManager.default.fileExists(atPath: "/tmp/escape.txt"))
        // A doubled slash names an absolute path: nothing lands under the root either.
        #expect(!FileManager.default.fileExists(atPath: root + "/tmp/escape.txt"))
        #expect(!FileManager.default.fileExists(atPath: "/etc/escape.txt"))
    }

    /// The SHA-256 and size of every upload through the proxy and upload-artifact are recorded as
    /// the bytes stream; a delete forgets them; the run's records come back from the extension route.
    @Test func artifactDigestsAreRecordedAsTheyStream() async throws {
        let server = try await TestServer()
        try await server.test { client in
            let (_, e) = try await client.json(.post, "/api/2.0/mlflow/experiments/create", #"{"name":"digests"}"#)
            let eid = try #require(e["experiment_id"]?.stringValue)
            let (_, r) = try await client.json(.post, "/api/2.0/mlflow/runs/create", #"{"experiment_id":"\#(eid)"}"#)
            let rid = try #require(r["run"]?["info"]?["run_id"]?.stringValue)
            let base = "/api/2.0/mlflow-artifacts/artifacts/\(eid)/\(rid)/artifacts"
            try await client.execute(uri: base + "/dir/hello.txt", method: .put, body: ByteBuffer(string: "hello")) { #expect($0.status == .ok) }
            // In several chunks: the hash covers the whole body.
            let big = String(repeating: "0123456789", count: 100_000)
            try await client.execute(uri: base + "/big.txt", method: .put, body: ByteBuffer(string: big)) { #expect($0.status == .ok) }
            try await client.execute(uri: "/api/2.0/mlflow/upload-artifact?run_id=\(rid)&path=up/x.bin", method: .post, body: ByteBuffer(string: "abc")) {
                #expect($0.status == .ok)
            }
            let (s, v) = try await client.json(.get, "/api/reprise/v1/artifact-digests?run_id=\(rid)")
            #expect(s == .ok)
            #expect(v["root_uri"] == .string("mlflow-artifacts:/\(eid)/\(rid)/artifacts"))
            guard case .array(let files)? = v["files"] else {
                Issue.record("no files: \(v)")
                return
            }
            #expect(files.map { $0["path"]?.stringValue ?? "" } == ["big.txt", "dir/hello.txt", "up/x.bin"])
            #expect(files[1]["sha256"] == .string("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"))
            #expect(files[1]["size"] == .int(5) && files[1]["method"] == .string("put"))
            #expect(files[1]["location"] == .string("mlflow-artifacts:/\(eid)/\(rid)/artifacts/dir/hello.txt"))
            #expect(files[0]["size"] == .int(1_000_000))
            #expect(files[0]["sha256"] == .string("ec21d64624228af3ecd4bdaa8239e32ed943b01e26934cd5610fddb361426dc6"))
            #expect(files[2]["sha256"] == .string("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") && files[2]["method"] == .string("upload"))
            // Uploading again replaces the record; deleting a folder forgets what was under it.
            try await client.execute(uri: base + "/dir/hello.txt", method: .put, body: ByteBuffer(string: "abc")) { #expect($0.status == .ok) }
            try await client.execute(uri: base + "/dir", method: .delete) { #expect($0.status == .ok) }
            let (_, after) = try await client.json(.get, "/api/reprise/v1/artifact-digests?run_id=\(rid)")
            guard case .array(let left)? = after["files"] else { return }
            #expect(left.map { $0["path"]?.stringValue ?? "" } == ["big.txt", "up/x.bin"])
            let (sNoRun, noRun) = try await client.json(.get, "/api/reprise/v1/artifact-digests?run_id=0123456789abcdef0123456789abcdef")
            #expect(sNoRun == .notFound && errorCode(noRun) == "RESOURCE_DOES_NOT_EXIST")
            let (sMissing, missing) = try await client.json(.get, "/api/reprise/v1/artifact-digests")
            #expect(sMissing == .badRequest && errorCode(missing) == "INVALID_PARAMETER_VALUE")
        }
    }

    /// With a local destination every multipart call is the reference's 501, after the same path
    /// check as the other artifact routes; server-info says multipart is off.
    @Test func multipartUploadIsOffForALocalDestination() async throws {
        try await TestServer().test { client in
            let (_, info) = try await client.json(.get, "/api/3.0/mlflow/server-info")
            #expect(info["multipart_uploads_enabled"] == .bool(false))
            for (op, body) in [
                ("create", #"{"path":"/tmp/x.bin","num_parts":2}"#), ("complete", #"{"path":"x.bin","upload_id":"u","parts":[]}"#),
                ("abort", #"{"path":"x.bin","upload_id":"u"}"#),
            ] {
                let (s, v) = try await client.json(.post, "/api/2.0/mlflow-artifacts/mpu/\(op)/1/r/artifacts", body)
                #expect(s == .notImplemented, "\(op)")
                #expect(v["error_code"] == .string("NOT_IMPLEMENTED"))
                #expect(v["message"] == .string("Multipart upload is not supported for the current artifact repository"))
                let (sBad, bad) = try await client.json(.post, "/api/2.0/mlflow-artifacts/mpu/\(op)/1/%2E%2E/x", body)
                #expect(sBad == .badRequest && errorCode(bad) == "INVALID_PARAMETER_VALUE", "\(op)")
            }
        }
    }

    /// Every method a path does not take is 405 naming the ones it does, standard or not (TRACE,
    /// PROPFIND); a path no route serves is 404 whatever the method.
    /// Readiness follows the database: once it stops answering, /ready is 503 while /health (liveness)
    /// stays OK.
    @Test func readinessFollowsTheDatabase() async throws {
        let server = try await TestServer()
        let store = server.store
        try await server.test { client in
            try await client.execute(uri: "/ready", method: .get) { r in #expect(r.status == .ok) }
            try await store.driver.shutdown()
            try await client.execute(uri: "/ready", method: .get) { r in
                #expect(r.status == .serviceUnavailable)
                #expect(String(buffer: r.body) == "The database is not reachable.")
            }
            try await client.execute(uri: "/health", method: .get) { r in #expect(r.status == .ok) }
        }
    }

    @Test func methodsAPathDoesNotTake() async throws {
        try await TestServer().test { client in
            for method in [HTTPRequest.Method.put, .delete, .trace, HTTPRequest.Method("PROPFIND")!] {
                try await client.execute(uri: "/api/2.0/mlflow/experiments/get", method: method) { r in
                    #expect(r.status == .methodNotAllowed, "\(method)")
                    #expect(r.headers[.allow] == "GET, HEAD, OPTIONS", "\(method)")
                }
                try await client.execute(uri: "/api/2.0/mlflow/no-such-route", method: method) { r in
                    #expect(r.status == .notFound, "\(method)")
                }
            }
            try await client.execute(uri: "/ui/runs/abc/note", method: .get) { r in
                #expect(r.status == .methodNotAllowed)
                #expect(r.headers[.allow] == "POST, OPTIONS")
                #expect(r.headers[.contentType]?.hasPrefix("text/html") == true)
            }
            try await client.execute(uri: "/ajax-api/2.0/mlflow/experiments/get", method: .trace) { r in
                #expect(r.status == .methodNotAllowed)
            }
        }
    }

    @Test func staticPrefixAndDisabledProxy() async throws {
        try await TestServer(serveArtifacts: false, staticPrefix: "/mlflow").test { client in
            try await client.execute(uri: "/mlflow/health", method: .get) { r in #expect(r.status == .ok) }
            let (s, _) = try await client.json(.get, "/health")
            #expect(s == .notFound)
            let (sProxy, v) = try await client.json(.get, "/mlflow/api/2.0/mlflow-artifacts/artifacts/x.txt")
            #expect(sProxy == .serviceUnavailable)
            #expect(errorCode(v) == "TEMPORARILY_UNAVAILABLE")
            let (_, exp) = try await client.json(.get, "/mlflow/api/2.0/mlflow/experiments/get?experiment_id=0")
            #expect(exp["experiment"]?["artifact_location"]?.stringValue?.hasPrefix("/") == true)
        }
    }

    @Test func loggedModelRoutes() async throws {
        try await TestServer().test { client in
            let (_, created) = try await client.json(.post, "/api/2.0/mlflow/logged-models", #"{"experiment_id":"0","name":"model"}"#)
            let id = try #require(created["model"]?["info"]?["model_id"]?.stringValue)
            #expect(created["model"]?["info"]?["status"] == "LOGGED_MODEL_PENDING")
            let (_, done) = try await client.json(.patch, "/api/2.0/mlflow/logged-models/\(id)", #"{"model_id":"\#(id)","status":"LOGGED_MODEL_READY"}"#)
            #expect(done["model"]?["info"]?["status"] == "LOGGED_MODEL_READY")
            try await client.json(.patch, "/api/2.0/mlflow/logged-models/\(id)/tags", #"{"tags":[{"key":"a.b","value":"1"}]}"#)
            let (sDel, _) = try await client.json(.delete, "/api/2.0/mlflow/logged-models/\(id)/tags/a.b")
            #expect(sDel == .ok)
            let (sAgain, again) = try await client.json(.delete, "/api/2.0/mlflow/logged-models/\(id)/tags/a.b")
            #expect(sAgain == .notFound)
            #expect(again["message"]?.stringValue?.hasPrefix("No tag with key") == true)
            let (_, found) = try await client.json(.post, "/api/2.0/mlflow/logged-models/search", #"{"experiment_ids":["0"],"filter":"name = 'model'"}"#)
            if case .array(let models)? = found["models"] { #expect(models.count == 1) } else { Issue.record("no models") }
            try await client.json(.delete, "/api/2.0/mlflow/logged-models/\(id)")
            let (sGone, _) = try await client.json(.get, "/api/2.0/mlflow/logged-models/\(id)")
            #expect(sGone == .notFound)
        }
    }
}

@Suite("Live server and client")
struct LiveClientTests {
    @Test func clientTalksToALiveServer() async throws {
        let server = try await TestServer()
        defer { server.dir.remove() }
        try await buildApplication(api: server.api, logger: Logger(label: "test")).test(.live) { client in
            let port = try #require(client.port)
            let api = RepriseClient(baseURL: "http://127.0.0.1:\(port)")
            #expect(await api.health())
            let exp = try await api.createExperiment(name: "live")
            let run = try await api.createRun(experimentID: exp, runName: "r")
            try await api.logMetric(runID: run, key: "loss", value: 0.5, timestamp: 1)
            let got = try await api.run(id: run)
            #expect(got.info.runID == run && got.info.runName == "r" && got.info.status == .running)
            #expect(got.metrics == [Metric(key: "loss", value: 0.5, timestamp: 1, step: 0)])
            // Reprise's extensions, read by the same decoders (the CLI's path).
            #expect(try await api.experimentPolicy(experimentID: exp) == nil, "no policy is nil, not an error")
            try await api.call(.PUT, "/api/reprise/v1/experiments/\(exp)/policy", body: ["mode": "strict", "required": ["code"], "refuse_duplicates": true])
            let policy = try #require(try await api.experimentPolicy(experimentID: exp))
            #expect(policy.mode == .strict && policy.required == [.code] && policy.refuseDuplicates && !policy.refuseDirty)
            let page = try await api.auditEvents(entityType: nil, entityID: nil, afterSeq: 0, limit: 1000)
            #expect(page.events.contains { $0.action.hasPrefix("experiment.") && $0.entityID == exp })
            #expect(page.events.map(\.seq) == page.events.map(\.seq).sorted())
            #expect(try await api.approvalRequests(model: nil).isEmpty)
            do {
                _ = try await api.createExperiment(name: "live")
                Issue.record("duplicate accepted")
            } catch let e as RepriseError {
                #expect(e.code == .resourceAlreadyExists)
            }
        }
    }
}
