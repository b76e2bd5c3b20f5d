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

/// Every route in the route table × {anonymous, outsider, reader, editor, manager, admin} against
/// the real router and middleware, a real SQLite store (also the identity store) and authentication on with
/// `default_permission = NO_PERMISSIONS`.
///
/// The resources (an experiment with a run and a logged model, a registered model with a version,
/// an alias policy and an open approval request) belong to the admin; reader, editor and manager
/// hold READ, EDIT and MANAGE on the experiment and on the registered model; the outsider is a
/// user with no grant at all. Requests are generated from the table: exact routes get every field a
/// locator or handler reads (as query parameters for GET, a JSON body otherwise), filled with the
/// fixture's ids, and every `{param}` of the route's path template filled with the fixture's ids.
///
/// What each route requires is `expectedRules` below, written out (the reviewed rule of every
/// route). The test checks that the table declares exactly that rule, and that the server
/// enforces it: anonymous gets 401 (a page: 303 to the login form) unless the route is open; a
/// caller the rule allows never gets the access layer's answers (401, or 403 `Permission denied`
/// as text/plain; the handler may still refuse with 400/404/501 for the fixture's reasons); a
/// caller it does not allow gets exactly 403 `Permission denied`. Every request runs on its own
/// copy of the seeded store, so no request sees another's writes.
@Suite("Auth matrix")
struct AuthMatrixTests {
    static let adminPassword = "admin-password-0123"
    static let password = "user-password-0123"

    /// A server with authentication on (default NO_PERMISSIONS, bcrypt cost 4) over a SQLite store
    /// in `dir` (fresh, or a copy of a seeded one) that is also the identity store, with every
    /// optional part on.
    struct Fixture {
        let dir: TempDirectory
        let driver: SQLiteDriver
        let store: SQLTrackingStore
        let api: RepriseAPI
        let deliverer: WebhookDeliverer
        let ownsDeliverer: Bool

        init(bootstrap: Bool = true, copyOf template: String? = nil, deliverer shared: WebhookDeliverer? = nil) async throws {
            dir = try TempDirectory(prefix: "reprise-authmatrix")
            if let template {
                for item in try FileManager.default.contentsOfDirectory(atPath: template) {
                    try FileManager.default.copyItem(atPath: template + "/" + item, toPath: dir.path + "/" + item)
                }
            }
            driver = try SQLiteDriver(path: dir.path + "/reprise.db")
            // One audit key for the template and its copies, so the copies' chains verify.
            store = SQLTrackingStore(
                driver: driver, artifacts: ArtifactRootPolicy(defaultRoot: "mlflow-artifacts:/", workingDirectory: dir.path),
                auditKey: AuditKey(keyMaterial: Array("reprise-authmatrix-audit-key".utf8), checkpointFile: nil))
            try await store.migrate()
            var logger = Logger(label: "authmatrix-test")
            logger.logLevel = .critical
            ownsDeliverer = shared == nil
            deliverer = shared ?? WebhookDeliverer(settings: WebhookSettings(), logger: logger)
            api = RepriseAPI(
                store: store, registry: store, governance: store, artifacts: LocalArtifactRepository(root: dir.path + "/artifacts"),
                webhooks: store, deliverer: deliverer, repro: store, config: Self.config(dir.path), logger: logger,
                workingDirectory: dir.path, identities: store)
            if bootstrap && template == nil { try await api.bootstrapIdentity() }
        }

        static func config(_ dir: String) -> ServerConfiguration {
            var config = ServerConfiguration(localArtifactRoots: [dir + "/artifacts"])
            config.auth.enabled = true
            config.auth.defaultPermission = .noPermissions
            config.auth.bcryptCost = 4
            config.auth.adminPassword = AuthMatrixTests.adminPassword
            return config
        }

        func close() async {
            if ownsDeliverer { await deliverer.shutdown() }
            try? await driver.shutdown()
            dir.remove()
        }
    }

    // MARK: - Callers

    enum Who: String, CaseIterable, Sendable {
        case anonymous, outsider, reader, editor, manager, admin

        /// What the caller holds on the fixture's experiment and registered model.
        var level: Permission? {
            switch self {
            case .anonymous, .outsider: return nil
            case .reader: return .read
            case .editor: return .edit
            case .manager, .admin: return .manage
            }
        }

        var authorization: String? {
            switch self {
            case .anonymous: return nil
            case .admin: return Self.basic("admin", AuthMatrixTests.adminPassword)
            default: return Self.basic(rawValue, AuthMatrixTests.password)
            }
        }

        static func basic(_ user: String, _ password: String) -> String {
            "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
        }
    }

    // MARK: - Rules

    /// A route's requirement, parsed from `Access.summary`.
    enum Rule: Equatable, CustomStringConvertible {
        case open, authenticated, admin
        case resource(Capability, onModel: Bool)

        init?(summary: String) {
            switch summary {
            case "open": self = .open
            case "authenticated": self = .authenticated
            case "admin": self = .admin
            default:
                let words = summary.split(separator: " ")
                guard words.count >= 3, words[1] == "on", let c = Capability(rawValue: String(words[0])) else { return nil }
                self = .resource(c, onModel: words[2] == "registered")
            }
        }

        func allows(_ who: Who) -> Bool {
            switch self {
            case .open: return true
            case .authenticated: return who != .anonymous
            case .admin: return who == .admin
            case .resource(let c, _):
                if who == .admin { return true }
                return who.level?.allows(c) ?? false
            }
        }

        var description: String {
            switch self {
            case .open: return "open"
            case .authenticated: return "authenticated"
            case .admin: return "admin"
            case .resource(let c, let m): return "\(c.rawValue) on \(m ? "model" : "experiment")"
            }
        }
    }

