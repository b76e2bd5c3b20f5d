import RepriseCore
import Testing

/// Identity behaviour every backend must show: users, roles (groups), grants and their resolution,
/// tokens, and governance decided on identities rather than names.
public struct IdentityConformance: Sendable {
    public typealias Store = any IdentityStore & TrackingStore & RegistryStore & GovernanceStore
    let make: @Sendable () async throws -> Store

    /// - Parameter make: returns a new, empty, migrated store each time it is called.
    public init(make: @escaping @Sendable () async throws -> Store) { self.make = make }

    static func code(_ body: () async throws -> Void) async -> String? {
        do {
            try await body()
            return nil
        } catch let e as RepriseError {
            return e.code.rawValue
        } catch {
            return "\(error)"
        }
    }

    /// Writes as an authenticated principal.
    /// The levels of the grants that match one resource (exact or `*`) for the user and roles.
    static func matching(_ s: Store, _ userID: Int64, _ roleIDs: [Int64], _ type: ResourceType, _ resource: String) async throws -> [Permission] {
        try await s.grants(ofUser: userID, roleIDs: roleIDs).filter { $0.resourceType == type && ($0.pattern == resource || $0.pattern == "*") }
            .map(\.permission)
    }

    static func `as`<T>(_ user: UserAccount, groups: [String] = [], _ body: () async throws -> T) async rethrows -> T {
        try await WriteContext.$current.withValue(
            WriteContext(
                actor: user.username, authenticated: true, requestID: "req-\(user.username)", principalID: "user:\(user.id)", groups: groups,
                method: "basic")
        ) { try await body() }
    }

    public func usersRolesAndGrants() async throws {
        let s = try await make()
        let alice = try await s.createUser(username: "alice", passwordHash: "h1", isAdmin: false, isService: false, canActAs: false)
        #expect(await Self.code { _ = try await s.createUser(username: "alice", passwordHash: "h", isAdmin: false, isService: false, canActAs: false) } == "RESOURCE_ALREADY_EXISTS")
        #expect(await Self.code { _ = try await s.createUser(username: "", passwordHash: "h", isAdmin: false, isService: false, canActAs: false) } == "INVALID_PARAMETER_VALUE")
        let leads = try await s.createRole(name: "leads", workspace: "default", description: "")
        try await s.assignRole(userID: alice.id, roleID: leads.id)
        #expect(await Self.code { try await s.assignRole(userID: alice.id, roleID: leads.id) } == "RESOURCE_ALREADY_EXISTS")
        #expect(try await s.roles(ofUser: alice.id).map(\.name) == ["leads"])

        // No grant: nothing matches. A role grant and a direct grant both match; `*` matches any id.
        #expect(try await Self.matching(s, alice.id, [leads.id], .experiment, "7").isEmpty)
        _ = try await s.grant(.role(leads.id), .experiment, "*", .read, replace: false)
        _ = try await s.grant(.user(alice.id), .experiment, "7", .edit, replace: false)
        let matched = try await Self.matching(s, alice.id, [leads.id], .experiment, "7")
        #expect(Set(matched) == [.read, .edit])
        #expect(Permission.effective(matched, default: .read) == .edit)
        #expect(await Self.code { _ = try await s.grant(.user(alice.id), .experiment, "7", .read, replace: false) } == "RESOURCE_ALREADY_EXISTS")
        // DENY wins over any grant it meets; a grant never lowers the default (MLflow 3.17).
        _ = try await s.grant(.user(alice.id), .experiment, "8", .deny, replace: false)
        #expect(Permission.effective(try await Self.matching(s, alice.id, [leads.id], .experiment, "8"), default: .read) == .deny)
        #expect(Permission.effective([.read], default: .edit) == .edit)
        #expect(Permission.effective([], default: .noPermissions) == .noPermissions)

        // Model grants follow a rename and go with a delete.
        _ = try await s.grant(.user(alice.id), .registeredModel, "m", .manage, replace: false)
        try await s.moveGrants(type: .registeredModel, from: "m", to: "m2")
        #expect(try await Self.matching(s, alice.id, [], .registeredModel, "m2") == [.manage])
        #expect(try await Self.matching(s, alice.id, [], .registeredModel, "m").isEmpty)
        try await s.moveGrants(type: .registeredModel, from: "m2", to: nil)
        #expect(try await Self.matching(s, alice.id, [], .registeredModel, "m2").isEmpty)

        // Deleting a user removes their memberships and grants; the name can be reused by a new identity.
        try await s.deleteUser(username: "alice")
        #expect(try await s.members(ofRole: leads.id).isEmpty)
        let again = try await s.createUser(username: "alice", passwordHash: "h2", isAdmin: false, isService: false, canActAs: false)
        #expect(again.id != alice.id)
        #expect(try await s.grants(of: .user(again.id)).isEmpty)
    }

