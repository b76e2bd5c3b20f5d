/// Who is writing, and for which request. The server sets it per request (a task-local value) and
/// the store records it on every audit event.
///
/// With authentication off the actor is whatever the client claims (the `X-Reprise-Actor` header,
/// else the Basic user name), recorded with `authenticated: false`. With it on, the actor is the
/// authenticated principal (or, for a service account allowed to act for others, the user it names,
/// with `via` recording the account).
public struct WriteContext: Sendable, Equatable {
    public var actor: String
    public var authenticated: Bool
    public var requestID: String
    /// The caller's stable identity (`user:<id>`), compared for self-approval and double votes;
    /// empty when nobody is authenticated.
    public var principalID: String
    /// The caller's groups (roles), for approver lists that name `group:<name>`.
    public var groups: [String]
    /// How the caller authenticated: `basic`, `token`, `oidc` or `session`; empty when not.
    public var method: String
    /// The access token's public id, when one was used.
    public var tokenID: String
    /// The service account that acts for `actor`, when one does.
    public var via: String

    public init(
        actor: String, authenticated: Bool, requestID: String, principalID: String = "", groups: [String] = [],
        method: String = "", tokenID: String = "", via: String = ""
    ) {
        self.actor = actor
        self.authenticated = authenticated
        self.requestID = requestID
        self.principalID = principalID
        self.groups = groups
        self.method = method
        self.tokenID = tokenID
        self.via = via
    }

    /// The identity compared in governance rules: the principal when authenticated, else the name.
    public var identity: String { principalID.isEmpty ? "name:" + actor : principalID }

    /// What the audit event's `auth` field records: empty for an unauthenticated write.
    public var authRecord: String {
        guard authenticated else { return "" }
        var o = JSONObject([("method", .string(method))])
        if !tokenID.isEmpty { o["token_id"] = .string(tokenID) }
        if !via.isEmpty { o["via"] = .string(via) }
        if !principalID.isEmpty { o["principal"] = .string(principalID) }
        return JSONValue.object(o).jsonString
    }

    public static let system = WriteContext(actor: "system", authenticated: false, requestID: "")

    @TaskLocal public static var current = WriteContext.system
}

/// One entry of the append-only audit trail. Each event carries the SHA-256 of the previous one,
/// so changing or removing any event breaks the chain from that point on.
public struct AuditEvent: Sendable, Equatable {
    public var seq: Int64
    public var time: Int64
    public var actor: String
    public var authenticated: Bool
    public var action: String
    public var entityType: String
    public var entityID: String
    /// A compact before/after description, as JSON text.
    public var summary: String
    public var requestID: String
    public var prevHash: String
    public var hash: String
    /// How the actor authenticated (JSON: method, token_id, via, principal); empty when not.
    public var auth: String

    public init(
        seq: Int64, time: Int64, actor: String, authenticated: Bool, action: String, entityType: String, entityID: String,
        summary: String, requestID: String, prevHash: String, hash: String, auth: String = ""
    ) {
        self.auth = auth
        self.seq = seq
        self.time = time
        self.actor = actor
        self.authenticated = authenticated
        self.action = action
        self.entityType = entityType
        self.entityID = entityID
        self.summary = summary
        self.requestID = requestID
        self.prevHash = prevHash
        self.hash = hash
    }

    /// The exact bytes the hash covers: every field but the hash, in a fixed order. `auth` is
    /// appended only when set, so events written before it existed keep their hashes.
    public var canonicalBytes: [UInt8] {
        var fields: [JSONValue] = [
            .int(seq), .int(time), .string(actor), .bool(authenticated), .string(action), .string(entityType),
            .string(entityID), .string(summary), .string(requestID), .string(prevHash),
        ]
        if !auth.isEmpty { fields.append(.string(auth)) }
        return JSONValue.array(fields).serialized()
    }

    public var json: JSONValue {
        let base: JSONValue = [
            "seq": .int(seq), "time": .int(time), "actor": .string(actor), "authenticated": .bool(authenticated),
            "action": .string(action), "entity_type": .string(entityType), "entity_id": .string(entityID),
            "summary": (try? JSONValue.parse(summary)) ?? .string(summary), "request_id": .string(requestID),
            "prev_hash": .string(prevHash), "hash": .string(hash),
                ]
        guard case .object(var o) = base else { return base }
        for (k, v) in authFields.members { o[k] = v }
        return .object(o)
    }

