import Foundation
import Hummingbird
import RepriseCore

// Reprise's deployment records (`/api/reprise/v1/deployments`, `/api/reprise/v1/incidents`):
// what was deployed where, resolved to exact versions, its production measurements, incidents.
extension RepriseAPI {
    func deploymentStore() throws -> any DeploymentStore {
        guard let deployments else { throw RepriseError(.notImplemented, "This server's store does not keep deployments.") }
        return deployments
    }

    /// Who records or reports: the authenticated caller, else the actor the request names.
    static func actor() -> String {
        if let p = Caller.principal { return p.username }
        return WriteContext.current.actor
    }

    /// The reference a request's `model` field names (for the permission check and the handler).
    static func modelReference(_ p: Params) throws -> RegistryReference {
        try RegistryReference(parsing: try p.requiredString("model"), what: "model")
    }

    func registerDeployments() {
        let base = "/api/reprise/v1/deployments"
        route(.post, base, access: .registeredModel(.update, .modelReference)) { [self] call in
            let p = try await call.params()
            let prompts = try p.stringList("prompts").map { try RegistryReference(parsing: $0, what: "prompt") }
            for prompt in prompts { try await requireCaller(.read, registeredModel: prompt.name) }
            let input = DeploymentInput(
                environment: try p.requiredString("environment"), model: try Self.modelReference(p), prompts: prompts,
                endpoint: try p.string("endpoint").flatMap { $0.isEmpty ? nil : $0 }, config: try p.string("config"),
                note: try p.string("note").flatMap { $0.isEmpty ? nil : $0 })
            let d = try await deploymentStore().recordDeployment(input, user: Self.actor())
            return Self.json(["deployment": d.json])
        }
        route(.get, base, access: .authenticated) { [self] call in
            let p = try await call.params()
            let max = try Self.pageSize(p, default: 100)
            let canRead = try await callerPredicate(.read, .registeredModel)
            let page = try await readable(
                offset: try PageToken.decode(try p.string("page_token")), maxResults: max,
                fetch: { offset in try await self.deploymentStore().deployments(environment: try p.string("environment"), maxResults: max, offset: offset) },
                readable: { canRead($0.model.name) })
            var o = JSONObject([("deployments", .array(page.items.map(\.json)))])
            if let next = page.next { o["next_page_token"] = .string(PageToken.encode(offset: next)) }
            return Self.json(.object(o))
        }
        // The environment's current deployment, and the one before it (what a rollback returns to).
        route(.get, "\(base)/current", access: .authenticated) { [self] call in
            let environment = try await call.params().requiredString("environment")
            let history = try await deploymentStore().deployments(environment: environment, maxResults: 1, offset: 0)
            guard let current = history.items.first else {
                throw RepriseError.notFound("Nothing has been deployed to '\(environment)' yet.")
            }
            try await requireCaller(.read, registeredModel: current.model.name)
            var o = JSONObject([("deployment", current.json)])
            if let previous = current.previousID { o["previous"] = try await deploymentStore().getDeployment(id: previous).json }
            return Self.json(.object(o))
        }
        route(.get, "\(base)/{deployment_id}", access: .registeredModel(.read, .pathDeployment("deployment_id"))) { [self] call in
            Self.json(["deployment": try await deploymentStore().getDeployment(id: try call.pathParameter("deployment_id")).json])
        }
        route(.post, "\(base)/{deployment_id}/measurements", access: .registeredModel(.update, .pathDeployment("deployment_id"))) { [self] call in
            let p = try await call.params()
            let now = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
            let items = try p.array("measurements").map { item -> DeploymentMeasurement in
                guard case .object(let o) = item else { throw RepriseError.invalid("Each measurement is an object {key, value, timestamp?}.") }
                let m = Params(source: .json(o))
                guard let value = try m.double("value") else { throw RepriseError.missing("measurements.value") }
                return DeploymentMeasurement(key: try m.requiredString("key"), value: value, timestamp: try m.int64("timestamp") ?? now)
            }
            try await deploymentStore().logDeploymentMeasurements(id: try call.pathParameter("deployment_id"), items)
            return Self.json(Self.empty)
        }
        route(.get, "\(base)/{deployment_id}/measurements", access: .registeredModel(.read, .pathDeployment("deployment_id"))) { [self] call in
            let p = try await call.params()
            let list = try await deploymentStore().deploymentMeasurements(
                id: try call.pathParameter("deployment_id"), key: try p.string("key"), maxResults: try Self.pageSize(p, default: 10_000, most: 100_000))
            return Self.json(["measurements": .array(list.map(\.json))])
        }

        let incidents = "/api/reprise/v1/incidents"
        route(.post, incidents, access: .registeredModel(.read, .deploymentField("deployment_id"))) { [self] call in
            let p = try await call.params()
            let i = try await deploymentStore().openIncident(
                deploymentID: try p.requiredString("deployment_id"), note: try p.requiredString("note"), user: Self.actor())
            return Self.json(["incident": i.json])
        }
        route(.get, incidents, access: .authenticated) { [self] call in
            let p = try await call.params()
            let status = try p.string("status")
            if let status, status != "open", status != "closed" { throw RepriseError.invalid("Invalid status '\(status)': open or closed.") }
            let store = try deploymentStore()
            let list = try await store.incidents(
                deploymentID: try p.string("deployment_id"), environment: try p.string("environment"), status: status,
                maxResults: try Self.pageSize(p, default: 100))
            var visible: [JSONValue] = []
            for i in list where try await callerMay(.read, registeredModel: try await store.getDeployment(id: i.deploymentID).model.name) {
                visible.append(i.json)
            }
            return Self.json(["incidents": .array(visible)])
        }
        route(.get, "\(incidents)/{incident_id}", access: .registeredModel(.read, .pathIncident("incident_id"))) { [self] call in
            let store = try deploymentStore()
            let i = try await store.getIncident(id: try call.pathParameter("incident_id"))
            return Self.json(["incident": i.json, "deployment": try await store.getDeployment(id: i.deploymentID).json])
        }
        route(.post, "\(incidents)/{incident_id}/close", access: .registeredModel(.update, .pathIncident("incident_id"))) { [self] call in
            let p = try await call.params()
            let i = try await deploymentStore().closeIncident(
                id: try call.pathParameter("incident_id"), resolution: try p.requiredString("resolution"), user: Self.actor())
            return Self.json(["incident": i.json])
        }
    }

    /// `max_results`, defaulted and bounded.
    static func pageSize(_ p: Params, default value: Int, most: Int = 1000) throws -> Int {
        let n = try p.int64("max_results").map { Int(clamping: $0) } ?? value
        guard n >= 1, n <= most else { throw RepriseError.invalid("Invalid value \(n) for parameter 'max_results' supplied: 1 to \(most).") }
        return n
    }
}