    /// The rule every route must declare, as `Access.summary` spells it. Written out and reviewed,
    /// not read from the table: a route whose rule changes, or a new route, fails here until its
    /// line is added or changed on purpose. Keys: "METHOD path template".
    static let expectedRules: [String: String] = [
        "GET /": "authenticated",
        "GET /ui/static/route.js": "open",
        "GET /api/2.0/mlflow-artifacts/artifacts": "read on experiment (experiment id (path query))",
        "DELETE /api/2.0/mlflow-artifacts/artifacts/{artifact_path}": "delete on experiment (experiment id (artifact path))",
        "GET /api/2.0/mlflow-artifacts/artifacts/{artifact_path}": "read on experiment (experiment id (artifact path))",
        "PUT /api/2.0/mlflow-artifacts/artifacts/{artifact_path}": "update on experiment (experiment id (artifact path))",
        "POST /api/2.0/mlflow-artifacts/mpu/abort/{artifact_path}": "update on experiment (experiment id (artifact path))",
        "POST /api/2.0/mlflow-artifacts/mpu/complete/{artifact_path}": "update on experiment (experiment id (artifact path))",
        "POST /api/2.0/mlflow-artifacts/mpu/create/{artifact_path}": "update on experiment (experiment id (artifact path))",
        "GET /api/2.0/mlflow-artifacts/presigned/{artifact_path}": "read on experiment (experiment id (artifact path))",
        "GET /api/2.0/mlflow/artifacts/list": "read on experiment (run_id)",
        "POST /api/2.0/mlflow/artifacts/presigned-download-url": "read on experiment (run_id)",
        "POST /api/2.0/mlflow/artifacts/presigned-upload-url": "update on experiment (run_id)",
        "POST /api/2.0/mlflow/experiments/create": "authenticated",
        "POST /api/2.0/mlflow/experiments/delete": "delete on experiment (experiment_id)",
        "POST /api/2.0/mlflow/experiments/delete-experiment-tag": "update on experiment (experiment_id)",
        "GET /api/2.0/mlflow/experiments/get": "read on experiment (experiment_id)",
        "GET /api/2.0/mlflow/experiments/get-by-name": "read on experiment (experiment_name)",
        "POST /api/2.0/mlflow/experiments/permissions/create": "manage on experiment (experiment_id)",
        "DELETE /api/2.0/mlflow/experiments/permissions/delete": "manage on experiment (experiment_id)",
        "GET /api/2.0/mlflow/experiments/permissions/get": "manage on experiment (experiment_id)",
        "PATCH /api/2.0/mlflow/experiments/permissions/update": "manage on experiment (experiment_id)",
        "POST /api/2.0/mlflow/experiments/restore": "delete on experiment (experiment_id)",
        "GET /api/2.0/mlflow/experiments/search": "authenticated",
        "POST /api/2.0/mlflow/experiments/search": "authenticated",
        "POST /api/2.0/mlflow/experiments/search-datasets": "read on experiments (experiment_ids)",
        "POST /api/2.0/mlflow/experiments/set-experiment-tag": "update on experiment (experiment_id)",
        "POST /api/2.0/mlflow/experiments/update": "update on experiment (experiment_id)",
        "POST /api/2.0/mlflow/logged-models": "update on experiment (experiment_id)",
        "DELETE /api/2.0/mlflow/logged-models/{model_id}": "delete on experiment (model_id (path))",
        "DELETE /api/2.0/mlflow/logged-models/{model_id}/tags/{tag_key}": "delete on experiment (model_id (path))",
        "GET /api/2.0/mlflow/logged-models/{model_id}": "read on experiment (model_id (path))",
        "GET /api/2.0/mlflow/logged-models/{model_id}/artifacts/directories": "read on experiment (model_id (path))",
        "GET /api/2.0/mlflow/logged-models/{model_id}/artifacts/files": "read on experiment (model_id (path))",
        "PATCH /api/2.0/mlflow/logged-models/{model_id}": "update on experiment (model_id (path))",
        "PATCH /api/2.0/mlflow/logged-models/{model_id}/tags": "update on experiment (model_id (path))",
        "POST /api/2.0/mlflow/logged-models/{model_id}/params": "update on experiment (model_id (path))",
        "POST /api/2.0/mlflow/logged-models/search": "authenticated",
        "POST /v1/traces": "update on experiment (x-mlflow-experiment-id (header))",
        "POST /api/3.0/mlflow/datasets/create": "authenticated",
        "POST /api/3.0/mlflow/datasets/search": "authenticated",
        "GET /api/3.0/mlflow/datasets/search": "authenticated",
        "GET /api/3.0/mlflow/datasets/{dataset_id}": "read on experiment (dataset_id (path))",
        "DELETE /api/3.0/mlflow/datasets/{dataset_id}": "delete on experiment (dataset_id (path))",
        "PATCH /api/3.0/mlflow/datasets/{dataset_id}/tags": "update on experiment (dataset_id (path))",
        "DELETE /api/3.0/mlflow/datasets/{dataset_id}/tags/{key}": "update on experiment (dataset_id (path))",
        "POST /api/3.0/mlflow/datasets/{dataset_id}/records": "update on experiment (dataset_id (path))",
        "GET /api/3.0/mlflow/datasets/{dataset_id}/records": "read on experiment (dataset_id (path))",
        "DELETE /api/3.0/mlflow/datasets/{dataset_id}/records": "update on experiment (dataset_id (path))",
        "GET /api/3.0/mlflow/datasets/{dataset_id}/experiment-ids": "read on experiment (dataset_id (path))",
        "POST /api/3.0/mlflow/datasets/{dataset_id}/add-experiments": "update on experiment (dataset_id (path))",
        "POST /api/3.0/mlflow/datasets/{dataset_id}/remove-experiments": "update on experiment (dataset_id (path))",
        "POST /api/3.0/mlflow/scorers/register": "update on experiment (experiment_id)",
        "GET /api/3.0/mlflow/scorers/list": "read on experiment (experiment_id)",
        "GET /api/3.0/mlflow/scorers/versions": "read on experiment (experiment_id)",
        "GET /api/3.0/mlflow/scorers/get": "read on experiment (experiment_id)",
        "DELETE /api/3.0/mlflow/scorers/delete": "delete on experiment (experiment_id)",
        "GET /api/3.0/mlflow/scorers/online-configs": "authenticated",
        "POST /api/reprise/v1/deployments": "update on registered model (model)",
        "GET /api/reprise/v1/deployments": "authenticated",
        "GET /api/reprise/v1/deployments/current": "authenticated",
        "GET /api/reprise/v1/deployments/{deployment_id}": "read on registered model (deployment_id (path))",
        "POST /api/reprise/v1/deployments/{deployment_id}/measurements": "update on registered model (deployment_id (path))",
        "GET /api/reprise/v1/deployments/{deployment_id}/measurements": "read on registered model (deployment_id (path))",
        "POST /api/reprise/v1/incidents": "read on registered model (deployment_id)",
        "GET /api/reprise/v1/incidents": "authenticated",
        "GET /api/reprise/v1/incidents/{incident_id}": "read on registered model (incident_id (path))",
        "POST /api/reprise/v1/incidents/{incident_id}/close": "update on registered model (incident_id (path))",
        "POST /api/3.0/mlflow/traces": "update on experiment (trace.trace_info.trace_location)",
        "GET /api/3.0/mlflow/traces/{trace_id}": "read on experiment (trace_id (path))",
        "GET /api/3.0/mlflow/traces/get": "read on experiment (trace_id)",
        "GET /api/2.0/mlflow/get-trace-artifact": "read on experiment (request_id)",
        "POST /api/2.0/mlflow/traces": "update on experiment (experiment_id)",
        "PATCH /api/2.0/mlflow/traces/{trace_id}": "update on experiment (trace_id (path))",
        "GET /api/2.0/mlflow/traces/{trace_id}/info": "read on experiment (trace_id (path))",
        "GET /api/2.0/mlflow/traces": "authenticated",
        "GET /api/3.0/mlflow/traces/batchGet": "authenticated",
        "POST /api/3.0/mlflow/traces/batchGetInfos": "authenticated",
        "POST /api/3.0/mlflow/traces/search": "authenticated",
        "POST /api/3.0/mlflow/traces/metrics": "authenticated",
        "POST /api/3.0/mlflow/traces/calculate-filter-correlation": "authenticated",
        "PATCH /api/2.0/mlflow/traces/{trace_id}/tags": "update on experiment (trace_id (path))",
        "DELETE /api/2.0/mlflow/traces/{trace_id}/tags": "update on experiment (trace_id (path))",
        "PATCH /api/3.0/mlflow/traces/{trace_id}/tags": "update on experiment (trace_id (path))",
        "DELETE /api/3.0/mlflow/traces/{trace_id}/tags": "update on experiment (trace_id (path))",
        "POST /api/2.0/mlflow/traces/delete-traces": "delete on experiment (experiment_id)",
        "POST /api/3.0/mlflow/traces/delete-traces": "delete on experiment (experiment_id)",
        "POST /api/2.0/mlflow/traces/link-to-run": "update on experiment (run_id)",
        "POST /api/2.0/mlflow/traces/link-prompts": "update on experiment (trace_id)",
        "POST /api/3.0/mlflow/traces/{trace_id}/assessments": "update on experiment (trace_id (path))",
        "GET /api/3.0/mlflow/traces/{trace_id}/assessments/{assessment_id}": "read on experiment (trace_id (path))",
        "PATCH /api/3.0/mlflow/traces/{trace_id}/assessments/{assessment_id}": "update on experiment (trace_id (path))",
        "DELETE /api/3.0/mlflow/traces/{trace_id}/assessments/{assessment_id}": "update on experiment (trace_id (path))",
        "GET /api/2.0/mlflow/metrics/get-history": "read on experiment (run_id)",
        "GET /api/2.0/mlflow/metrics/get-history-bulk": "read on experiments (run_id)",
        "GET /api/2.0/mlflow/metrics/get-history-bulk-interval": "read on experiments (run_ids)",
        "POST /api/2.0/mlflow/model-versions/create": "update on registered model (name)",
        "DELETE /api/2.0/mlflow/model-versions/delete": "delete on registered model (name)",
        "DELETE /api/2.0/mlflow/model-versions/delete-tag": "delete on registered model (name)",
        "GET /api/2.0/mlflow/model-versions/get": "read on registered model (name)",
        "GET /api/2.0/mlflow/model-versions/get-download-uri": "read on registered model (name)",
        "GET /api/2.0/mlflow/model-versions/search": "authenticated",
        "POST /api/2.0/mlflow/model-versions/set-tag": "update on registered model (name)",
        "POST /api/2.0/mlflow/model-versions/transition-stage": "update on registered model (name)",
        "PATCH /api/2.0/mlflow/model-versions/update": "update on registered model (name)",
        "DELETE /api/2.0/mlflow/registered-models/alias": "delete on registered model (name)",
        "GET /api/2.0/mlflow/registered-models/alias": "read on registered model (name)",
        "POST /api/2.0/mlflow/registered-models/alias": "update on registered model (name)",
        "POST /api/2.0/mlflow/registered-models/create": "authenticated",
        "DELETE /api/2.0/mlflow/registered-models/delete": "delete on registered model (name)",
        "DELETE /api/2.0/mlflow/registered-models/delete-tag": "update on registered model (name)",
        "GET /api/2.0/mlflow/registered-models/get": "read on registered model (name)",
        "GET /api/2.0/mlflow/registered-models/get-latest-versions": "read on registered model (name)",
        "POST /api/2.0/mlflow/registered-models/get-latest-versions": "read on registered model (name)",
        "POST /api/2.0/mlflow/registered-models/permissions/create": "manage on registered model (name)",
        "DELETE /api/2.0/mlflow/registered-models/permissions/delete": "manage on registered model (name)",
        "GET /api/2.0/mlflow/registered-models/permissions/get": "manage on registered model (name)",
        "PATCH /api/2.0/mlflow/registered-models/permissions/update": "manage on registered model (name)",
        "POST /api/2.0/mlflow/registered-models/rename": "update on registered model (name)",
        "GET /api/2.0/mlflow/registered-models/search": "authenticated",
        "POST /api/2.0/mlflow/registered-models/set-tag": "update on registered model (name)",
        "PATCH /api/2.0/mlflow/registered-models/update": "update on registered model (name)",
        "POST /api/2.0/mlflow/runs/create": "update on experiment (experiment_id)",
        "POST /api/2.0/mlflow/runs/delete": "delete on experiment (run_id)",
        "POST /api/2.0/mlflow/runs/delete-tag": "update on experiment (run_id)",
        "GET /api/2.0/mlflow/runs/get": "read on experiment (run_id)",
        "POST /api/2.0/mlflow/runs/log-batch": "update on experiment (run_id)",
        "POST /api/2.0/mlflow/runs/log-inputs": "update on experiment (run_id)",
        "POST /api/2.0/mlflow/runs/log-metric": "update on experiment (run_id)",
        "POST /api/2.0/mlflow/runs/log-model": "update on experiment (run_id)",
        "POST /api/2.0/mlflow/runs/log-parameter": "update on experiment (run_id)",
        "POST /api/2.0/mlflow/runs/outputs": "update on experiment (run_id)",
        "POST /api/2.0/mlflow/runs/restore": "delete on experiment (run_id)",
        "POST /api/2.0/mlflow/runs/search": "authenticated",
        "POST /api/2.0/mlflow/runs/set-tag": "update on experiment (run_id)",
        "POST /api/2.0/mlflow/runs/update": "update on experiment (run_id)",
        "POST /api/2.0/mlflow/upload-artifact": "update on experiment (run_id (query))",
        "POST /api/2.0/mlflow/users/create": "admin",
        "GET /api/2.0/mlflow/users/current": "authenticated",
        "DELETE /api/2.0/mlflow/users/delete": "admin",
        "GET /api/2.0/mlflow/users/get": "authenticated",
        "GET /api/2.0/mlflow/users/list": "authenticated",
        "PATCH /api/2.0/mlflow/users/update-admin": "admin",
        "PATCH /api/2.0/mlflow/users/update-password": "authenticated",
        "GET /api/2.0/mlflow/webhooks": "admin",
        "POST /api/2.0/mlflow/webhooks": "admin",
        "DELETE /api/2.0/mlflow/webhooks/{webhook_id}": "admin",
        "GET /api/2.0/mlflow/webhooks/{webhook_id}": "admin",
        "PATCH /api/2.0/mlflow/webhooks/{webhook_id}": "admin",
        "POST /api/2.0/mlflow/webhooks/{webhook_id}/test": "admin",
        "POST /api/3.0/mlflow/roles/assign": "admin",
        "POST /api/3.0/mlflow/roles/create": "admin",
        "DELETE /api/3.0/mlflow/roles/delete": "admin",
        "GET /api/3.0/mlflow/roles/get": "authenticated",
        "GET /api/3.0/mlflow/roles/list": "authenticated",
        "POST /api/3.0/mlflow/roles/permissions/add": "admin",
        "GET /api/3.0/mlflow/roles/permissions/list": "authenticated",
        "DELETE /api/3.0/mlflow/roles/permissions/remove": "admin",
        "PATCH /api/3.0/mlflow/roles/permissions/update": "admin",
        "DELETE /api/3.0/mlflow/roles/unassign": "admin",
        "PATCH /api/3.0/mlflow/roles/update": "admin",
        "GET /api/3.0/mlflow/roles/users/list": "admin",
        "GET /api/3.0/mlflow/server-info": "open",
        "GET /api/3.0/mlflow/users/current/permissions": "authenticated",
        "GET /api/3.0/mlflow/users/permissions/get": "authenticated",
        "POST /api/3.0/mlflow/users/permissions/grant": "authenticated",
        "GET /api/3.0/mlflow/users/permissions/list": "authenticated",
        "POST /api/3.0/mlflow/users/permissions/revoke": "authenticated",
        "GET /api/3.0/mlflow/users/roles/list": "authenticated",
        "DELETE /api/reprise/v1/alias-policies": "manage on registered model (model)",
        "GET /api/reprise/v1/alias-policies": "authenticated",
        "PUT /api/reprise/v1/alias-policies": "manage on registered model (model)",
        "GET /api/reprise/v1/aliases/history": "read on registered model (model)",
        "POST /api/reprise/v1/aliases/rollback": "update on registered model (model)",
        "GET /api/reprise/v1/approval-requests": "authenticated",
        "POST /api/reprise/v1/approval-requests": "update on registered model (model)",
        "GET /api/reprise/v1/approval-requests/{request_id}": "authenticated",
        "POST /api/reprise/v1/approval-requests/{request_id}/approve": "authenticated",
        "POST /api/reprise/v1/approval-requests/{request_id}/reject": "authenticated",
        "POST /api/reprise/v1/approval-requests/{request_id}/cancel": "authenticated",
        "GET /api/reprise/v1/artifact-digests": "read on experiment (run_id)",
        "GET /api/reprise/v1/audit/checkpoint": "authenticated",
        "GET /api/reprise/v1/audit/events": "admin",
        "GET /api/reprise/v1/audit/verify": "authenticated",
        "POST /api/reprise/v1/audit/verify": "authenticated",
        "DELETE /api/reprise/v1/experiments/{experiment_id}/policy": "manage on experiment (experiment_id (path))",
        "GET /api/reprise/v1/experiments/{experiment_id}/policy": "read on experiment (experiment_id (path))",
        "PUT /api/reprise/v1/experiments/{experiment_id}/policy": "manage on experiment (experiment_id (path))",
        "GET /api/reprise/v1/lineage": "authenticated",
        "GET /api/reprise/v1/openapi.json": "open",
        "GET /api/reprise/v1/reproductions": "read on experiment (run_id)",
        "POST /api/reprise/v1/reproductions": "update on experiment (original_run_id)",
        "POST /api/reprise/v1/service-accounts": "admin",
        "DELETE /api/reprise/v1/tokens": "authenticated",
        "GET /api/reprise/v1/tokens": "authenticated",
        "POST /api/reprise/v1/tokens": "authenticated",
        "GET /api/reprise/v1/webhooks/{webhook_id}/deliveries": "admin",
        "GET /api/reprise/v1/whoami": "authenticated",
        "GET /get-artifact": "read on experiment (run_id)",
        "GET /health": "open",
        "GET /ready": "open",
        "GET /metrics": "authenticated",
        "GET /model-versions/get-artifact": "read on registered model (name)",
        "GET /ui/": "authenticated",
        "GET /ui/admin": "admin",
        "POST /ui/admin/grants/create": "admin",
        "POST /ui/admin/grants/delete": "admin",
        "POST /ui/admin/groups/add-member": "admin",
        "POST /ui/admin/groups/create": "admin",
        "POST /ui/admin/groups/delete": "admin",
        "POST /ui/admin/groups/remove-member": "admin",
        "POST /ui/admin/users/admin": "admin",
        "POST /ui/admin/users/create": "admin",
        "POST /ui/admin/users/delete": "admin",
        "GET /ui/approvals": "authenticated",
        "POST /ui/approvals/{request_id}/approve": "authenticated",
        "POST /ui/approvals/{request_id}/reject": "authenticated",
        "GET /ui/compare": "read on experiments (runs (query))",
        "GET /ui/charts": "read on experiments (runs (query))",
        "GET /ui/experiments/{experiment_id}/chart": "read on experiment (experiment_id (path))",
        "POST /ui/experiments": "authenticated",
        "GET /ui/experiments/{experiment_id}": "read on experiment (experiment_id (path))",
        "POST /ui/experiments/{experiment_id}/rename": "update on experiment (experiment_id (path))",
        "POST /ui/experiments/{experiment_id}/delete": "delete on experiment (experiment_id (path))",
        "GET /ui/lineage": "authenticated",
        "GET /ui/login": "open",
        "POST /ui/login": "open",
        "POST /ui/logout": "authenticated",
        "GET /ui/models": "authenticated",
        "GET /ui/models/{name}": "read on registered model (name (path))",
        "GET /ui/models/{name}/versions/{version}": "read on registered model (name (path))",
        "GET /ui/experiments/{experiment_id}/traces": "read on experiment (experiment_id (path))",
        "GET /ui/experiments/{experiment_id}/models": "read on experiment (experiment_id (path))",
        "GET /ui/traces/{trace_id}": "read on experiment (trace_id (path))",
        "GET /ui/deployments": "authenticated",
        "GET /ui/deployments/{deployment_id}": "read on registered model (deployment_id (path))",
        "GET /ui/incidents/{incident_id}": "read on registered model (incident_id (path))",
        "GET /ui/prompts": "authenticated",
        "GET /ui/prompts/{name}": "read on registered model (name (path))",
        "GET /ui/prompts/{name}/diff": "read on registered model (name (path))",
        "GET /ui/runs": "read on experiments (experiments (query))",
        "GET /ui/runs/{run_id}": "read on experiment (run_id (path))",
        "GET /ui/runs/{run_id}/artifacts": "read on experiment (run_id (path))",
        "GET /ui/runs/{run_id}/images": "read on experiment (run_id (path))",
        "GET /ui/runs/{run_id}/runbook": "read on experiment (run_id (path))",
        "GET /ui/runs/{run_id}/runbook.md": "read on experiment (run_id (path))",
        "GET /ui/runs/{run_id}/reproduce.sh": "read on experiment (run_id (path))",
        "POST /ui/runs/{run_id}/note": "update on experiment (run_id (path))",
        "POST /ui/runs/{run_id}/rename": "update on experiment (run_id (path))",
        "POST /ui/runs/{run_id}/tags": "update on experiment (run_id (path))",
        "POST /ui/runs/{run_id}/tags/delete": "update on experiment (run_id (path))",
        "POST /ui/runs/{run_id}/delete": "delete on experiment (run_id (path))",
        "POST /ui/runs/{run_id}/restore": "delete on experiment (run_id (path))",
        "GET /ui/static/app.js": "open",
        "GET /ui/tokens": "authenticated",
        "POST /ui/tokens": "authenticated",
        "POST /ui/tokens/{token_id}/revoke": "authenticated",
        "GET /version": "open",
    ]

