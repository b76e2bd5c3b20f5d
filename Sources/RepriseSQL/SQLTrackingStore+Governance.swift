import Foundation
import RepriseCore

extension SQLTrackingStore: GovernanceStore {
    // MARK: - Helpers used inside write transactions

    /// The approver list stored as JSON text.
    static func decodeApprovers(_ text: String) -> [String] {
        guard case .array(let items)? = try? JSONValue.parse(text) else { return [] }
        return items.compactMap(\.stringValue)
    }

    /// The check list stored as JSON text.
    static func decodeChecks(_ text: String) -> [ApprovalCheck] {
        guard case .array(let items)? = try? JSONValue.parse(text) else { return [] }
        return items.compactMap { try? ApprovalCheck(json: $0) }
    }

    static func decodePolicy(_ row: SQLRow) -> AliasPolicy {
        AliasPolicy(
            model: row.string(0), alias: row.string(1), requiredApprovals: Int(row.int(2)),
            approvers: decodeApprovers(row.string(3)), checks: decodeChecks(row.string(4)),
            rollbackRequiresApproval: row.int(5) == 1, selfChangeRequiresApproval: row.int(6) == 1)
    }

    static let policyColumns = "model, alias, required_approvals, approvers, checks, rollback_requires_approval, self_change_requires_approval"

    /// The policy protecting `alias` of `model`: the model's own, else the server-wide one (`*`).
    ///
    /// Aliases are case-sensitive names, as in MLflow, but protection is not: a policy on
    /// `production` covers `Production` and `PRODUCTION` too (see `refuseCaseVariant`), so a
    /// look-alike spelling is never a free, unprotected twin.
    static func policy(_ db: any SQLConnection, model: String, alias: String) async throws -> AliasPolicy? {
        // Case is folded here rather than in SQL, whose lower() folds ASCII only (aliases may hold
        // any letter). A model has few policies, so reading them all is cheap.
        let folded = alias.lowercased()
        let candidates = try await db.query(
            "SELECT \(policyColumns) FROM alias_policies WHERE model = ? OR model = '*'", [.text(model)]
        ).map(decodePolicy).filter { $0.alias.lowercased() == folded }
        // The model's own policy before the server-wide one; the exact spelling before a case variant.
        return candidates.min { a, b in
            ((a.model == "*") ? 1 : 0, a.alias == alias ? 0 : 1) < ((b.model == "*") ? 1 : 0, b.alias == alias ? 0 : 1)
        }
    }

    /// Refuses an alias that differs from a protected one only in case.
    static func refuseCaseVariant(_ policy: AliasPolicy, alias: String, model: String) throws {
        if policy.alias != alias {
            throw RepriseError(
                .permissionDenied,
                "Alias '\(alias)' of model '\(model)' differs only in case from the protected alias '\(policy.alias)', so it is refused. Use '\(policy.alias)' through an approval request.")
        }
    }

    /// Refuses renaming or deleting a model that alias policies of its own govern: a governed name
    /// must not be freed for a newcomer to take (with its aliases unguarded), so the policies are
    /// removed first, which the audit trail records.
    static func refuseIfModelHasPolicies(_ db: any SQLConnection, model: String, _ what: String) async throws {
        let aliases = try await db.query("SELECT alias FROM alias_policies WHERE model = ? ORDER BY alias", [.text(model)]).map { $0.string(0) }
        if !aliases.isEmpty {
            throw RepriseError(
                .permissionDenied,
                "Refused: \(what) while alias policies protect its aliases (\(aliases.joined(separator: ", "))). Remove those policies first (DELETE /api/reprise/v1/alias-policies); that is recorded in the audit trail.")
        }
    }