    /// `auth_method`, `token_id` and `via` from `auth`, for the event's JSON.
    public var authFields: JSONObject {
        guard !auth.isEmpty, case .object(let o)? = try? JSONValue.parse(auth) else { return JSONObject() }
        var out = JSONObject()
        if let m = o["method"] { out["auth_method"] = m }
        if let t = o["token_id"] { out["token_id"] = t }
        if let v = o["via"] { out["via"] = v }
        return out
    }
}

/// What `verify` found.
public struct AuditVerification: Sendable, Equatable {
    public var ok: Bool
    public var checked: Int64
    /// The first event that does not fit the chain (or where one is missing).
    public var firstBadSeq: Int64?
    public var problem: String?
    /// The last event of a sound chain. Keep it somewhere else: a later `verify` that ends before it
    /// shows that events were cut from the end.
    public var headSeq: Int64?
    public var headHash: String?
    /// How many signed checkpoints the chain was compared with.
    public var checkpoints: Int = 0
    /// How many checked events an authenticated caller wrote, by method (basic, token, oidc,
    /// session); the rest carry a name that was claimed (written with authentication off) or the
    /// system's.
    public var authenticatedByMethod: [String: Int64] = [:]

    public init(ok: Bool, checked: Int64, firstBadSeq: Int64?, problem: String?) {
        self.ok = ok
        self.checked = checked
        self.firstBadSeq = firstBadSeq
        self.problem = problem
    }

    public var json: JSONValue {
        var o = JSONObject([("ok", .bool(ok)), ("checked", .int(checked))])
        if let firstBadSeq { o["first_bad_seq"] = .int(firstBadSeq) }
        if let problem { o["problem"] = .string(problem) }
        if let headSeq { o["head_seq"] = .int(headSeq) }
        if let headHash { o["head_hash"] = .string(headHash) }
        o["checkpoints_checked"] = .int(Int64(checkpoints))
        o["authenticated_events"] = .int(authenticatedByMethod.values.reduce(0, +))
        o["authenticated_by_method"] = .object(JSONObject(authenticatedByMethod.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.int($0.value)) }))
        return .object(o)
    }
}

/// A check a protected alias can require before a move is approved.
public enum ApprovalCheck: Sendable, Equatable {
    /// The version's source run is complete under its experiment's policy (reproducibility feature).
    case runComplete
    /// A reproduction of the source run has the verdict REPRODUCED (reproducibility feature).
    case reproduced
    /// `metric` of the candidate is not worse than the currently aliased version's by more than `margin`.
    case metricNotWorse(metric: String, margin: Double, higherIsBetter: Bool)
    /// A run evaluated the version: a run linked to it (`mlflow.linkedPrompts`, which the client
    /// writes when a prompt is loaded inside a run or evaluated). With a metric, the newest such
    /// run's value must not be worse than that of the newest run that evaluated the version the
    /// alias holds now, by more than `margin`.
    case evaluated(metric: String?, margin: Double, higherIsBetter: Bool)

    public var json: JSONValue {
        switch self {
        case .runComplete: return ["type": "run_complete"]
        case .reproduced: return ["type": "reproduced"]
        case .metricNotWorse(let m, let margin, let higher):
            return ["type": "metric_not_worse", "metric": .string(m), "margin": .double(margin), "higher_is_better": .bool(higher)]
        case .evaluated(let m, let margin, let higher):
            guard let m else { return ["type": "evaluated"] }
            return ["type": "evaluated", "metric": .string(m), "margin": .double(margin), "higher_is_better": .bool(higher)]
        }
    }

    public init(json: JSONValue) throws {
        switch json["type"]?.stringValue {
        case "run_complete": self = .runComplete
        case "reproduced": self = .reproduced
        case "metric_not_worse":
            guard let metric = json["metric"]?.stringValue, !metric.isEmpty else { throw RepriseError.missing("checks[].metric") }
            let (margin, higher) = try Self.comparison(json)
            self = .metricNotWorse(metric: metric, margin: margin, higherIsBetter: higher)
        case "evaluated":
            let metric = json["metric"]?.stringValue
            if let metric, metric.isEmpty { throw RepriseError.invalid("checks[].metric, when given, must name a metric") }
            let (margin, higher) = try Self.comparison(json)
            self = .evaluated(metric: metric, margin: margin, higherIsBetter: higher)
        case let other:
            throw RepriseError.invalid(
                "Unknown check type '\(other ?? "")'. Valid types are 'run_complete', 'reproduced', 'metric_not_worse', 'evaluated'.")
        }
    }