    /// Checks some handlers make beyond their route's rule (they answer the same plain-text 403).
    /// Keyed by the documented template ("METHOD /path/{param}").
    static let handlerRules: [String: Rule] = [
        // Granting and revoking on one resource needs MANAGE on it (the request names the experiment).
        "POST /api/3.0/mlflow/users/permissions/grant": .resource(.manage, onModel: false),
        "POST /api/3.0/mlflow/users/permissions/revoke": .resource(.manage, onModel: false),
        // An approval request is visible to those who may read its model. The fixture's policy names
        // no approvers, so voting needs EDIT on the model ("anyone but the requester" never means a
        // reader); with named approvers, READ and being named suffice (the store checks the name).
        "GET /api/reprise/v1/approval-requests/{request_id}": .resource(.read, onModel: true),
        "POST /api/reprise/v1/approval-requests/{request_id}/approve": .resource(.update, onModel: true),
        "POST /api/reprise/v1/approval-requests/{request_id}/reject": .resource(.update, onModel: true),
        "POST /api/reprise/v1/approval-requests/{request_id}/cancel": .resource(.read, onModel: true),
        "POST /ui/approvals/{request_id}/approve": .resource(.update, onModel: true),
        "POST /ui/approvals/{request_id}/reject": .resource(.update, onModel: true),
        // A role's grants and members are shown to admins and its members; no matrix caller is one.
        "GET /api/3.0/mlflow/roles/get": .admin,
        "GET /api/3.0/mlflow/roles/permissions/list": .admin,
        // Lineage hides what the caller may not read, and refuses when that is the root (entity=run:<id>).
        "GET /ui/lineage": .resource(.read, onModel: false),
        "GET /api/reprise/v1/lineage": .resource(.read, onModel: false),
        // A dataset is created in (and linked to) experiments the request names: EDIT on them.
        "POST /api/3.0/mlflow/datasets/create": .resource(.update, onModel: false),
        // An environment's current deployment is shown to those who may read its model.
        "GET /api/reprise/v1/deployments/current": .resource(.read, onModel: true),
    ]

