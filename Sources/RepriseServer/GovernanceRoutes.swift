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

        route(.get, "\(p)/alias-policies", access: .authenticated) { [self] call in
            var policies: [AliasPolicy] = []
            for policy in try await governance.aliasPolicies(model: call.query["model"]?.first) {
                if policy.model == "*" {
                    policies.append(policy)
                } else if try await callerMay(.read, registeredModel: policy.model) {
                    policies.append(policy)
                }
            }
            return Self.json(["policies": .array(policies.map(\.json))])
        }
        // Setting, weakening or deleting a policy needs MANAGE on the model (on `*` for the
        // server-wide policy: admins, or a wildcard MANAGE grant).
        route(.put, "\(p)/alias-policies", access: .registeredModel(.manage, .field("model"))) { [self] call in
            let q = try await call.params()
            try requireAdminForServerWide(try q.requiredString("model"))
            let checks = try q.array("checks").map { try ApprovalCheck(json: $0) }
            let policy = AliasPolicy(
                model: try q.requiredString("model"), alias: try q.requiredString("alias"),
                requiredApprovals: Int(clamping: try q.int64("required_approvals") ?? 1), approvers: try q.stringList("approvers"),
                checks: checks, rollbackRequiresApproval: try q.bool("rollback_requires_approval") ?? true,
                selfChangeRequiresApproval: try q.bool("self_change_requires_approval") ?? false)
            if let pending = try await governance.setAliasPolicy(policy) {
                return Self.json(["approval_request": pending.json], status: .accepted)
            }
            return Self.json(["policy": policy.json])
        }
        route(.delete, "\(p)/alias-policies", access: .registeredModel(.manage, .field("model"))) { [self] call in
            let q = try await call.params()
            try requireAdminForServerWide(try q.requiredString("model"))
            if let pending = try await governance.deleteAliasPolicy(model: try q.requiredString("model"), alias: try q.requiredString("alias")) {
                return Self.json(["approval_request": pending.json], status: .accepted)
            }
            return Self.json(Self.empty)
        }

        route(.post, "\(p)/approval-requests", access: .registeredModel(.update, .field("model"))) { call in
            let q = try await call.params()
            let model = try q.requiredString("model")
            let alias = try q.requiredString("alias")
            let version = try q.version()
            let r = try await governance.requestAliasMove(
                model: model, alias: alias, version: version, rationale: try q.string("rationale") ?? "")
            return Self.policyResponse(r, moved: (model, alias, version))
        }
        route(.get, "\(p)/approval-requests", access: .authenticated) { [self] call in
            let state = try call.query["state"]?.first.map { s -> ApprovalState in
                guard let st = ApprovalState(rawValue: s) else {
                    throw RepriseError.invalid("Invalid state '\(s)'. Valid states are open, approved, rejected, cancelled.")
                }
                return st
            }
            var requests: [ApprovalRequest] = []
            for r in try await governance.approvalRequests(model: call.query["model"]?.first, state: state) {
                if try await callerMay(.read, registeredModel: r.model) { requests.append(r) }
            }
            return Self.json(["approval_requests": .array(requests.map(\.json))])
        }
        // The request's model is read from the store: anyone who may read the model may see it
        // and vote (the approver list decides whose votes count).
        route(.get, "\(p)/approval-requests/{request_id}", access: .authenticated) { [self] call in
            let r = try await governance.approvalRequest(id: try call.pathParameter("request_id"))
            try await requireCaller(.read, registeredModel: r.model)
            return Self.json(["approval_request": r.json])
        }
        for action in ["approve", "reject", "cancel"] {
            route(.post, "\(p)/approval-requests/{request_id}/\(action)", access: .authenticated) { [self] call in
                let id = try call.pathParameter("request_id")
                let rationale = try await call.params().string("rationale") ?? ""
                try await requireVoter(try await governance.approvalRequest(id: id), action: action)
                let r: ApprovalRequest
                switch action {
                case "approve": r = try await governance.vote(requestID: id, approve: true, rationale: rationale)
                case "reject": r = try await governance.vote(requestID: id, approve: false, rationale: rationale)
                default: r = try await governance.cancel(requestID: id, rationale: rationale)
                }
                return Self.json(["approval_request": r.json])
            }
        }

        route(.post, "\(p)/aliases/rollback", access: .registeredModel(.update, .field("model"))) { call in
            let q = try await call.params()
            let model = try q.requiredString("model")
            let alias = try q.requiredString("alias")
            let r = try await governance.rollback(model: model, alias: alias, rationale: try q.string("rationale") ?? "")
            if let r { return Self.json(["approval_request": r.json], status: .accepted) }
            let history = try await governance.aliasHistory(model: model, alias: alias)
            return Self.json(["moved": true, "model": .string(model), "alias": .string(alias), "version": .string(String(history.first?.version ?? 0))])
        }
        route(.get, "\(p)/aliases/history", access: .registeredModel(.read, .field("model"))) { call in
            let q = try await call.params()
            let history = try await governance.aliasHistory(model: try q.requiredString("model"), alias: try q.requiredString("alias"))
            return Self.json([
                "history": .array(history.map {
                    ["version": .string(String($0.version)), "time": .int($0.time), "actor": .string($0.actor),
                     "approval_request": .string($0.requestID)]
                })
            ])
        }

        // The whole trail names every user and resource: admins (auditors) only.
        route(.get, "\(p)/audit/events", access: .admin) { call in
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
        route(.get, "\(p)/audit/verify", access: .authenticated) { _ in
            Self.json(try await governance.verifyAudit(checkpoints: []).json)
        }
        // Checks the chain against checkpoints the caller kept elsewhere (an export's last line).
        route(.post, "\(p)/audit/verify", access: .authenticated) { call in
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
        route(.get, "\(p)/audit/checkpoint", access: .authenticated) { _ in
            guard let c = try await governance.checkpointAudit() else { return Self.json(["checkpoint": .null]) }
            return Self.json(["checkpoint": c.json])
        }
        route(.get, "\(p)/openapi.json", access: .open) { _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: OpenAPIDocument.json)))
        }
    }
}

extension RepriseAPI {
    /// Server-wide policies (`model: "*"`) are admins' to set or delete, whatever wildcard grants say.
    func requireAdminForServerWide(_ model: String) throws {
        if model == "*", authorizer != nil, Caller.principal?.isAdmin != true { throw AccessDenied() }
    }

    /// Who may act on an approval request: anyone who may read the model, when the policy names
    /// its approvers (the store then checks the name or group); EDIT on the model when it names
    /// none, so "anyone but the requester" never means a reader.
    func requireVoter(_ r: ApprovalRequest, action: String) async throws {
        try await requireCaller(.read, registeredModel: r.model)
        if r.approvers.isEmpty && (action == "approve" || action == "reject") {
            try await requireCaller(.update, registeredModel: r.model)
        }
    }
}