    /// A metric comparison's margin (default 0; negative asks for an improvement) and direction (default higher is better).
    static func comparison(_ json: JSONValue) throws -> (Double, Bool) {
        var margin = 0.0
        switch json["margin"] {
        case .int(let i)?: margin = Double(i)
        case .double(let d)?: margin = d
        case nil: margin = 0
        default: throw RepriseError.invalid("checks[].margin must be a number")
        }
        guard margin.isFinite else { throw RepriseError.invalid("checks[].margin must be a finite number") }
        var higher = true
        if case .bool(let b)? = json["higher_is_better"] { higher = b }
        return (margin, higher)
    }
}

/// Which aliases of a model (or of every model, for `model == "*"`) are protected, and how moves
/// are approved.
public struct AliasPolicy: Sendable, Equatable {
    public var model: String
    public var alias: String
    public var requiredApprovals: Int
    public var approvers: [String]
    public var checks: [ApprovalCheck]
    /// Whether a rollback needs approval like any other move.
    public var rollbackRequiresApproval: Bool
    /// Changing or deleting this policy itself opens an approval request (kind `policy_change`)
    /// that the policy's own approvers decide, so no single manager can lower the bar.
    public var selfChangeRequiresApproval: Bool

    public init(model: String, alias: String, requiredApprovals: Int, approvers: [String], checks: [ApprovalCheck], rollbackRequiresApproval: Bool, selfChangeRequiresApproval: Bool = false) {
        self.selfChangeRequiresApproval = selfChangeRequiresApproval
        self.model = model
        self.alias = alias
        self.requiredApprovals = requiredApprovals
        self.approvers = approvers
        self.checks = checks
        self.rollbackRequiresApproval = rollbackRequiresApproval
    }

    public var json: JSONValue {
        [
            "model": .string(model), "alias": .string(alias), "required_approvals": .int(Int64(requiredApprovals)),
            "approvers": .array(approvers.map(JSONValue.string)), "checks": .array(checks.map(\.json)),
            "rollback_requires_approval": .bool(rollbackRequiresApproval),
            "self_change_requires_approval": .bool(selfChangeRequiresApproval),
        ]
    }

    /// Whether the writer of `context` may vote under this approver list: anyone when the list is
    /// empty, else a named user or a member of a named `group:<name>`.
    /// How an approver list names a group: `group:<name>`.
    public static let groupPrefix = "group:"
    /// How an approver list keeps a deleted user or group: `deleted:<name>#<id>`, which no one
    /// matches (user names cannot start with it).
    public static let deletedPrefix = "deleted:"

    public static func departed(_ name: String, id: Int64) -> String { "\(deletedPrefix)\(name)#\(id)" }

    public static func isApprover(_ approvers: [String], _ context: WriteContext) -> Bool {
        if approvers.isEmpty { return true }
        for a in approvers {
            if a.hasPrefix(deletedPrefix) { continue }
            if a.hasPrefix(groupPrefix) {
                if context.groups.contains(String(a.dropFirst(groupPrefix.count))) { return true }
            } else if a == context.actor {
                return true
            }
        }
        return false
    }
}

public enum ApprovalState: String, Sendable {
    case open, approved, rejected, cancelled
}

/// A request to move a protected alias.
public struct ApprovalRequest: Sendable, Equatable {
    public struct Vote: Sendable, Equatable {
        public var approver: String
        public var decision: String
        public var rationale: String
        public var time: Int64
        public init(approver: String, decision: String, rationale: String, time: Int64) {
            self.approver = approver
            self.decision = decision
            self.rationale = rationale
            self.time = time
        }
        public var json: JSONValue {
            ["approver": .string(approver), "decision": .string(decision), "rationale": .string(rationale), "time": .int(time)]
        }
    }

    public var id: String
    public var model: String
    public var alias: String
    public var targetVersion: Int64
    public var previousVersion: Int64?
    public var kind: String  // "move" or "rollback"
    public var requester: String
    public var rationale: String
    public var state: ApprovalState
    public var requiredApprovals: Int
    public var approvers: [String]
    public var checks: [ApprovalCheck]
    public var votes: [Vote]
    public var createdTime: Int64
    public var updatedTime: Int64
    public var resolution: String

    public init(
        id: String, model: String, alias: String, targetVersion: Int64, previousVersion: Int64?, kind: String, requester: String,
        rationale: String, state: ApprovalState, requiredApprovals: Int, approvers: [String], checks: [ApprovalCheck],
        votes: [Vote], createdTime: Int64, updatedTime: Int64, resolution: String
    ) {
        self.id = id
        self.model = model
        self.alias = alias
        self.targetVersion = targetVersion
        self.previousVersion = previousVersion
        self.kind = kind
        self.requester = requester
        self.rationale = rationale
        self.state = state
        self.requiredApprovals = requiredApprovals
        self.approvers = approvers
        self.checks = checks
        self.votes = votes
        self.createdTime = createdTime
        self.updatedTime = updatedTime
        self.resolution = resolution
    }