    /// Refuses a stage transition into or out of a stage that a protected alias of the same name
    /// guards (`Production` under a policy on `production`): those moves go through approval
    /// requests on the alias, like any other move of it.
    static func refuseProtectedStage(_ db: any SQLConnection, model: String, version: Int64, from: String, to: String) async throws {
        for stage in Set([from, to]) where stage != "None" && stage != "Archived" && stage != ModelStage.deletedInternal {
            if let policy = try await policy(db, model: model, alias: stage) {
                throw RepriseError(
                    .permissionDenied,
                    "Stage '\(stage)' of model '\(model)' is guarded by the policy on alias '\(policy.alias)', so version \(version) was not moved. Move the alias through an approval request (POST /api/reprise/v1/approval-requests) instead of the legacy stage.")
            }
        }
    }

    static func currentAliasVersion(_ db: any SQLConnection, model: String, alias: String) async throws -> Int64? {
        try await db.queryOne("SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?", [.text(model), .text(alias)])?
            .int(0)
    }

    /// Points the alias at `version`, remembers the move in the alias history and the audit trail.
    static func moveAlias(
        _ db: any SQLConnection, _ audit: Auditor, model: String, alias: String, version: Int64, requestID: String
    ) async throws {
        let before = try await currentAliasVersion(db, model: model, alias: alias)
        try await db.execute(
            "INSERT INTO registered_model_aliases (name, alias, version) VALUES (?, ?, ?) ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version",
            [.text(model), .text(alias), .int(version)])
        let seq = try await db.queryOne(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM alias_history WHERE model = ? AND alias = ?", [.text(model), .text(alias)])!.int(0)
        let now = Self.now()
        try await db.execute(
            "INSERT INTO alias_history (model, alias, seq, version, time, actor, request_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [.text(model), .text(alias), .int(seq), .int(version), .int(now), .text(audit.context.actor), .text(requestID)])
        try await touchModel(db, model, now)
        try await audit.record(
            db, "alias.move", "alias", "\(model)@\(alias)",
            ["before": before.map { .string(String($0)) } ?? .null, "after": .string(String(version)),
             "approval_request": requestID.isEmpty ? .null : .string(requestID)])
        try await emitWebhookEvent(db, model: model, entity: "model_version_alias", action: "created") { _ in
            ["name": .string(model), "alias": .string(alias), "version": .string(String(version))]
        }
    }

    static func openRequest(
        _ db: any SQLConnection, _ audit: Auditor, policy: AliasPolicy, model: String, alias: String, version: Int64,
        kind: String, rationale: String, payload: JSONValue? = nil
    ) async throws -> ApprovalRequest {
        let id = "req-" + String(newID().prefix(12))
        let now = Self.now()
        let previous = try await currentAliasVersion(db, model: model, alias: alias)
        // A policy change is judged by people only: the version checks are about alias moves.
        let checks = kind == "policy_change" ? [] : policy.checks
        try await db.execute(
            "INSERT INTO approval_requests (id, model, alias, target_version, previous_version, kind, requester, rationale, state, required_approvals, approvers, checks, created_time, updated_time, resolution, requester_id, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, '', ?, ?)",
            [.text(id), .text(model), .text(alias), .int(version), SQLValue(previous), .text(kind), .text(audit.context.actor),
             .text(rationale), .int(Int64(policy.requiredApprovals)), .text(JSONValue.array(policy.approvers.map(JSONValue.string)).jsonString),
             .text(JSONValue.array(checks.map(\.json)).jsonString), .int(now), .int(now), .text(audit.context.identity),
             .text(payload?.jsonString ?? "")])
        try await audit.record(
            db, "approval.open", "approval_request", id,
            ["model": .string(model), "alias": .string(alias), "target_version": .string(String(version)),
             "previous_version": previous.map { .string(String($0)) } ?? .null, "kind": .string(kind), "rationale": .string(rationale)])
        return try await loadRequest(db, id)
    }

    static func protectedAliasError(_ r: ApprovalRequest) -> RepriseError {
        let who = r.approvers.isEmpty ? "any approver other than the requester" : "[\(r.approvers.joined(separator: ", "))]"
        return RepriseError(
            .permissionDenied,
            "Alias '\(r.alias)' of registered model '\(r.model)' is protected, so it was not moved. Approval request \(r.id) was opened to move it to version \(r.targetVersion); it needs \(r.requiredApprovals) approval(s) from \(who). Approve with `reprise models approve \(r.id)`, or see it at GET /api/reprise/v1/approval-requests/\(r.id)."
        )
    }

    /// Refuses to delete what a protected alias or an open approval request points at.
    static func refuseIfGoverned(_ db: any SQLConnection, model: String, version: Int64?, _ what: String) async throws {
        var sql = "SELECT id FROM approval_requests WHERE model = ? AND state = 'open'"
        var binds: [SQLValue] = [.text(model)]
        if let version {
            sql += " AND target_version = ?"
            binds.append(.int(version))
        }
        if let row = try await db.queryOne(sql + " LIMIT 1", binds) {
            throw RepriseError(
                .permissionDenied, "Refused: \(what) while approval request \(row.string(0)) is open. Cancel or resolve it first.")
        }
        var aliasSQL = "SELECT alias, version FROM registered_model_aliases WHERE name = ?"
        var aliasBinds: [SQLValue] = [.text(model)]
        if let version {
            aliasSQL += " AND version = ?"
            aliasBinds.append(.int(version))
        }
        for row in try await db.query(aliasSQL, aliasBinds) where try await policy(db, model: model, alias: row.string(0)) != nil {
            throw RepriseError(
                .permissionDenied,
                "Refused: \(what) while the protected alias '\(row.string(0))' points at version \(row.int(1)). Move the alias first.")
        }
    }

    static let requestColumns =
        "id, model, alias, target_version, previous_version, kind, requester, rationale, state, required_approvals, approvers, checks, created_time, updated_time, resolution"

    static func loadRequest(_ db: any SQLConnection, _ id: String) async throws -> ApprovalRequest {
        guard let row = try await db.queryOne("SELECT \(requestColumns) FROM approval_requests WHERE id = ?", [.text(id)]) else {
            throw RepriseError.notFound("Approval request '\(id)' not found")
        }
        return try await request(db, row)
    }

    static func request(_ db: any SQLConnection, _ row: SQLRow) async throws -> ApprovalRequest {
        let id = row.string(0)
        let votes = try await db.query(
            "SELECT approver, decision, rationale, time FROM approval_votes WHERE request_id = ? ORDER BY time, approver", [.text(id)]
        ).map { ApprovalRequest.Vote(approver: $0.string(0), decision: $0.string(1), rationale: $0.string(2), time: $0.int(3)) }
        return ApprovalRequest(
            id: id, model: row.string(1), alias: row.string(2), targetVersion: row.int(3), previousVersion: row.optionalInt(4),
            kind: row.string(5), requester: row.string(6), rationale: row.string(7),
            state: ApprovalState(rawValue: row.string(8)) ?? .open, requiredApprovals: Int(row.int(9)),
            approvers: decodeApprovers(row.string(10)), checks: decodeChecks(row.string(11)), votes: votes, createdTime: row.int(12), updatedTime: row.int(13),
            resolution: row.string(14))
    }

    /// A run's latest value of a metric, unless it is NaN or missing.
    static func latestMetric(_ db: any SQLConnection, _ runID: String, _ metric: String) async throws -> Double? {
        guard !runID.isEmpty,
            let row = try await db.queryOne("SELECT value, is_nan FROM latest_metrics WHERE run_uuid = ? AND key = ?", [.text(runID), .text(metric)]),
            row.int(1) == 0
        else { return nil }
        return row.double(0)
    }

    /// The active runs linked to a version (their `mlflow.linkedPrompts` tag names it), newest first.
    static func evaluationRuns(_ db: any SQLConnection, model: String, version: Int64) async throws -> [String] {
        let rows = try await db.query(
            // The key as a literal: the partial index tags_by_linked_prompts serves only a query that names it.
            "SELECT t.run_uuid, t.value FROM tags t JOIN runs r ON r.run_uuid = t.run_uuid WHERE t.key = '\(linkedPromptsKey)' AND t.value LIKE ? ESCAPE '\\' AND r.lifecycle_stage = 'active' ORDER BY r.start_time DESC, r.run_uuid",
            [.text("%" + likePrefix(JSONValue.string(model).jsonString))])
        return rows.filter { row in
            guard case .array(let items)? = try? JSONValue.parse(row.string(1)) else { return false }
            return items.contains { $0["name"]?.stringValue == model && ($0["version"]?.stringValue ?? $0["version"]?.jsonString) == String(version) }
        }.map { $0.string(0) }
    }

    /// The run (and trace) tag the client writes when a prompt version is loaded inside it.
    static let linkedPromptsKey = "mlflow.linkedPrompts"

    /// Evaluates a request's checks against the current state. Returns the failures.
    static func failedChecks(_ db: any SQLConnection, _ r: ApprovalRequest) async throws -> [String] {
        var failures: [String] = []
        let candidate = try await requireVersion(db, r.model, r.targetVersion)
        for check in r.checks {
            switch check {
            case .runComplete:
                guard !candidate.runID.isEmpty,
                    let exp = try await db.queryOne("SELECT experiment_id FROM runs WHERE run_uuid = ?", [.text(candidate.runID)])?.int(0)
                else {
                    failures.append("version \(r.targetVersion) has no source run to judge")
                    continue
                }
                guard let policy = try await loadPolicy(db, experimentID: exp) else {
                    failures.append(
                        "run_complete: experiment \(exp) of run \(candidate.runID) has no policy saying what a complete run carries (reprise policy set)")
                    continue
                }
                let problems = await policy.evaluate(tags: try runTags(db, candidate.runID), datasets: try datasetCount(db, candidate.runID))
                if !problems.isEmpty {
                    failures.append("run_complete: run \(candidate.runID) misses \(problems.joined(separator: ", ")) under experiment \(exp)'s policy")
                }
            case .reproduced:
                let verdict = candidate.runID.isEmpty
                    ? nil
                    : try await db.queryOne(
                        "SELECT verdict FROM reproductions WHERE original_run = ? ORDER BY time DESC LIMIT 1", [.text(candidate.runID)])?.string(0)
                if verdict != ReproductionVerdict.reproduced.rawValue {
                    failures.append(
                        "reproduced: the latest reproduction of run \(candidate.runID.isEmpty ? "(none)" : candidate.runID) is \(verdict ?? "missing"), not REPRODUCED (reprise reproduce \(candidate.runID))")
                }
            case .evaluated(let metric, let margin, let higherIsBetter):
                let runs = try await evaluationRuns(db, model: r.model, version: r.targetVersion)
                guard let newest = runs.first else {
                    failures.append(
                        "evaluated: no run evaluated version \(r.targetVersion) of '\(r.model)' (load the prompt inside the evaluation run, e.g. mlflow.genai.load_prompt(\"prompts:/\(r.model)/\(r.targetVersion)\") within mlflow.start_run(), or run mlflow.genai.evaluate with it)")
                    continue
                }
                guard let metric else { continue }
                var candidateValue: (run: String, value: Double)?
                for run in runs { if let v = try await latestMetric(db, run, metric) { candidateValue = (run, v); break } }
                guard let (run, new) = candidateValue else {
                    failures.append("evaluated: no run that evaluated version \(r.targetVersion) logged metric '\(metric)' (newest evaluation run: \(newest))")
                    continue
                }
                guard let currentVersion = try await currentAliasVersion(db, model: r.model, alias: r.alias), currentVersion != r.targetVersion
                else { continue }
                var old: (run: String, value: Double)?
                for other in try await evaluationRuns(db, model: r.model, version: currentVersion) {
                    if let v = try await latestMetric(db, other, metric) { old = (other, v); break }
                }
                guard let old else { continue }
                let worseBy = higherIsBetter ? old.value - new : new - old.value
                if worseBy > margin {
                    failures.append(
                        "evaluated: '\(metric)' is \(new) for version \(r.targetVersion) (run \(run)) against \(old.value) for the current version \(currentVersion) (run \(old.run)): worse by \(worseBy), more than the allowed \(margin)")
                }
            case .metricNotWorse(let metric, let margin, let higherIsBetter):
                func value(_ runID: String) async throws -> Double? { try await latestMetric(db, runID, metric) }
                guard let new = try await value(candidate.runID) else {
                    failures.append("version \(r.targetVersion) has no value for metric '\(metric)'")
                    continue
                }
                guard let currentVersion = try await currentAliasVersion(db, model: r.model, alias: r.alias),
                    let current = try? await requireVersion(db, r.model, currentVersion), let old = try await value(current.runID)
                else { continue }
                let worseBy = higherIsBetter ? old - new : new - old
                if worseBy > margin {
                    failures.append(
                        "metric '\(metric)' is \(new) for version \(r.targetVersion) against \(old) for the current version \(currentVersion): worse by \(worseBy), more than the allowed \(margin)")
                }
            }
        }
        return failures
    }

    // MARK: - GovernanceStore

    public func setAliasPolicy(_ policy: AliasPolicy) async throws -> ApprovalRequest? {
        if policy.model != "*" { _ = try Validation.validateRegisteredModelName(policy.model) }
        try Validation.validateAlias(policy.alias)
        if policy.requiredApprovals < 1 { throw RepriseError.invalid("required_approvals must be at least 1") }
        // A group can hold any number of people, so only a list of named users bounds the count.
        let namedOnly = !policy.approvers.contains { $0.hasPrefix("group:") }
        if namedOnly && !policy.approvers.isEmpty && policy.approvers.count < policy.requiredApprovals {
            throw RepriseError.invalid(
                "required_approvals (\(policy.requiredApprovals)) is more than the \(policy.approvers.count) named approver(s); the rule could never be met")
        }
        for a in policy.approvers where a.isEmpty || a == "group:" {
            throw RepriseError.invalid("An approver must be a user name or group:<name>, got '\(a)'.")
        }
        return try await write { db, audit in
            if policy.model != "*" { _ = try await Self.requireRegisteredModel(db, policy.model) }
            // The policy that guards this alias now: the model's own, else a server-wide one that
            // guards itself (a new, laxer per-model policy must not escape it).
            var guarding = try await Self.exactPolicy(db, model: policy.model, alias: policy.alias)
            if guarding == nil {
                guarding = try await Self.exactPolicy(db, model: "*", alias: policy.alias).flatMap { $0.selfChangeRequiresApproval ? $0 : nil }
            }
            if let current = guarding, current.selfChangeRequiresApproval {
                return try await Self.openRequest(
                    db, audit, policy: current, model: policy.model, alias: policy.alias, version: 0, kind: "policy_change",
                    rationale: "change the policy to \(policy.json.jsonString)", payload: ["set": policy.json])
            }
            try await Self.applyPolicy(db, audit, policy)
            return nil
        }
    }

    static func applyPolicy(_ db: any SQLConnection, _ audit: Auditor, _ policy: AliasPolicy) async throws {
        try await db.execute(
            "INSERT INTO alias_policies (\(Self.policyColumns)) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (model, alias) DO UPDATE SET required_approvals = excluded.required_approvals, approvers = excluded.approvers, checks = excluded.checks, rollback_requires_approval = excluded.rollback_requires_approval, self_change_requires_approval = excluded.self_change_requires_approval",
            [.text(policy.model), .text(policy.alias), .int(Int64(policy.requiredApprovals)),
             .text(JSONValue.array(policy.approvers.map(JSONValue.string)).jsonString),
             .text(JSONValue.array(policy.checks.map(\.json)).jsonString), .int(policy.rollbackRequiresApproval ? 1 : 0),
             .int(policy.selfChangeRequiresApproval ? 1 : 0)])
        try await audit.record(db, "alias_policy.set", "alias_policy", "\(policy.model)@\(policy.alias)", policy.json)
    }

    static func exactPolicy(_ db: any SQLConnection, model: String, alias: String) async throws -> AliasPolicy? {
        try await db.queryOne("SELECT \(policyColumns) FROM alias_policies WHERE model = ? AND alias = ?", [.text(model), .text(alias)])
            .map(decodePolicy)
    }

    public func deleteAliasPolicy(model: String, alias: String) async throws -> ApprovalRequest? {
        try await write { db, audit in
            guard let current = try await Self.exactPolicy(db, model: model, alias: alias) else {
                throw RepriseError.notFound("No policy protects alias '\(alias)' of '\(model)'")
            }
            if current.selfChangeRequiresApproval {
                return try await Self.openRequest(
                    db, audit, policy: current, model: model, alias: alias, version: 0, kind: "policy_change",
                    rationale: "delete the policy", payload: ["delete": true])
            }
            try await Self.removePolicy(db, audit, model: model, alias: alias)
            return nil
        }
    }

    static func removePolicy(_ db: any SQLConnection, _ audit: Auditor, model: String, alias: String) async throws {
        try await db.execute("DELETE FROM alias_policies WHERE model = ? AND alias = ?", [.text(model), .text(alias)])
        try await audit.record(db, "alias_policy.delete", "alias_policy", "\(model)@\(alias)")
    }

    public func aliasPolicies(model: String?) async throws -> [AliasPolicy] {
        try await read { db in
            if let model {
                return try await db.query(
                    "SELECT \(Self.policyColumns) FROM alias_policies WHERE model = ? OR model = '*' ORDER BY model, alias", [.text(model)]
                ).map(Self.decodePolicy)
            }
            return try await db.query("SELECT \(Self.policyColumns) FROM alias_policies ORDER BY model, alias", []).map(Self.decodePolicy)
        }
    }

    public func requestAliasMove(model: String, alias: String, version: Int64, rationale: String) async throws -> ApprovalRequest? {
        try Validation.validateAlias(alias)
        if rationale.trimmingCharacters(in: .whitespaces).isEmpty { throw RepriseError.missing("rationale") }
        return try await write { db, audit in
            _ = try await Self.requireRegisteredModel(db, model)
            _ = try await Self.requireVersion(db, model, version)
            guard let policy = try await Self.policy(db, model: model, alias: alias) else {
                try await Self.moveAlias(db, audit, model: model, alias: alias, version: version, requestID: "")
                return nil
            }
            return try await Self.openRequest(
                db, audit, policy: policy, model: model, alias: alias, version: version, kind: "move", rationale: rationale)
        }
    }

    public func approvalRequest(id: String) async throws -> ApprovalRequest {
        try await read { db in try await Self.loadRequest(db, id) }
    }

    public func approvalRequests(model: String?, state: ApprovalState?) async throws -> [ApprovalRequest] {
        var sql = "SELECT \(Self.requestColumns) FROM approval_requests WHERE 1 = 1"
        var binds: [SQLValue] = []
        if let model {
            sql += " AND model = ?"
            binds.append(.text(model))
        }
        if let state {
            sql += " AND state = ?"
            binds.append(.text(state.rawValue))
        }
        let finalSQL = sql + " ORDER BY created_time DESC, id LIMIT 1000"
        let finalBinds = binds
        return try await read { db in try await db.query(finalSQL, finalBinds).asyncMap { try await Self.request(db, $0) } }
    }

    public func vote(requestID: String, approve: Bool, rationale: String) async throws -> ApprovalRequest {
        if rationale.trimmingCharacters(in: .whitespaces).isEmpty { throw RepriseError.missing("rationale") }
        return try await write { db, audit in
            let r = try await Self.loadRequest(db, requestID)
            let actor = audit.context.actor
            guard r.state == .open else {
                throw RepriseError.invalid("Approval request \(requestID) is \(r.state.rawValue); only open requests take votes.")
            }
            // Identities, not names, decide: the requester's and every voter's principal id (with
            // authentication on), else the claimed name. A service account acting for someone
            // counts as that someone here and is recorded as `via` in the audit trail.
            if !audit.context.via.isEmpty {
                throw RepriseError(
                    .permissionDenied,
                    "Votes are cast by people: service account \(audit.context.via) cannot vote for \(actor). Ask \(actor) to approve with their own credentials.")
            }
            let me = audit.context.identity
            let requesterID = try await db.queryOne("SELECT requester_id FROM approval_requests WHERE id = ?", [.text(requestID)])?.string(0) ?? ""
            if actor == r.requester || me == requesterID {
                throw RepriseError(.permissionDenied, "Self-approval is not allowed: \(actor) opened request \(requestID).")
            }
            if !AliasPolicy.isApprover(r.approvers, audit.context) {
                throw RepriseError(
                    .permissionDenied,
                    "\(actor) is not an approver of alias '\(r.alias)' of '\(r.model)'. Approvers: [\(r.approvers.joined(separator: ", "))].")
            }
            let voters = try await db.query("SELECT approver, approver_id FROM approval_votes WHERE request_id = ?", [.text(requestID)])
            if voters.contains(where: { $0.string(0) == actor || (!$0.string(1).isEmpty && $0.string(1) == me) }) {
                throw RepriseError.invalid("\(actor) has already voted on request \(requestID).")
            }
            let now = Self.now()
            try await db.execute(
                "INSERT INTO approval_votes (request_id, approver, decision, rationale, time, approver_id) VALUES (?, ?, ?, ?, ?, ?)",
                [.text(requestID), .text(actor), .text(approve ? "approve" : "reject"), .text(rationale), .int(now), .text(me)])
            try await audit.record(
                db, approve ? "approval.approve" : "approval.reject", "approval_request", requestID,
                ["rationale": .string(rationale), "model": .string(r.model), "alias": .string(r.alias)])
            if !approve {
                try await db.execute(
                    "UPDATE approval_requests SET state = 'rejected', updated_time = ?, resolution = ? WHERE id = ?",
                    [.int(now), .text("rejected by \(actor): \(rationale)"), .text(requestID)])
                return try await Self.loadRequest(db, requestID)
            }
            let approvals = r.votes.filter { $0.decision == "approve" }.count + 1
            if approvals >= r.requiredApprovals, r.kind == "policy_change" {
                let payloadText = try await db.queryOne("SELECT payload FROM approval_requests WHERE id = ?", [.text(requestID)])?.string(0) ?? ""
                let payload = (try? JSONValue.parse(payloadText)) ?? .null
                let resolution: String
                if let set = payload["set"] {
                    let policy = try Self.policyFromJSON(set)
                    try await Self.applyPolicy(db, audit, policy)
                    resolution = "policy on alias '\(r.alias)' changed"
                } else if payload["delete"] != nil {
                    try await Self.removePolicy(db, audit, model: r.model, alias: r.alias)
                    resolution = "policy on alias '\(r.alias)' deleted"
                } else {
                    throw RepriseError.invalid("Approval request \(requestID) carries no policy change.")
                }
                try await db.execute(
                    "UPDATE approval_requests SET state = 'approved', updated_time = ?, resolution = ? WHERE id = ?",
                    [.int(now), .text(resolution), .text(requestID)])
            } else if approvals >= r.requiredApprovals {
                let failures = try await Self.failedChecks(db, r)
                if !failures.isEmpty {
                    throw RepriseError.invalid(
                        "Request \(requestID) has its approvals but its checks fail, so the alias was not moved: \(failures.joined(separator: "; ")).")
                }
                try await Self.moveAlias(db, audit, model: r.model, alias: r.alias, version: r.targetVersion, requestID: requestID)
                try await db.execute(
                    "UPDATE approval_requests SET state = 'approved', updated_time = ?, resolution = ? WHERE id = ?",
                    [.int(now), .text("alias '\(r.alias)' moved to version \(r.targetVersion)"), .text(requestID)])
            } else {
                try await db.execute("UPDATE approval_requests SET updated_time = ? WHERE id = ?", [.int(now), .text(requestID)])
            }
            return try await Self.loadRequest(db, requestID)
        }
    }

    public func cancel(requestID: String, rationale: String) async throws -> ApprovalRequest {
        try await write { db, audit in
            let r = try await Self.loadRequest(db, requestID)
            guard r.state == .open else {
                throw RepriseError.invalid("Approval request \(requestID) is \(r.state.rawValue); only open requests can be cancelled.")
            }
            let actor = audit.context.actor
            if !audit.context.via.isEmpty {
                throw RepriseError(.permissionDenied, "Service account \(audit.context.via) cannot cancel approval requests for \(actor).")
            }
            let requesterID = try await db.queryOne("SELECT requester_id FROM approval_requests WHERE id = ?", [.text(requestID)])?.string(0) ?? ""
            let isRequester = requesterID.isEmpty ? actor == r.requester : requesterID == audit.context.identity
            if !isRequester && (r.approvers.isEmpty || !AliasPolicy.isApprover(r.approvers, audit.context)) {
                throw RepriseError(.permissionDenied, "Only the requester or an approver can cancel request \(requestID).")
            }
            try await db.execute(
                "UPDATE approval_requests SET state = 'cancelled', updated_time = ?, resolution = ? WHERE id = ?",
                [.int(Self.now()), .text("cancelled by \(actor)\(rationale.isEmpty ? "" : ": " + rationale)"), .text(requestID)])
            try await audit.record(db, "approval.cancel", "approval_request", requestID, ["rationale": .string(rationale)])
            return try await Self.loadRequest(db, requestID)
        }
    }

    public func rollback(model: String, alias: String, rationale: String) async throws -> ApprovalRequest? {
        if rationale.trimmingCharacters(in: .whitespaces).isEmpty { throw RepriseError.missing("rationale") }
        return try await write { db, audit in
            _ = try await Self.requireRegisteredModel(db, model)
            guard let current = try await Self.currentAliasVersion(db, model: model, alias: alias) else {
                throw RepriseError.invalid("Alias '\(alias)' of '\(model)' is not set, so there is nothing to roll back.")
            }
            let history = try await db.query(
                "SELECT version FROM alias_history WHERE model = ? AND alias = ? ORDER BY seq DESC", [.text(model), .text(alias)]
            ).map { $0.int(0) }
            guard let previous = history.dropFirst().first(where: { $0 != current }) else {
                throw RepriseError.invalid("Alias '\(alias)' of '\(model)' has no earlier version to roll back to.")
            }
            _ = try await Self.requireVersion(db, model, previous)
            if let policy = try await Self.policy(db, model: model, alias: alias), policy.rollbackRequiresApproval {
                return try await Self.openRequest(
                    db, audit, policy: policy, model: model, alias: alias, version: previous, kind: "rollback", rationale: rationale)
            }
            try await Self.moveAlias(db, audit, model: model, alias: alias, version: previous, requestID: "")
            return nil
        }
    }

    public func aliasHistory(model: String, alias: String) async throws -> [(version: Int64, time: Int64, actor: String, requestID: String)] {
        try await read { db in
            try await db.query(
                "SELECT version, time, actor, request_id FROM alias_history WHERE model = ? AND alias = ? ORDER BY seq DESC",
                [.text(model), .text(alias)]
            ).map { (version: $0.int(0), time: $0.int(1), actor: $0.string(2), requestID: $0.string(3)) }
        }
    }
}

extension SQLTrackingStore {
    /// A policy from its JSON form (as stored in a pending `policy_change` request).
    static func policyFromJSON(_ j: JSONValue) throws -> AliasPolicy {
        guard let model = j["model"]?.stringValue, let alias = j["alias"]?.stringValue else {
            throw RepriseError.invalid("A stored policy change lacks its model or alias.")
        }
        var required = 1
        if case .int(let n)? = j["required_approvals"] { required = Int(clamping: n) }
        var approvers: [String] = []
        if case .array(let a)? = j["approvers"] { approvers = a.compactMap(\.stringValue) }
        var checks: [ApprovalCheck] = []
        if case .array(let c)? = j["checks"] { checks = try c.map { try ApprovalCheck(json: $0) } }
        var rollback = true
        if case .bool(let b)? = j["rollback_requires_approval"] { rollback = b }
        var selfChange = false
        if case .bool(let b)? = j["self_change_requires_approval"] { selfChange = b }
        return AliasPolicy(
            model: model, alias: alias, requiredApprovals: required, approvers: approvers, checks: checks,
            rollbackRequiresApproval: rollback, selfChangeRequiresApproval: selfChange)
    }
}
