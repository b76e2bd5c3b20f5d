import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import RepriseCore
@testable import RepriseServer
import Testing

/// No route open by omission: the route table (every route with the rule it declared when it was
/// registered) is read, and the open routes must be exactly the allowlist below, written out by
/// hand, so a route that becomes open (or one added as `.open`) fails here until someone adds it on
/// purpose. The administrative routes must be `.admin`.
@Suite("Route access rules")
struct RouteAccessTests {
    /// The routes anyone may call without credentials. Written out, not derived: adding one is a
    /// decision, and this list is where it is made.
    static let openAllowlist: Set<String> = [
        "GET /health",
        // Readiness says only whether the database answers.
        "GET /ready",
        // The contract (notes/identity-api.md) keeps /version open; MLflow 3.17 asks for credentials there.
        "GET /version",
        "GET /api/3.0/mlflow/server-info",
        "GET /ui/static/app.js",
        "GET /ui/static/route.js",
        "GET /api/reprise/v1/openapi.json",
        "GET /ui/login",
        "POST /ui/login",
    ]

    /// Routes that only admins may call: user administration, role (group) administration,
    /// webhooks (they send data anywhere), the audit trail's events and service accounts.
    static func mustBeAdmin(_ method: String, _ path: String) -> Bool {
        let a2 = "/api/2.0/mlflow"
        let a3 = "/api/3.0/mlflow"
        let exact: Set<String> = [
            "POST \(a2)/users/create", "PATCH \(a2)/users/update-admin", "DELETE \(a2)/users/delete",
            "POST \(a3)/roles/create", "PATCH \(a3)/roles/update", "DELETE \(a3)/roles/delete",
            "POST \(a3)/roles/permissions/add", "DELETE \(a3)/roles/permissions/remove", "PATCH \(a3)/roles/permissions/update",
            "POST \(a3)/roles/assign", "DELETE \(a3)/roles/unassign", "GET \(a3)/roles/users/list",
            "GET /api/reprise/v1/audit/events",
            "POST /api/reprise/v1/service-accounts",
        ]
        if exact.contains("\(method) \(path)") { return true }
        if path.hasPrefix("\(a2)/webhooks") || path.hasPrefix("/api/reprise/v1/webhooks") { return true }
        if path.hasPrefix("/api/reprise/v1/service-accounts") { return true }
        if path == "/ui/admin" || path.hasPrefix("/ui/admin/") { return true }
        return false
    }

    /// The route table of a server with every optional part on and authentication on.
    static func routeTable() async throws -> [(method: HTTPRequest.Method, path: String, access: Access)] {
        let fixture = try await AuthMatrixTests.Fixture(bootstrap: false)
        let table = fixture.api.routeTable
        await fixture.close()
        return table
    }

    @Test func openRoutesAreExactlyTheAllowlist() async throws {
        let table = try await Self.routeTable()
        #expect(table.count > 150)
        let open = Set(table.filter { RepriseAPI.isOpen($0.access) }.map { "\($0.method.rawValue) \($0.path)" })
        let extra = open.subtracting(Self.openAllowlist).sorted()
        let missing = Self.openAllowlist.subtracting(open).sorted()
        #expect(extra.isEmpty, "routes open that are not on the allowlist: \(extra)")
        #expect(missing.isEmpty, "allowlisted routes that are not open (or gone): \(missing)")
    }

    @Test func administrativeRoutesAreAdminOnly() async throws {
        let table = try await Self.routeTable()
        var checked = 0
        for r in table where Self.mustBeAdmin(r.method.rawValue, r.path) {
            checked += 1
            guard case .admin = r.access else {
                Issue.record("\(r.method.rawValue) \(r.path) must be admin-only, but is \(r.access.summary)")
                continue
            }
        }
        // The list above names 14 routes, the webhook family and the UI's admin pages; if the
        // table loses them (renamed paths), this notices.
        #expect(checked >= 14 + 6 + 10, "only \(checked) administrative routes found in the table")
        // Every exact administrative route is in the table at all.
        let present = Set(table.map { "\($0.method.rawValue) \($0.path)" })
        for name in [
            "POST /api/2.0/mlflow/users/create", "PATCH /api/2.0/mlflow/users/update-admin", "DELETE /api/2.0/mlflow/users/delete",
            "POST /api/3.0/mlflow/roles/create", "PATCH /api/3.0/mlflow/roles/update", "DELETE /api/3.0/mlflow/roles/delete",
            "POST /api/3.0/mlflow/roles/permissions/add", "DELETE /api/3.0/mlflow/roles/permissions/remove",
            "PATCH /api/3.0/mlflow/roles/permissions/update", "POST /api/3.0/mlflow/roles/assign", "DELETE /api/3.0/mlflow/roles/unassign",
            "GET /api/reprise/v1/audit/events", "POST /api/reprise/v1/service-accounts",
            "POST /api/2.0/mlflow/webhooks", "GET /api/2.0/mlflow/webhooks", "GET /ui/admin",
        ] {
            #expect(present.contains(name), "\(name) is not in the route table")
        }
    }

