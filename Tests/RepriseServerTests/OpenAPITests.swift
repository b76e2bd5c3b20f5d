import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import RepriseArtifacts
import RepriseCore
import RepriseSQL
import RepriseSQLite
@testable import RepriseServer
import RepriseTestSupport
import Testing

/// The OpenAPI document (`/api/reprise/v1/openapi.json`) against the route table, both ways: every
/// route is documented, and every documented operation is answered by a route.
@Suite("OpenAPI document")
struct OpenAPITests {
    static let httpMethods: Set<String> = ["get", "put", "post", "delete", "patch", "options", "head", "trace"]

    struct Operation: CustomStringConvertible {
        var method: String  // upper case, as HTTPRequest.Method spells it
        var path: String  // a template: /api/2.0/mlflow/logged-models/{model_id}
        var object: [String: Any]
        var description: String { "\(method) \(path)" }

        var bodyType: String? {
            guard let body = object["requestBody"] as? [String: Any], let content = body["content"] as? [String: Any] else { return nil }
            return content.keys.sorted().first
        }
    }

    static func document() throws -> [String: Any] {
        let parsed = try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.json.utf8))
        return try #require(parsed as? [String: Any])
    }

    static func operations() throws -> [Operation] {
        let paths = try #require(try document()["paths"] as? [String: Any])
        var out: [Operation] = []
        for (path, item) in paths {
            let item = try #require(item as? [String: Any], "\(path)")
            for (method, op) in item where httpMethods.contains(method) {
                out.append(Operation(method: method.uppercased(), path: path, object: try #require(op as? [String: Any])))
            }
        }
        return out.sorted { ($0.path, $0.method) < ($1.path, $1.method) }
    }

    /// A server over a fresh store with every optional part on (webhooks, reproducibility), so that
    /// its route table is the one `reprise server` has.
    struct Fixture {
        let dir: TempDirectory
        let api: RepriseAPI
        let deliverer: WebhookDeliverer

        init() async throws {
            dir = try TempDirectory(prefix: "reprise-openapi")
            let store = SQLTrackingStore(
                driver: try SQLiteDriver(path: dir.path + "/reprise.db"),
                artifacts: ArtifactRootPolicy(defaultRoot: "mlflow-artifacts:/", workingDirectory: dir.path))
            try await store.migrate()
            var logger = Logger(label: "openapi-test")
            logger.logLevel = .critical
            deliverer = WebhookDeliverer(settings: WebhookSettings(), logger: logger)
            api = RepriseAPI(
                store: store, registry: store, governance: store, artifacts: LocalArtifactRepository(root: dir.path + "/artifacts"),
                webhooks: store, deliverer: deliverer, repro: store,
                config: ServerConfiguration(localArtifactRoots: [dir.path + "/artifacts"]), logger: logger, workingDirectory: dir.path)
        }

        func close() async {
            await deliverer.shutdown()
            dir.remove()
        }
    }

    /// What a template parameter becomes in a request.
    static let samples: [String: String] = [
        "artifact_path": "openapi/a.txt", "experiment_id": "0", "model_id": "m-0123", "tag_key": "k", "webhook_id": "w-1",
        "request_id": "r-1", "run_id": "0123abcd", "name": "model",
    ]

    static func fill(_ template: String) -> String {
        var out = template
        while let open = out.firstIndex(of: "{"), let close = out[open...].firstIndex(of: "}") {
            let name = String(out[out.index(after: open)..<close])
            out.replaceSubrange(open...close, with: samples[name] ?? "x")
        }
        return out
    }

    @Test func documentIsWellFormed() throws {
        let doc = try Self.document()
        #expect(doc["openapi"] as? String == "3.1.0")
        let ops = try Self.operations()
        #expect(ops.count > 100)
        var ids = Set<String>()
        for op in ops {
            let id = op.object["operationId"] as? String ?? ""
            #expect(!id.isEmpty && ids.insert(id).inserted, "operationId of \(op) is empty or not unique: \(id)")
            let responses = op.object["responses"] as? [String: Any] ?? [:]
            #expect(!responses.isEmpty, "\(op) documents no response")
            // Every {name} of the template is a path parameter.
            let params = (op.object["parameters"] as? [[String: Any]] ?? []).filter { $0["in"] as? String == "path" }.compactMap { $0["name"] as? String }
            var names: [String] = []
            var rest = Substring(op.path)
            while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
                names.append(String(rest[rest.index(after: open)..<close]))
                rest = rest[rest.index(after: close)...]
            }
            #expect(params.sorted() == names.sorted(), "\(op): path parameters \(params) for template names \(names)")
        }
        // Every $ref points at something that exists.
        let components = doc["components"] as? [String: Any] ?? [:]
        func walk(_ v: Any) {
            if let o = v as? [String: Any] {
                if let ref = o["$ref"] as? String {
                    let parts = ref.split(separator: "/").map(String.init)
                    #expect(parts.count == 4 && parts[0] == "#" && parts[1] == "components", "\(ref)")
                    if parts.count == 4 {
                        #expect((components[parts[2]] as? [String: Any])?[parts[3]] != nil, "dangling \(ref)")
                    }
                }
                for (_, x) in o { walk(x) }
            } else if let a = v as? [Any] {
                for x in a { walk(x) }
            }
        }
        walk(doc)
    }

    @Test func everyRouteIsDocumented() async throws {
        let fixture = try await Fixture()
        defer { Task { await fixture.close() } }
        let documented = try Self.operations()
        let signatures = fixture.api.routeSignatures
        #expect(signatures.count > 100)
        for route in signatures {
            #expect(
                documented.contains { $0.method == route.method && $0.path == route.path },
                "route \(route.method) \(route.path) is not in the OpenAPI document")
        }
    }

    /// The operations the document marks as needing no credentials (`security: []`) are exactly
    /// the routes the table declares open; every other operation documents the 401 (or, for a
    /// page, the redirect to the login form).
    @Test func securityMatchesTheRouteTable() async throws {
        let fixture = try await Fixture()
        defer { Task { await fixture.close() } }
        let doc = try Self.document()
        let schemes = try #require((doc["components"] as? [String: Any])?["securitySchemes"] as? [String: Any])
        #expect(Set(schemes.keys) == ["basic", "bearer", "session"])
        #expect((schemes["basic"] as? [String: Any])?["scheme"] as? String == "basic")
        #expect((schemes["bearer"] as? [String: Any])?["scheme"] as? String == "bearer")
        let global = try #require(doc["security"] as? [[String: Any]])
        #expect(Set(global.flatMap(\.keys)) == ["basic", "bearer", "session"])
        var documentedOpen = Set<String>()
        for op in try Self.operations() {
            if let security = op.object["security"] as? [Any], security.isEmpty {
                documentedOpen.insert("\(op.method) \(op.path)")
                continue
            }
            let responses = op.object["responses"] as? [String: Any] ?? [:]
            let page = op.path == "/" || op.path.hasPrefix("/ui")
            if op.method == "GET" && page {
                #expect(responses["303"] != nil, "\(op) does not document the redirect to the login form")
            } else {
                let ref = (responses["401"] as? [String: Any])?["$ref"] as? String
                #expect(ref == "#/components/responses/Unauthenticated", "\(op) does not document 401")
            }
        }
        let tableOpen = Set(fixture.api.routeTable.filter { RepriseAPI.isOpen($0.access) }.map { "\($0.method.rawValue) \($0.path)" })
        #expect(documentedOpen == tableOpen, "open in the document but not in the table: \(documentedOpen.subtracting(tableOpen).sorted()); open in the table but not in the document: \(tableOpen.subtracting(documentedOpen).sorted())")
        let unauthenticated = try #require((doc["components"] as? [String: Any])?["responses"] as? [String: Any])["Unauthenticated"] as? [String: Any]
        #expect((unauthenticated?["content"] as? [String: Any])?["text/plain"] != nil)
        let forbidden = try #require((doc["components"] as? [String: Any])?["responses"] as? [String: Any])["Forbidden"] as? [String: Any]
        #expect((forbidden?["content"] as? [String: Any])?["text/plain"] != nil)
    }

    @Test func everyDocumentedOperationIsAnswered() async throws {
        let fixture = try await Fixture()
        defer { Task { await fixture.close() } }
        let operations = try Self.operations().map { (method: $0.method, path: $0.path, bodyType: $0.bodyType) }
        try await buildApplication(api: fixture.api, logger: Logger(label: "openapi-test")).test(.router) { client in
            for op in operations {
                let uri = Self.fill(op.path)
                var headers: HTTPFields = [:]
                var body: ByteBuffer?
                switch op.bodyType {
                case "application/json"?:
                    headers[.contentType] = "application/json"
                    body = ByteBuffer(string: "{}")
                case "application/x-www-form-urlencoded"?:
                    headers[.contentType] = "application/x-www-form-urlencoded"
                    body = ByteBuffer(string: "csrf=0")
                case "application/octet-stream"?:
                    headers[.contentType] = "application/octet-stream"
                    body = ByteBuffer(string: "x")
                default:
                    break
                }
                let method = HTTPRequest.Method(op.method)!
                try await client.execute(uri: uri, method: method, headers: headers, body: body) { response in
                    let text = String(buffer: response.body)
                    #expect(response.status != .methodNotAllowed, "\(op.method) \(op.path) (\(uri)): 405 \(text.prefix(200))")
                    let unrouted = text.contains("No API endpoint") || text.contains("No page at")
                    #expect(!(response.status == .notFound && unrouted), "\(op.method) \(op.path) (\(uri)) is not answered by any route: \(text.prefix(200))")
                }
            }
        }
    }

    @Test func servedDocumentIsTheSourceOfTruth() async throws {
        let fixture = try await Fixture()
        defer { Task { await fixture.close() } }
        try await buildApplication(api: fixture.api, logger: Logger(label: "openapi-test")).test(.router) { client in
            try await client.execute(uri: "/api/reprise/v1/openapi.json", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/json")
                #expect(String(buffer: response.body) == OpenAPIDocument.json)
            }
        }
    }
}
