import Foundation
import Hummingbird
import RepriseCore

extension RepriseAPI {
    static let extensionPrefix = "/api/reprise/v1"

    static func policyResponse(_ r: ApprovalRequest?, moved: (String, String, Int64)? = nil) -> Response {
        if let r { return json(["approval_request": r.json], status: .accepted) }
        if let (model, alias, version) = moved {
            return json(["moved": true, "model": .string(model), "alias": .string(alias), "version": .string(String(version))])
        }
        return json(empty)
    }

    func registerGovernance() {
        let governance = self.governance
        let p = Self.extensionPrefix

        route(.get, "\(p)/alias-policies") { call in
            let policies = try await governance.aliasPolicies(model: call.query["model"]?.first)
            return Self.json(["policies": .array(policies.map(\.json))])
        }
        route(.put, "\(p)/alias-policies") { call in
            let q = try await call.params()
            let checks = try q.array("checks").map { try ApprovalCheck(json: $0) }
            let policy = AliasPolicy(
                model: try q.requiredString("model"), alias: try q.requiredString("alias"),
                requiredApprovals: Int(clamping: try q.int64("required_approvals") ?? 1), approvers: try q.stringList("approvers"),
                checks: checks, rollbackRequiresApproval: try q.bool("rollback_requires_approval") ?? true)
            try await governance.setAliasPolicy(policy)
            return Self.json(["policy": policy.json])
        }
        route(.delete, "\(p)/alias-policies") { call in
            let q = try await call.params()
            try await governance.deleteAliasPolicy(model: try q.requiredString("model"), alias: try q.requiredString("alias"))
            return Self.json(Self.empty)
        }

        route(.post, "\(p)/approval-requests") { call in
            let q = try await call.params()
            let model = try q.requiredString("model")
            let alias = try q.requiredString("alias")
            let version = try q.version()
            let r = try await governance.requestAliasMove(
                model: model, alias: alias, version: version, rationale: try q.string("rationale") ?? "")
            return Self.policyResponse(r, moved: (model, alias, version))
        }
        route(.get, "\(p)/approval-requests") { call in
            let state = try call.query["state"]?.first.map { s -> ApprovalState in
                guard let st = ApprovalState(rawValue: s) else {
                    throw RepriseError.invalid("Invalid state '\(s)'. Valid states are open, approved, rejected, cancelled.")
                }
                return st
            }
            let requests = try await governance.approvalRequests(model: call.query["model"]?.first, state: state)
            return Self.json(["approval_requests": .array(requests.map(\.json))])
        }
        // {id} | {id}/approve | {id}/reject | {id}/cancel
        routePrefix(.get, "\(p)/approval-requests/") { call in
            guard !call.rest.contains("/"), let id = Validation.percentDecode(call.rest), !id.isEmpty else {
                throw RepriseError(.endpointNotFound, "No API endpoint at \(call.path).")
            }
            return Self.json(["approval_request": try await governance.approvalRequest(id: id).json])
        }
        routePrefix(.post, "\(p)/approval-requests/") { call in
            let parts = call.rest.split(separator: "/").map(String.init)
            guard parts.count == 2, let id = Validation.percentDecode(parts[0]) else {
                throw RepriseError(.endpointNotFound, "No API endpoint at \(call.path).")
            }
            let rationale = try await call.params().string("rationale") ?? ""
            let r: ApprovalRequest
            switch parts[1] {
            case "approve": r = try await governance.vote(requestID: id, approve: true, rationale: rationale)
            case "reject": r = try await governance.vote(requestID: id, approve: false, rationale: rationale)
            case "cancel": r = try await governance.cancel(requestID: id, rationale: rationale)
            default: throw RepriseError(.endpointNotFound, "No API endpoint at \(call.path).")
            }
            return Self.json(["approval_request": r.json])
        }

        route(.post, "\(p)/aliases/rollback") { call in
            let q = try await call.params()
            let model = try q.requiredString("model")
            let alias = try q.requiredString("alias")
            let r = try await governance.rollback(model: model, alias: alias, rationale: try q.string("rationale") ?? "")
            if let r { return Self.json(["approval_request": r.json], status: .accepted) }
            let history = try await governance.aliasHistory(model: model, alias: alias)
            return Self.json(["moved": true, "model": .string(model), "alias": .string(alias), "version": .string(String(history.first?.version ?? 0))])
        }
        route(.get, "\(p)/aliases/history") { call in
            let q = try await call.params()
            let history = try await governance.aliasHistory(model: try q.requiredString("model"), alias: try q.requiredString("alias"))
            return Self.json([
                "history": .array(history.map {
                    ["version": .string(String($0.version)), "time": .int($0.time), "actor": .string($0.actor),
                     "approval_request": .string($0.requestID)]
                })
            ])
        }

        route(.get, "\(p)/audit/events") { call in
            let q = try await call.params()
            let limit = Int(clamping: try q.int64("limit") ?? 1000)
            if limit < 1 || limit > 100_000 { throw RepriseError.invalid("limit must be between 1 and 100000, got \(limit)") }
            let events = try await governance.auditEvents(
                entityType: try q.string("entity_type"), entityID: try q.string("entity_id"),
                afterSeq: try q.int64("after_seq") ?? 0, limit: limit)
            var o = JSONObject([("events", .array(events.map(\.json)))])
            if events.count == limit, let last = events.last { o["next_after_seq"] = .int(last.seq) }
            return Self.json(.object(o))
        }
        route(.get, "\(p)/audit/verify") { _ in
            Self.json(try await governance.verifyAudit(checkpoints: []).json)
        }
        // Checks the chain against checkpoints the caller kept elsewhere (an export's last line).
        route(.post, "\(p)/audit/verify") { call in
            let p = try await call.params()
            var given: [AuditCheckpoint] = []
            for (i, item) in try p.array("checkpoints").enumerated() {
                guard let c = AuditCheckpoint(json: item) else {
                    throw RepriseError.invalid("checkpoints[\(i)] must be {seq, hash, time, signature}.")
                }
                given.append(c)
            }
            return Self.json(try await governance.verifyAudit(checkpoints: given).json)
        }
        // A signed checkpoint of the chain's head, to keep outside the server (audit export ends with one).
        route(.get, "\(p)/audit/checkpoint") { _ in
            guard let c = try await governance.checkpointAudit() else { return Self.json(["checkpoint": .null]) }
            return Self.json(["checkpoint": c.json])
        }
        route(.get, "\(p)/openapi.json") { _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: OpenAPIDocument.json)))
        }
    }
}