    public func tokens() async throws {
        let s = try await make()
        let bob = try await s.createUser(username: "bob", passwordHash: "h", isAdmin: false, isService: false, canActAs: false)
        // Not hex, so no random token id can contain it.
        let secretHash = "sealed-hash-xyz"
        let t = try await s.createToken(userID: bob.id, name: "ci", secretHash: secretHash, expiresTime: nil)
        let (found, hash) = try #require(try await s.token(id: t.id))
        #expect(found.username == "bob" && hash == secretHash && !found.revoked)
        try await s.revokeToken(id: t.id)
        #expect(try await s.token(id: t.id)?.0.revoked == true)
        #expect(await Self.code { try await s.revokeToken(id: t.id) } == "RESOURCE_DOES_NOT_EXIST")
        // Token records never carry the secret's hash in their JSON.
        #expect(!found.json.jsonString.contains(secretHash))
    }

    /// Self-approval and double votes are judged on identities: a second name for the same
    /// principal does not help, and a new user who reuses a deleted user's name is someone else.
    public func governanceOnIdentities() async throws {
        let s = try await make()
        let alice = try await s.createUser(username: "alice", passwordHash: "h", isAdmin: false, isService: false, canActAs: false)
        let carol = try await s.createUser(username: "carol", passwordHash: "h", isAdmin: false, isService: false, canActAs: false)
        let dave = try await s.createUser(username: "dave", passwordHash: "h", isAdmin: false, isService: false, canActAs: false)
        let exp = try await s.createExperiment(name: "e", artifactLocation: nil, tags: [])
        let run = try await s.createRun(CreateRunInput(experimentID: exp, userID: "alice", runName: nil, startTime: 1, tags: []))
        _ = try await s.createRegisteredModel(name: "m", tags: [], description: nil, userID: "alice")
        _ = try await s.createModelVersion(
            CreateModelVersionInput(
                name: "m", source: "runs:/\(run.info.runID)/model", runID: run.info.runID, tags: [], runLink: nil, description: nil,
                modelID: nil))
        try await s.setAliasPolicy(
            AliasPolicy(
                model: "m", alias: "production", requiredApprovals: 2, approvers: ["group:leads"], checks: [],
                rollbackRequiresApproval: true, selfChangeRequiresApproval: true))
        let request = try #require(try await Self.as(alice) { try await s.requestAliasMove(model: "m", alias: "production", version: 1, rationale: "ship") })
        // The requester cannot approve, even in the group and even under another name.
        let aliasOfAlice = WriteContext(actor: "not-alice", authenticated: true, requestID: "r", principalID: "user:\(alice.id)", groups: ["leads"], method: "basic")
        #expect(await Self.code { _ = try await WriteContext.$current.withValue(aliasOfAlice) { try await s.vote(requestID: request.id, approve: true, rationale: "ok") } } == "PERMISSION_DENIED")
        // Someone outside the group cannot vote.
        #expect(await Self.code { _ = try await Self.as(dave) { try await s.vote(requestID: request.id, approve: true, rationale: "ok") } } == "PERMISSION_DENIED")
        _ = try await Self.as(carol, groups: ["leads"]) { try await s.vote(requestID: request.id, approve: true, rationale: "ok") }
        // Carol again, under another name: one identity, one vote.
        let carolRenamed = WriteContext(actor: "carol2", authenticated: true, requestID: "r", principalID: "user:\(carol.id)", groups: ["leads"], method: "basic")
        #expect(await Self.code { _ = try await WriteContext.$current.withValue(carolRenamed) { try await s.vote(requestID: request.id, approve: true, rationale: "again") } } == "INVALID_PARAMETER_VALUE")
        let done = try await Self.as(dave, groups: ["leads"]) { try await s.vote(requestID: request.id, approve: true, rationale: "ok") }
        #expect(done.state == .approved)

        // The policy guards itself: deleting it opens a request that the leads decide.
        let pending = try #require(try await Self.as(alice) { try await s.deleteAliasPolicy(model: "m", alias: "production") })
        #expect(pending.kind == "policy_change")
        #expect(try await s.aliasPolicies(model: "m").count == 1)
        _ = try await Self.as(carol, groups: ["leads"]) { try await s.vote(requestID: pending.id, approve: true, rationale: "agreed") }
        #expect(try await s.aliasPolicies(model: "m").count == 1)
        let applied = try await Self.as(dave, groups: ["leads"]) { try await s.vote(requestID: pending.id, approve: true, rationale: "agreed") }
        #expect(applied.state == .approved)
        #expect(try await s.aliasPolicies(model: "m").isEmpty)

        // Audit events carry who authenticated and how.
        let events = try await s.auditEvents(entityType: "approval_request", entityID: nil, afterSeq: 0, limit: 100)
        #expect(events.allSatisfy { $0.authenticated && $0.auth.contains("\"method\":\"basic\"") })
        #expect(try await s.verifyAudit(checkpoints: []).ok)
    }