    public var json: JSONValue {
        var o = JSONObject([
            ("id", .string(id)), ("model", .string(model)), ("alias", .string(alias)),
            ("target_version", .string(String(targetVersion))), ("kind", .string(kind)), ("requester", .string(requester)),
            ("rationale", .string(rationale)), ("state", .string(state.rawValue)),
            ("required_approvals", .int(Int64(requiredApprovals))), ("approvers", .array(approvers.map(JSONValue.string))),
            ("checks", .array(checks.map(\.json))), ("votes", .array(votes.map(\.json))), ("created_time", .int(createdTime)),
            ("updated_time", .int(updatedTime)),
        ])
        if let previousVersion { o["previous_version"] = .string(String(previousVersion)) }
        if !resolution.isEmpty { o["resolution"] = .string(resolution) }
        return .object(o)
    }
}

/// Reprise's governance beside the MLflow protocol: alias policies, approvals, the audit trail.
public protocol GovernanceStore: Sendable {
    /// Sets a policy; returns an open request instead when the current policy requires approval
    /// for changes to itself.
    @discardableResult func setAliasPolicy(_ policy: AliasPolicy) async throws -> ApprovalRequest?
    /// Deletes a policy, or opens a request as `setAliasPolicy` does.
    @discardableResult func deleteAliasPolicy(model: String, alias: String) async throws -> ApprovalRequest?
    func aliasPolicies(model: String?) async throws -> [AliasPolicy]

    /// Opens a request to move a protected alias (or moves an unprotected one directly and returns nil).
    func requestAliasMove(model: String, alias: String, version: Int64, rationale: String) async throws -> ApprovalRequest?
    func approvalRequest(id: String) async throws -> ApprovalRequest
    func approvalRequests(model: String?, state: ApprovalState?) async throws -> [ApprovalRequest]
    /// Records a vote; when the rule is met and the checks pass, the alias moves in the same transaction.
    func vote(requestID: String, approve: Bool, rationale: String) async throws -> ApprovalRequest
    func cancel(requestID: String, rationale: String) async throws -> ApprovalRequest
    /// Moves an alias back to the version it pointed at before its last move.
    func rollback(model: String, alias: String, rationale: String) async throws -> ApprovalRequest?
    /// The versions an alias has pointed at, newest first.
    func aliasHistory(model: String, alias: String) async throws -> [(version: Int64, time: Int64, actor: String, requestID: String)]

    func auditEvents(entityType: String?, entityID: String?, afterSeq: Int64, limit: Int) async throws -> [AuditEvent]
    /// Verifies the chain and compares it with the signed checkpoints kept outside the database,
    /// plus `checkpoints` supplied by the caller (from an export kept elsewhere).
    func verifyAudit(checkpoints: [AuditCheckpoint]) async throws -> AuditVerification
    /// A signed checkpoint of the chain's current head (appended to the checkpoint file if it moved).
    func checkpointAudit() async throws -> AuditCheckpoint?
}

/// A signed statement that the audit chain's event `seq` had hash `hash` at `time`.
public struct AuditCheckpoint: Sendable, Equatable {
    public var seq: Int64
    public var hash: String
    public var time: Int64
    public var signature: String

    public var json: JSONValue {
        ["seq": .int(seq), "hash": .string(hash), "time": .int(time), "signature": .string(signature)]
    }

    /// Reads `{seq, hash, time, signature}` (or `{"checkpoint": {…}}`, as an export's last line has it).
    public init?(json: JSONValue?) {
        guard var o = json else { return nil }
        if let inner = o["checkpoint"] { o = inner }
        guard case .int(let seq)? = o["seq"], case .string(let hash)? = o["hash"], case .int(let time)? = o["time"],
            case .string(let signature)? = o["signature"]
        else { return nil }
        self.init(seq: seq, hash: hash, time: time, signature: signature)
    }

    public init(seq: Int64, hash: String, time: Int64, signature: String) {
        self.seq = seq
        self.hash = hash
        self.time = time
        self.signature = signature
    }
}

extension GovernanceStore {
    /// Verifies the chain against the checkpoints the store keeps itself.
    public func verifyAudit() async throws -> AuditVerification { try await verifyAudit(checkpoints: []) }
}
