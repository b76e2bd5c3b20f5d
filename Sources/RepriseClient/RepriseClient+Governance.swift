import Foundation
import RepriseCore

/// Typed calls to Reprise's extension endpoints: every answer is read by its entity's one wire
/// decoder in RepriseCore, never field by field here or in the commands.
extension RepriseClient {
    /// A run, as `runs/get` answers it.
    public func run(id: String) async throws -> Run {
        let r = try await call(.GET, "/api/2.0/mlflow/runs/get", query: [("run_id", id)])
        guard let run = r["run"] else { throw RepriseClientError.malformed("run") }
        return try Run(wire: run)
    }

    /// An experiment's policy, or nil when none is set (or the server lacks Reprise's extensions).
    public func experimentPolicy(experimentID: String) async throws -> ExperimentPolicy? {
        do {
            let r = try await call(.GET, "/api/reprise/v1/experiments/\(Self.encode(experimentID))/policy")
            guard let p = r["policy"], p != .null else { return nil }
            return try ExperimentPolicy(wire: p)
        } catch let e as RepriseError where e.code == .resourceDoesNotExist || e.code == .endpointNotFound {
            return nil
        }
    }

    /// Records a reproduction attempt; the server judges it and answers with its verdict.
    public func recordReproduction(_ body: JSONValue) async throws -> Reproduction {
        let r = try await call(.POST, "/api/reprise/v1/reproductions", body: body)
        guard let rep = r["reproduction"] else { throw RepriseClientError.malformed("reproduction") }
        return try Reproduction(wire: rep)
    }

    /// Sets an alias policy; answers the approval request it opened instead when the current policy guards itself.
    public func setAliasPolicy(_ body: JSONValue) async throws -> ApprovalRequest? {
        try await Self.optionalRequest(call(.PUT, "/api/reprise/v1/alias-policies", body: body))
    }

    /// Asks to move an alias: the open request, or nil when the alias moved at once (answered `version`).
    public func requestAliasMove(model: String, alias: String, version: String, rationale: String) async throws
        -> (request: ApprovalRequest?, version: String?)
    {
        let r = try await call(
            .POST, "/api/reprise/v1/approval-requests",
            body: ["model": .string(model), "alias": .string(alias), "version": .string(version), "rationale": .string(rationale)])
        return (try Self.optionalRequest(r), r["version"]?.stringValue)
    }

    /// Approves, rejects or cancels a request (`action`: approve, reject, cancel).
    public func decide(requestID: String, _ action: String, rationale: String) async throws -> ApprovalRequest {
        let r = try await call(.POST, "/api/reprise/v1/approval-requests/\(Self.encode(requestID))/\(action)", body: ["rationale": .string(rationale)])
        return try ApprovalRequest(wire: r["approval_request"] ?? r)
    }

    /// Approval requests, of one model or all, optionally in one state.
    public func approvalRequests(model: String?, state: String? = nil) async throws -> [ApprovalRequest] {
        var query: [(String, String)] = []
        if let model { query.append(("model", model)) }
        if let state { query.append(("state", state)) }
        let r = try await call(.GET, "/api/reprise/v1/approval-requests", query: query)
        return try r.wireArray("approval_requests").map(ApprovalRequest.init(wire:))
    }

    /// Rolls an alias back: the open request, or nil with the version it moved back to.
    public func rollback(model: String, alias: String, rationale: String) async throws -> (request: ApprovalRequest?, version: String?) {
        let r = try await call(
            .POST, "/api/reprise/v1/aliases/rollback", body: ["model": .string(model), "alias": .string(alias), "rationale": .string(rationale)])
        return (try Self.optionalRequest(r), r["version"]?.stringValue)
    }

    /// One page of audit events after `afterSeq`, and where the next page starts (nil at the end).
    public func auditEvents(entityType: String?, entityID: String?, afterSeq: Int64, limit: Int) async throws
        -> (events: [AuditEvent], next: Int64?)
    {
        var query: [(String, String)] = [("after_seq", String(afterSeq)), ("limit", String(limit))]
        if let entityType { query.append(("entity_type", entityType)) }
        if let entityID { query.append(("entity_id", entityID)) }
        let r = try await call(.GET, "/api/reprise/v1/audit/events", query: query)
        let events = try r.wireArray("events").map(AuditEvent.init(wire:))
        if case .int(let next)? = r["next_after_seq"] { return (events, next) }
        return (events, nil)
    }

    static func optionalRequest(_ r: JSONValue) throws -> ApprovalRequest? {
        guard let pending = r["approval_request"], pending != .null else { return nil }
        return try ApprovalRequest(wire: pending)
    }
}