    /// Approver lists follow identities: a deleted user's or group's entry matches no one (not a new
    /// account or group that takes the name), without weakening the rule; a renamed group keeps its
    /// place; open requests and the policies pending `policy_change` requests would set follow too.
    public func approversFollowIdentities() async throws {
        let s = try await make()
        let alice = try await s.createUser(username: "alice", passwordHash: "h", isAdmin: false, isService: false, canActAs: false)
        let bob = try await s.createUser(username: "bob", passwordHash: "h", isAdmin: false, isService: false, canActAs: false)
        _ = try await s.createUser(username: "carol", passwordHash: "h", isAdmin: false, isService: false, canActAs: false)
        let leads = try await s.createRole(name: "leads", workspace: "default", description: "")
        #expect(await Self.code { _ = try await s.createUser(username: "group:leads", passwordHash: "h", isAdmin: false, isService: false, canActAs: false) } == "INVALID_PARAMETER_VALUE")
        #expect(await Self.code { _ = try await s.createUser(username: "deleted:bob#2", passwordHash: "h", isAdmin: false, isService: false, canActAs: false) } == "INVALID_PARAMETER_VALUE")
        let exp = try await s.createExperiment(name: "e", artifactLocation: nil, tags: [])
        let run = try await s.createRun(CreateRunInput(experimentID: exp, userID: "alice", runName: nil, startTime: 1, tags: []))
        _ = try await s.createRegisteredModel(name: "m", tags: [], description: nil, userID: "alice")
        for _ in 0..<2 {
            _ = try await s.createModelVersion(
                CreateModelVersionInput(
                    name: "m", source: "runs:/\(run.info.runID)/model", runID: run.info.runID, tags: [], runLink: nil, description: nil,
                    modelID: nil))
        }
        try await s.setAliasPolicy(
            AliasPolicy(
                model: "m", alias: "production", requiredApprovals: 1, approvers: ["bob", "carol", "group:leads"], checks: [],
                rollbackRequiresApproval: true, selfChangeRequiresApproval: false))
        let open = try #require(try await Self.as(alice) { try await s.requestAliasMove(model: "m", alias: "production", version: 1, rationale: "ship") })
        try await s.setAliasPolicy(
            AliasPolicy(
                model: "m", alias: "staging", requiredApprovals: 1, approvers: ["carol"], checks: [], rollbackRequiresApproval: true,
                selfChangeRequiresApproval: true))
        // A pending change of the staging policy that would name bob.
        let pending = try #require(
            try await Self.as(alice) {
                try await s.setAliasPolicy(
                    AliasPolicy(
                        model: "m", alias: "staging", requiredApprovals: 1, approvers: ["bob"], checks: [], rollbackRequiresApproval: true,
                        selfChangeRequiresApproval: true))
            })

        try await s.deleteUser(username: "bob")
        let departed = "deleted:bob#\(bob.id)"
        let production = try #require(try await s.aliasPolicies(model: "m").first { $0.alias == "production" })
        #expect(production.approvers == [departed, "carol", "group:leads"])
        #expect(try await s.approvalRequest(id: open.id).approvers == [departed, "carol", "group:leads"])
        // A new account named bob is not an approver.
        let bob2 = try await s.createUser(username: "bob", passwordHash: "h", isAdmin: false, isService: false, canActAs: false)
        #expect(bob2.id != bob.id)
        #expect(await Self.code { _ = try await Self.as(bob2) { try await s.vote(requestID: open.id, approve: true, rationale: "me") } } == "PERMISSION_DENIED")
        // Once approved, the pending change installs the departed entry, not the name.
        _ = try await Self.as(try #require(try await s.user(named: "carol"))) { try await s.vote(requestID: pending.id, approve: true, rationale: "ok") }
        #expect(try await s.aliasPolicies(model: "m").first { $0.alias == "staging" }?.approvers == [departed])

        // A renamed group keeps its place; a deleted one matches no group of the same name.
        _ = try await s.updateRole(id: leads.id, name: "heads", description: nil)
        #expect(try await s.approvalRequest(id: open.id).approvers == [departed, "carol", "group:heads"])
        try await s.deleteRole(id: leads.id)
        let goneGroup = "deleted:group:heads#\(leads.id)"
        #expect(try await s.aliasPolicies(model: "m").first { $0.alias == "production" }?.approvers == [departed, "carol", goneGroup])
        _ = try await s.createRole(name: "heads", workspace: "default", description: "")
        #expect(await Self.code { _ = try await Self.as(bob2, groups: ["heads"]) { try await s.vote(requestID: open.id, approve: true, rationale: "me") } } == "PERMISSION_DENIED")
        let events = try await s.auditEvents(entityType: "alias_policy", entityID: "m@production", afterSeq: 0, limit: 100)
        #expect(events.filter { $0.action == "alias_policy.approvers" }.count == 3)
        #expect(try await s.verifyAudit(checkpoints: []).ok)
    }
}