    /// Routes whose answer repeats a field of the request (a token's name), so the outsider's
    /// answer may show the fixture's names without showing anything of the fixture.
    static let echoes: Set<String> = ["POST /api/reprise/v1/tokens"]

    // MARK: - The seeded store

    struct Seed: Sendable {
        var experimentID = ""
        var experimentName = "matrix-experiment"
        var runID = ""
        var loggedModelID = ""
        var model = "matrix-model"
        var version = "1"
        var alias = "champion"
        var requestID = ""
        var roleID: Int64 = 0
        var traceID = "tr-0123456789abcdef0123456789abcdef"
        var assessmentID = ""
        var datasetID = ""
        var deploymentID = ""
        var incidentID = ""
        var environment = "matrix-prod"
    }

    /// A directory holding a seeded, closed SQLite store, and what it holds.
    final class Template: Sendable {
        let dir: TempDirectory
        let seed: Seed
        let deliverer: WebhookDeliverer

        init() async throws {
            let fixture = try await Fixture()
            let store = fixture.store
            let api = fixture.api
            var seed = Seed()
            for who in [Who.outsider, .reader, .editor, .manager] {
                _ = try await store.createUser(
                    username: who.rawValue, passwordHash: await api.authenticator!.hashPassword(AuthMatrixTests.password), isAdmin: false,
                    isService: false, canActAs: false)
            }
            seed.roleID = try await store.createRole(name: "matrix-group", workspace: "default", description: "").id
            let admin = Who.admin.authorization!
            let captured = seed
            seed = try await buildApplication(api: api, logger: Logger(label: "authmatrix-test")).test(.router) { client in
                var seed = captured
                func call(_ method: HTTPRequest.Method, _ uri: String, _ body: String, expect: HTTPResponse.Status = .ok) async throws -> JSONValue {
                    try await client.execute(
                        uri: uri, method: method, headers: [.authorization: admin, .contentType: "application/json"],
                        body: ByteBuffer(string: body)
                    ) { r in
                        let text = String(buffer: r.body)
                        #expect(r.status == expect, "seeding \(method) \(uri): \(r.status) \(text)")
                        return (try? JSONValue.parse(text)) ?? .null
                    }
                }
                let a2 = "/api/2.0/mlflow"
                seed.experimentID = try await call(.post, "\(a2)/experiments/create", #"{"name":"\#(seed.experimentName)"}"#)["experiment_id"]?.stringValue ?? ""
                seed.runID = try await call(.post, "\(a2)/runs/create", #"{"experiment_id":"\#(seed.experimentID)"}"#)["run"]?["info"]?["run_id"]?.stringValue ?? ""
                _ = try await call(.post, "\(a2)/runs/log-metric", #"{"run_id":"\#(seed.runID)","key":"m","value":1,"timestamp":1}"#)
                seed.loggedModelID = try await call(
                    .post, "\(a2)/logged-models", #"{"experiment_id":"\#(seed.experimentID)","name":"lm","source_run_id":"\#(seed.runID)"}"#
                )["model"]?["info"]?["model_id"]?.stringValue ?? ""
                _ = try await call(
                    .post, "/api/3.0/mlflow/traces",
                    #"{"trace":{"trace_info":{"trace_id":"\#(seed.traceID)","trace_location":{"type":"MLFLOW_EXPERIMENT","mlflow_experiment":{"experiment_id":"\#(seed.experimentID)"}},"request_time":"2026-01-01T00:00:00Z","state":"OK"}}}"#)
                seed.assessmentID = try await call(
                    .post, "/api/3.0/mlflow/traces/\(seed.traceID)/assessments", #"{"assessment":{"assessment_name":"a","feedback":{"value":true}}}"#
                )["assessment"]?["assessment_id"]?.stringValue ?? ""
                seed.datasetID = try await call(
                    .post, "/api/3.0/mlflow/datasets/create", #"{"name":"matrix-dataset","experiment_ids":["\#(seed.experimentID)"]}"#
                )["dataset"]?["dataset_id"]?.stringValue ?? ""
                _ = try await call(
                    .post, "/api/3.0/mlflow/datasets/\(seed.datasetID)/records", #"{"records":"[{\"inputs\": {\"q\": \"matrix\"}}]"}"#)
                _ = try await call(
                    .post, "/api/3.0/mlflow/scorers/register",
                    #"{"experiment_id":"\#(seed.experimentID)","name":"\#(seed.model)","serialized_scorer":"{\"name\": \"s\"}"}"#)
                _ = try await call(.post, "\(a2)/registered-models/create", #"{"name":"\#(seed.model)"}"#)
                seed.version = try await call(
                    .post, "\(a2)/model-versions/create", #"{"name":"\#(seed.model)","source":"models:/\#(seed.loggedModelID)","model_id":"\#(seed.loggedModelID)"}"#
                )["model_version"]?["version"]?.stringValue ?? ""
                _ = try await call(
                    .put, "/api/reprise/v1/alias-policies", #"{"model":"\#(seed.model)","alias":"\#(seed.alias)","required_approvals":1}"#)
                seed.deploymentID = try await call(
                    .post, "/api/reprise/v1/deployments",
                    #"{"environment":"\#(seed.environment)","model":"\#(seed.model)/\#(seed.version)","note":"matrix"}"#
                )["deployment"]?["id"]?.stringValue ?? ""
                seed.incidentID = try await call(
                    .post, "/api/reprise/v1/incidents", #"{"deployment_id":"\#(seed.deploymentID)","note":"matrix"}"#
                )["incident"]?["id"]?.stringValue ?? ""
                seed.requestID = try await call(
                    .post, "/api/reprise/v1/approval-requests",
                    #"{"model":"\#(seed.model)","alias":"\#(seed.alias)","version":"\#(seed.version)","rationale":"matrix"}"#, expect: .accepted
                )["approval_request"]?["id"]?.stringValue ?? ""
                try await client.execute(
                    uri: "/api/2.0/mlflow-artifacts/artifacts/\(seed.experimentID)/a.txt", method: .put,
                    headers: [.authorization: admin, .contentType: "application/octet-stream"], body: ByteBuffer(string: "a")
                ) { r in #expect(r.status == .ok) }
                return seed
            }
            for (who, level) in [(Who.reader, Permission.read), (.editor, .edit), (.manager, .manage)] {
                let user = try #require(try await store.user(named: who.rawValue))
                _ = try await store.grant(.user(user.id), .experiment, seed.experimentID, level, replace: true)
                _ = try await store.grant(.user(user.id), .registeredModel, seed.model, level, replace: true)
            }
            #expect(!seed.experimentID.isEmpty && !seed.runID.isEmpty && !seed.loggedModelID.isEmpty && !seed.requestID.isEmpty && !seed.assessmentID.isEmpty && !seed.datasetID.isEmpty && !seed.incidentID.isEmpty)
            try await fixture.driver.shutdown()
            dir = fixture.dir
            deliverer = fixture.deliverer
            self.seed = seed
        }

        func close() async {
            await deliverer.shutdown()
            dir.remove()
        }
    }

    // MARK: - Requests

    struct Sample: Sendable {
        var method: HTTPRequest.Method
        /// The documented template (or the exact path).
        var template: String
        var uri: String
        var headers: HTTPFields = [:]
        var body: String? = nil
    }

    static func encode(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }

    /// The message fields any route may read, filled with the fixture's ids; `username` is the
    /// caller's own name, so self-only routes reach their handler.
    static func fields(_ seed: Seed, _ who: Who) -> [(String, JSONValue)] {
        [
            ("experiment_id", .string(seed.experimentID)), ("experiment_ids", [.string(seed.experimentID)]),
            ("experiment_name", .string(seed.experimentName)), ("run_id", .string(seed.runID)), ("run_uuid", .string(seed.runID)),
            ("run_ids", [.string(seed.runID)]), ("original_run_id", .string(seed.runID)), ("rerun_run_id", .string(seed.runID)),
            ("model_id", .string(seed.loggedModelID)), ("name", .string(seed.model)), ("model", .string(seed.model)),
            ("version", .string(seed.version)), ("alias", .string(seed.alias)), ("key", "k"), ("value", "v"), ("metric_key", "m"),
            ("timestamp", 1), ("step", 0), ("new_name", "matrix-renamed"), ("stage", "Staging"), ("description", "d"),
            ("source", .string("models:/\(seed.loggedModelID)")), ("rationale", "matrix"), ("max_results", 10),
            ("username", .string(who == .admin ? "admin" : who.rawValue)), ("password", "new-password-0123"),
            ("resource_type", "experiment"), ("resource_id", .string(seed.experimentID)), ("resource_pattern", .string(seed.experimentID)),
            ("permission", "READ"), ("role_id", .string(String(seed.roleID))), ("role_permission_id", "1"), ("id", "no-such-token"),
            ("entity", .string("run:\(seed.runID)")), ("path", .string("\(seed.experimentID)/a.txt")), ("status", "FINISHED"),
            ("workspace", "default"), ("is_admin", false), ("tags", []), ("required_approvals", 1),
            ("trace_id", .string(seed.traceID)), ("trace_ids", [.string(seed.traceID)]), ("request_id", .string(seed.traceID)),
            ("trace", ["trace_info": [
                "trace_id": .string(seed.traceID), "request_time": "2026-01-01T00:00:01Z", "state": "OK",
                "trace_location": ["type": "MLFLOW_EXPERIMENT", "mlflow_experiment": ["experiment_id": .string(seed.experimentID)]],
            ]]),
            ("locations", [["type": "MLFLOW_EXPERIMENT", "mlflow_experiment": ["experiment_id": .string(seed.experimentID)]]]),
            ("assessment", ["assessment_name": "a", "feedback": ["value": false]]),
            ("records", #"[{"inputs": {"q": "matrix-2"}, "expectations": {"a": 1}}]"#), ("dataset_record_ids", ["dr-none"]),
            ("serialized_scorer", #"{"name": "s2"}"#),
            ("environment", .string(seed.environment)), ("deployment_id", .string(seed.deploymentID)),
            ("measurements", [["key": "latency_ms", "value": 12.5]]), ("resolution", "matrix"), ("note", "matrix"),
        ]
    }

    static func query(_ fields: [(String, JSONValue)]) -> String {
        var parts: [String] = []
        for (k, v) in fields {
            switch v {
            case .array(let items): for item in items { parts.append("\(k)=\(encode(item.stringValue ?? item.jsonString))") }
            default: parts.append("\(k)=\(encode(v.stringValue ?? v.jsonString))")
            }
        }
        return parts.joined(separator: "&")
    }

    /// The requests for one route: one for an exact route, one per documented sub-path for a
    /// route.
    static func samples(
        _ route: (method: HTTPRequest.Method, path: String), _ seed: Seed, _ who: Who, csrf: String
    ) -> [Sample] {
        let fields = Self.fields(seed, who)
        let paths: [String] = [route.path]
        let values: [String: String] = [
            "experiment_id": seed.experimentID, "run_id": seed.runID, "model_id": seed.loggedModelID, "name": encode(seed.model),
            "artifact_path": "\(seed.experimentID)/a.txt", "tag_key": "k", "webhook_id": "w-1", "request_id": seed.requestID,
            "token_id": "tok_0000000000000000", "trace_id": seed.traceID, "assessment_id": seed.assessmentID,
            "dataset_id": seed.datasetID, "key": "k", "deployment_id": seed.deploymentID, "incident_id": seed.incidentID,
        ]
        return paths.map { template in
            var uri = template
            while let open = uri.firstIndex(of: "{"), let close = uri[open...].firstIndex(of: "}") {
                uri.replaceSubrange(open...close, with: values[String(uri[uri.index(after: open)..<close])] ?? "x")
            }
            var sample = Sample(method: route.method, template: template, uri: uri)
            if template.hasPrefix("/ui") {
                if route.method == .post {
                    sample.headers[.contentType] = "application/x-www-form-urlencoded"
                    sample.headers[.cookie] = "\(RepriseAPI.csrfCookie)=\(csrf)"
                    sample.body = "csrf=\(csrf)&name=matrix-renamed&note=n&rationale=matrix"
                    if template == "/ui/login" {
                        sample.body! += "&username=\(who.rawValue)&password=" + (who == .admin ? AuthMatrixTests.adminPassword : AuthMatrixTests.password)
                    }
                } else if template == "/ui/runs" {
                    sample.uri += "?experiments=\(seed.experimentID)"
                } else if template == "/ui/compare" {
                    sample.uri += "?runs=\(seed.runID),\(seed.runID)"
                } else if template == "/ui/charts" {
                    sample.uri += "?runs=\(seed.runID)"
                } else if template == "/ui/lineage" {
                    sample.uri += "?entity=" + encode("run:\(seed.runID)")
                }
            } else if template == "/api/2.0/mlflow/upload-artifact" {
                sample.uri += "?" + query([("run_id", .string(seed.runID)), ("path", "b.txt")])
                sample.headers[.contentType] = "application/octet-stream"
                sample.body = "b"
            } else if template == "/v1/traces" {
                // An OTLP/JSON export of one span of the seeded trace.
                sample.headers[.contentType] = "application/json"
                sample.headers[HTTPField.Name("x-mlflow-experiment-id")!] = seed.experimentID
                let hex = String(seed.traceID.dropFirst(3))
                sample.body = #"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"\#(hex)","spanId":"0123456789abcdef","name":"s","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#
            } else if template.hasPrefix("/api/2.0/mlflow-artifacts/artifacts/") && route.method == .put {
                sample.headers[.contentType] = "application/octet-stream"
                sample.body = "a"
            } else if route.method == .get || route.method == .head {
                sample.uri += "?" + query(fields)
            } else {
                sample.headers[.contentType] = "application/json"
                sample.body = JSONValue.object(JSONObject(fields)).jsonString
            }
            if let auth = who.authorization { sample.headers[.authorization] = auth }
            return sample
        }
    }

    // MARK: - The matrix

    struct Outcome: Sendable {
        var cases = 0
        var allowed = 0
        var denied = 0
        var statuses: [Int: Int] = [:]
        var failures: [String] = []
    }

    /// Runs every (route, caller) of `routes` on its own copy of the template, with `change`
    /// applied to the server first (the canary test uses it to break a rule).
    static func run(
        _ routes: [(method: HTTPRequest.Method, path: String, access: Access)], template: Template,
        change: (@Sendable (RepriseAPI) -> Void)? = nil
    ) async throws -> Outcome {
        var outcome = Outcome()
        let seed = template.seed
        for route in routes {
            let key = "\(route.method.rawValue) \(route.path)"
            guard let spelled = expectedRules[key], let rule = Rule(summary: spelled) else {
                outcome.failures.append("\(key): no expected rule; add \"\(key)\": \"\(route.access.summary)\" to expectedRules if that is right")
                continue
            }
            for who in Who.allCases {
                let fixture = try await Fixture(copyOf: template.dir.path, deliverer: template.deliverer)
                change?(fixture.api)
                let samples = Self.samples(
                    (route.method, route.path), seed, who, csrf: fixture.api.csrfTokens.issue())
                let result: Outcome
                do {
                    result = try await send(samples, rule: rule, who: who, route: route, key: key, seed: seed, fixture: fixture)
                } catch {
                    await fixture.close()
                    throw error
                }
                await fixture.close()
                outcome.cases += result.cases
                outcome.allowed += result.allowed
                outcome.denied += result.denied
                outcome.failures += result.failures
                for (s, n) in result.statuses { outcome.statuses[s, default: 0] += n }
            }
        }
        return outcome
    }

    /// Sends one caller's requests for one route to a fresh server and judges the answers.
    static func send(
        _ samples: [Sample], rule: Rule, who: Who, route: (method: HTTPRequest.Method, path: String, access: Access), key: String,
        seed: Seed, fixture: Fixture
    ) async throws -> Outcome {
        let verbose = ProcessInfo.processInfo.environment["REPRISE_MATRIX_VERBOSE"] != nil
        return try await buildApplication(api: fixture.api, logger: Logger(label: "authmatrix-test")).test(.router) { client in
            var out = Outcome()
            for sample in samples {
                let extra = handlerRules["\(route.method.rawValue) \(sample.template)"]
                let allowed = rule.allows(who) && (extra?.allows(who) ?? true)
                try await client.execute(
                    uri: sample.uri, method: sample.method, headers: sample.headers, body: sample.body.map { ByteBuffer(string: $0) }
                ) { r in
                    let text = String(buffer: r.body)
                    let status = Int(r.status.code)
                    let plain = r.headers[.contentType]?.hasPrefix("text/plain") ?? false
                    // The access layer's 403: MLflow's plain text for the API, a page saying so for the UI.
                    let uiPage = sample.template == "/" || sample.template.hasPrefix("/ui")
                    let accessDenied =
                        status == 403
                        && ((text == "Permission denied" && plain) || (uiPage && text.contains("Your account may not see or change this.")))
                    let label = "\(who.rawValue) \(sample.method.rawValue) \(sample.template) [\(rule)\(extra.map { " + handler: \($0)" } ?? "")]"
                    // The access layer's 401 (a handler's, such as the login form's wrong password, is HTML).
                    let unauthenticated = status == 401 && plain
                    out.cases += 1
                    out.statuses[status, default: 0] += 1
                    if verbose { print("MATRIX \(label) -> \(status) \(text.prefix(100).replacingOccurrences(of: "\n", with: " "))") }
                    if who == .anonymous && rule != .open {
                        let page = sample.method == .get && (sample.template == "/" || sample.template.hasPrefix("/ui"))
                        let toLogin = status == 303 && (r.headers[.location] ?? "").hasPrefix("/ui/login")
                        let challenge = status == 401 && plain && r.headers[HTTPField.Name("WWW-Authenticate")!] == "Basic realm=\"mlflow\""
                        if !(challenge || (page && toLogin)) {
                            out.failures.append("\(label): expected 401\(page ? " or 303 to /ui/login" : ""), got \(status) \(text.prefix(120))")
                        }
                        out.denied += 1
                    } else if allowed {
                        out.allowed += 1
                        if unauthenticated || accessDenied {
                            out.failures.append("\(label): allowed, but got \(status) \(text.prefix(120))")
                        } else if status >= 500 && status != 501 && status != 503 {
                            out.failures.append("\(label): allowed; the handler failed with \(status) \(text.prefix(200))")
                        } else if who == .outsider && (200..<300).contains(status) && !echoes.contains(key) {
                            // Nothing of what the outsider may not read shows in an answer.
                            for secret in [seed.runID, seed.loggedModelID, seed.experimentName, seed.model] where text.contains(secret) {
                                out.failures.append("\(label): \(status) shows \(secret), which the outsider may not read: \(text.prefix(200))")
                            }
                        }
                    } else {
                        out.denied += 1
                        if !accessDenied {
                            out.failures.append("\(label): expected 403 Permission denied, got \(status) \(text.prefix(120))")
                        }
                    }
                }
            }
            return out
        }
    }

    /// Puts `access` on a registered route, keeping its handler: what a wrong rule in the code
    /// would do.
    static func redeclare(_ api: RepriseAPI, _ method: HTTPRequest.Method, _ path: String, _ access: Access) {
        guard let route = api.routes[path]?[method] else { return }
        api.routes[path]?[method] = Route(template: route.template, access: access, handler: route.handler)
    }

    /// The matrix can fail: a rule loosened, tightened or pointed at the wrong field is caught,
    /// naming the caller it lets through or shuts out.
    @Test func catchesAWrongRule() async throws {
        let template = try await Template()
        let a2 = "/api/2.0/mlflow"
        let canaries: [(String, HTTPRequest.Method, String, Access, String)] = [
            ("a read opened to anyone", .get, "\(a2)/experiments/get", .authenticated, "outsider GET"),
            ("a write that needs only READ", .post, "\(a2)/runs/log-metric", .experiment(.read, .run), "reader POST"),
            ("an admin route opened", .post, "\(a2)/users/create", .authenticated, "manager POST"),
            ("a read closed to its readers", .get, "\(a2)/registered-models/get", .admin, "reader GET"),
            // Locators fail closed: one that reads a field the request lacks shuts the editors out.
            ("a locator that reads the wrong field", .post, "\(a2)/runs/log-metric", .experiment(.update, .field("no_such_field")), "editor POST"),
            ("a page with a path parameter opened", .get, "/ui/runs/{run_id}", .authenticated, "outsider GET"),
            ("a delete that needs only EDIT", .delete, "\(a2)/registered-models/delete", .registeredModel(.update, .field("name")), "editor DELETE"),
        ]
        for (what, method, path, access, culprit) in canaries {
            let outcome = try await Self.run(
                [(method, path, .open)], template: template, change: { Self.redeclare($0, method, path, access) })
            #expect(outcome.failures.contains { $0.hasPrefix(culprit) }, "\(what) (\(method.rawValue) \(path) as \(access.summary)) was not caught: \(outcome.failures)")
            print("auth matrix canary, \(what): \(outcome.failures.count) failures, first: \(outcome.failures.first?.prefix(160) ?? "none")")
        }
        // Unchanged, the same routes pass.
        let clean = try await Self.run(
            canaries.map { ($0.1, $0.2, Access.open) }, template: template)
        #expect(clean.failures.isEmpty, "\(clean.failures)")
        await template.close()
    }

    @Test func everyRouteForEveryCaller() async throws {
        let template = try await Template()
        let api = try await Fixture(copyOf: template.dir.path, deliverer: template.deliverer)
        let table = api.api.routeTable
        await api.close()
        // The table declares the reviewed rules: no route missing from the list, none changed,
        // none listed that the table lacks.
        var declared = Set<String>()
        for r in table {
            let key = "\(r.method.rawValue) \(r.path)"
            declared.insert(key)
            if let expected = Self.expectedRules[key] {
                #expect(r.access.summary == expected, "\(key) declares \(r.access.summary), expected \(expected)")
            }
        }
        for key in Set(Self.expectedRules.keys).subtracting(declared).sorted() {
            Issue.record("\(key) is in expectedRules but not in the route table")
        }
        let outcome = try await Self.run(table, template: template)
        for failure in outcome.failures { Issue.record(Comment(rawValue: failure)) }
        let statuses = outcome.statuses.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: " ")
        print(
            "auth matrix: \(table.count) routes × \(Who.allCases.count) callers = \(outcome.cases) requests; \(outcome.allowed) allowed, \(outcome.denied) refused; statuses \(statuses); \(outcome.failures.count) failures"
        )
        #expect(outcome.cases >= table.count * Who.allCases.count)
        await template.close()
    }
}