    /// Every route's rule is one the access middleware knows how to enforce (the enum is closed, so this
    /// is about the table being complete: every route listed once per method, none without a
    /// rule), and the table is printed for review.
    @Test func everyRouteDeclaresARule() async throws {
        let fixture = try await AuthMatrixTests.Fixture(bootstrap: false)
        let table = fixture.api.routeTable
        let signatures = fixture.api.routeSignatures
        await fixture.close()
        var seen = Set<String>()
        var counts: [String: Int] = [:]
        for r in table {
            let key = "\(r.method.rawValue) \(r.path)"
            #expect(seen.insert(key).inserted, "\(key) is listed twice")
            let kind: String
            switch r.access {
            case .open: kind = "open"
            case .authenticated: kind = "authenticated"
            case .admin: kind = "admin"
            case .experiment: kind = "experiment"
            case .experiments: kind = "experiments"
            case .registeredModel: kind = "registeredModel"
            }
            counts[kind, default: 0] += 1
        }
        // The route signatures the OpenAPI test reads are the same table.
        #expect(signatures.count == table.count)
        if ProcessInfo.processInfo.environment["REPRISE_PRINT_ROUTES"] != nil {
            for r in table { print("ROUTE \(r.method.rawValue) \(r.path) -> \(r.access.summary)") }
        }
        print("route table: \(table.count) routes; \(counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))")
    }

    /// The router serves exactly the table: every declared route is in Hummingbird's router under
    /// its template, and every route the router has beyond them is one the router builder adds to
    /// every path (OPTIONS for CORS preflight, 405 for a method the path does not take), which is
    /// checked by asking for each: none of them reaches a handler.
    @Test func routerServesExactlyTheTable() async throws {
        let fixture = try await AuthMatrixTests.Fixture(bootstrap: false)
        let table = fixture.api.routeTable
        let router = fixture.api.makeRouter()
        let served = router.routes.map { (method: $0.method, path: $0.path.description) }
        func routerPath(_ documented: String, _ method: HTTPRequest.Method) -> String {
            // As the router prints it (`/ui/` is `/ui`: the router ignores a trailing slash).
            RouterPath(stringLiteral: fixture.api.routes[documented]?[method]?.template.routerPath ?? documented).description
        }
        let declared = Set(table.map { "\($0.method.rawValue) \(routerPath($0.path, $0.method))" })
        let servedKeys = Set(served.map { "\($0.method.rawValue) \($0.path)" })
        let missing = declared.subtracting(servedKeys).sorted()
        #expect(missing.isEmpty, "declared but not in the router: \(missing)")
        var synthetic: [(HTTPRequest.Method, String)] = []
        for r in served where !declared.contains("\(r.method.rawValue) \(r.path)") {
            let pathDeclared = table.contains { routerPath($0.path, $0.method) == r.path }
            #expect(pathDeclared, "the router serves \(r.method.rawValue) \(r.path), a path the table does not declare")
            if r.method != .options {
                #expect(RepriseAPI.answerableMethods.contains(r.method), "unexpected method \(r.method.rawValue) \(r.path)")
                synthetic.append((r.method, r.path))
            }
        }
        #expect(synthetic.count > 100)
        // Each added method answers 405 without credentials and without reaching a handler.
        let probes = synthetic
        try await buildApplication(api: fixture.api, logger: Logger(label: "route-test")).test(.router) { client in
            for (method, template) in probes {
                let uri = template.replacingOccurrences(of: "**", with: "1/a.txt")
                    .replacingOccurrences(of: #"\{[a-z_]+\}"#, with: "x", options: .regularExpression)
                try await client.execute(uri: uri, method: method) { response in
                    #expect(response.status == .methodNotAllowed, "\(method.rawValue) \(uri): \(response.status)")
                    #expect(response.headers[.allow]?.isEmpty == false, "\(method.rawValue) \(uri) names no Allow")
                }
            }
        }
        await fixture.close()
    }
}
