import RepriseCore
import Testing

/// Governance behaviour every backend must show: protected aliases, approvals, rollback, sealing
/// and the audit chain.
public struct GovernanceConformance: Sendable {
    public typealias Store = any TrackingStore & RegistryStore & GovernanceStore
    let make: @Sendable () async throws -> Store

    /// - Parameter make: returns a new, empty, migrated store each time it is called.
    public init(make: @escaping @Sendable () async throws -> Store) { self.make = make }

    /// Runs `body` as `actor`.
    public static func `as`<T>(_ actor: String, _ body: () async throws -> T) async rethrows -> T {
        try await WriteContext.$current.withValue(WriteContext(actor: actor, authenticated: false, requestID: "req-of-\(actor)")) {
            try await body()
        }
    }

    static func error(_ body: () async throws -> Void) async -> RepriseError? {
        do {
            try await body()
            return nil
        } catch let e as RepriseError {
            return e
        } catch {
            return RepriseError(.internalError, "\(error)")
        }
    }

    /// A model with versions 1…n, each from its own finished run whose metric `auc` is `aucs[i]`.
    func model(_ s: Store, _ name: String, aucs: [Double]) async throws {
        _ = try await s.createRegisteredModel(name: name, tags: [], description: nil, userID: "")
        for auc in aucs {
            let run = try await s.createRun(CreateRunInput(experimentID: "0", userID: "u", runName: nil, startTime: 1, tags: []))
            try await s.logBatch(
                runID: run.info.runID, metrics: [Metric(key: "auc", value: auc, timestamp: 1)], params: [], tags: [], conflictStyle: .batch)
            _ = try await s.createModelVersion(
                CreateModelVersionInput(
                    name: name, source: "runs:/\(run.info.runID)/model", runID: run.info.runID, tags: [], runLink: nil,
                    description: nil, modelID: nil))
        }
    }

    public func protectedAliasNeedsApprovals() async throws {
        let s = try await make()
        try await model(s, "fraud", aucs: [0.80, 0.85, 0.90])
        try await s.setAlias(name: "fraud", alias: "production", version: 1)  // not protected yet
        try await s.setAliasPolicy(
            AliasPolicy(model: "fraud", alias: "production", requiredApprovals: 2, approvers: ["alice", "bob", "carol"], checks: [], rollbackRequiresApproval: true))
        // Through the MLflow endpoint: refused, a request is opened and named, the alias stays.
        let refused = await Self.error { try await Self.as("dave") { try await s.setAlias(name: "fraud", alias: "production", version: 2) } }
        #expect(refused?.code == .permissionDenied)
        let open = try await s.approvalRequests(model: "fraud", state: .open)
        #expect(open.count == 1)
        let request = try #require(open.first)
        #expect(refused?.message.contains(request.id) == true)
        #expect(request.requester == "dave" && request.targetVersion == 2 && request.previousVersion == 1)
        #expect(try await s.versionByAlias(name: "fraud", alias: "production").version == 1)
        // No self-approval, only named approvers, one vote each, N-of-M.
        #expect(await Self.error { _ = try await Self.as("dave") { try await s.vote(requestID: request.id, approve: true, rationale: "mine") } }?.code == .permissionDenied)
        #expect(await Self.error { _ = try await Self.as("eve") { try await s.vote(requestID: request.id, approve: true, rationale: "x") } }?.code == .permissionDenied)
        #expect(await Self.error { _ = try await Self.as("alice") { try await s.vote(requestID: request.id, approve: true, rationale: "") } }?.code == .invalidParameterValue)
        let once = try await Self.as("alice") { try await s.vote(requestID: request.id, approve: true, rationale: "metrics look right") }
        #expect(once.state == .open)
        #expect(try await s.versionByAlias(name: "fraud", alias: "production").version == 1)
        #expect(await Self.error { _ = try await Self.as("alice") { try await s.vote(requestID: request.id, approve: true, rationale: "again") } } != nil)
        let done = try await Self.as("bob") { try await s.vote(requestID: request.id, approve: true, rationale: "agreed") }
        #expect(done.state == .approved)
        #expect(done.votes.map(\.approver) == ["alice", "bob"])
        #expect(try await s.versionByAlias(name: "fraud", alias: "production").version == 2)
        // A resolved request takes no more votes.
        #expect(await Self.error { _ = try await Self.as("carol") { try await s.vote(requestID: request.id, approve: true, rationale: "late") } } != nil)

        // Rejected requests change nothing; cancelled ones neither.
        let second = try #require(try await Self.as("dave") { try await s.requestAliasMove(model: "fraud", alias: "production", version: 3, rationale: "better auc") })
        let rejected = try await Self.as("carol") { try await s.vote(requestID: second.id, approve: false, rationale: "not validated") }
        #expect(rejected.state == .rejected)
        #expect(try await s.versionByAlias(name: "fraud", alias: "production").version == 2)
        let third = try #require(try await Self.as("dave") { try await s.requestAliasMove(model: "fraud", alias: "production", version: 3, rationale: "retry") })
        #expect(await Self.error { _ = try await Self.as("eve") { try await s.cancel(requestID: third.id, rationale: "") } }?.code == .permissionDenied)
        #expect(try await Self.as("dave") { try await s.cancel(requestID: third.id, rationale: "withdrawn") }.state == .cancelled)
        #expect(try await s.versionByAlias(name: "fraud", alias: "production").version == 2)

        // Protected aliases cannot be deleted, nor the version they point at.
        #expect(await Self.error { try await s.deleteAlias(name: "fraud", alias: "production") }?.code == .permissionDenied)
        #expect(await Self.error { try await s.deleteModelVersion(name: "fraud", version: 2) }?.code == .permissionDenied)
        #expect(await Self.error { try await s.deleteRegisteredModel(name: "fraud") }?.code == .permissionDenied)

        // Rollback goes back to the previous version, through approval when the policy says so.
        let rollback = try #require(try await Self.as("dave") { try await s.rollback(model: "fraud", alias: "production", rationale: "incident 42") })
        #expect(rollback.kind == "rollback" && rollback.targetVersion == 1)
        _ = try await Self.as("alice") { try await s.vote(requestID: rollback.id, approve: true, rationale: "ok") }
        _ = try await Self.as("carol") { try await s.vote(requestID: rollback.id, approve: true, rationale: "ok") }
        #expect(try await s.versionByAlias(name: "fraud", alias: "production").version == 1)
        #expect(try await s.aliasHistory(model: "fraud", alias: "production").map(\.version) == [1, 2, 1])
        #expect(try await s.aliasHistory(model: "fraud", alias: "production").first?.requestID == rollback.id)
    }

    public func serverWidePolicyAndChecks() async throws {
        let s = try await make()
        try await model(s, "churn", aucs: [0.90, 0.80, 0.895])
        try await s.setAliasPolicy(
            AliasPolicy(
                model: "*", alias: "champion", requiredApprovals: 1, approvers: [],
                checks: [.metricNotWorse(metric: "auc", margin: 0.01, higherIsBetter: true)], rollbackRequiresApproval: false))
        let first = try #require(try await Self.as("ann") { try await s.requestAliasMove(model: "churn", alias: "champion", version: 1, rationale: "first") })
        _ = try await Self.as("ben") { try await s.vote(requestID: first.id, approve: true, rationale: "ok") }
        #expect(try await s.versionByAlias(name: "churn", alias: "champion").version == 1)
        // Version 2 is worse by 0.10 > 0.01: approval is refused and nothing moves.
        let worse = try #require(try await Self.as("ann") { try await s.requestAliasMove(model: "churn", alias: "champion", version: 2, rationale: "cheaper") })
        let refused = await Self.error { _ = try await Self.as("ben") { try await s.vote(requestID: worse.id, approve: true, rationale: "ok") } }
        #expect(refused?.message.contains("metric 'auc'") == true)
        #expect(try await s.approvalRequest(id: worse.id).state == .open)
        #expect(try await s.versionByAlias(name: "churn", alias: "champion").version == 1)
        // Version 3 is within the margin.
        let close = try #require(try await Self.as("ann") { try await s.requestAliasMove(model: "churn", alias: "champion", version: 3, rationale: "fresher data") })
        _ = try await Self.as("ben") { try await s.vote(requestID: close.id, approve: true, rationale: "ok") }
        #expect(try await s.versionByAlias(name: "churn", alias: "champion").version == 3)
        // This policy lets rollbacks through directly.
        #expect(try await s.rollback(model: "churn", alias: "champion", rationale: "revert") == nil)
        #expect(try await s.versionByAlias(name: "churn", alias: "champion").version == 1)
        // Unprotected aliases still move directly.
        #expect(try await s.requestAliasMove(model: "churn", alias: "staging", version: 2, rationale: "try it") == nil)
        #expect(try await s.versionByAlias(name: "churn", alias: "staging").version == 2)
        // The reproduced check fails while no reproduction of the source run has been recorded.
        try await s.setAliasPolicy(AliasPolicy(model: "churn", alias: "gold", requiredApprovals: 1, approvers: [], checks: [.reproduced], rollbackRequiresApproval: true))
        let gold = try #require(try await Self.as("ann") { try await s.requestAliasMove(model: "churn", alias: "gold", version: 1, rationale: "r") })
        #expect(await Self.error { _ = try await Self.as("ben") { try await s.vote(requestID: gold.id, approve: true, rationale: "ok") } } != nil)
        #expect(await Self.error {
            try await s.setAliasPolicy(AliasPolicy(model: "churn", alias: "x", requiredApprovals: 3, approvers: ["a"], checks: [], rollbackRequiresApproval: true))
        }?.code == .invalidParameterValue)
    }

    public func sealedRuns() async throws {
        let s = try await make()
        _ = try await s.createRegisteredModel(name: "m", tags: [], description: nil, userID: "")
        let run = try await s.createRun(CreateRunInput(experimentID: "0", userID: "u", runName: "r", startTime: 1, tags: []))
        let id = run.info.runID
        _ = try await s.createModelVersion(
            CreateModelVersionInput(name: "m", source: "runs:/\(id)/model", runID: id, tags: [], runLink: nil, description: nil, modelID: nil))
        // Still running: the run can finish its work (the stock client logs after registering).
        try await s.logBatch(runID: id, metrics: [Metric(key: "late", value: 1, timestamp: 1)], params: [], tags: [], conflictStyle: .single)
        _ = try await s.updateRun(id: id, status: .finished, endTime: 2, runName: nil)
        // Finished and registered: sealed.
        for refused in [
            { try await s.logBatch(runID: id, metrics: [Metric(key: "m", value: 1, timestamp: 1)], params: [], tags: [], conflictStyle: .single) },
            { try await s.logBatch(runID: id, metrics: [], params: [KeyValue("p", "1")], tags: [], conflictStyle: .single) },
            { try await s.logBatch(runID: id, metrics: [], params: [], tags: [KeyValue("team", "x")], conflictStyle: .single) },
            { try await s.deleteTag(runID: id, key: "mlflow.runName") },
            { try await s.deleteRun(id: id) },
            { _ = try await s.updateRun(id: id, status: .failed, endTime: nil, runName: nil) },
        ] as [@Sendable () async throws -> Void] {
            let e = await Self.error(refused)
            #expect(e?.code == .permissionDenied)
            #expect(e?.message.contains("sealed") == true)
        }
        // Notes stay writable.
        try await s.logBatch(runID: id, metrics: [], params: [], tags: [KeyValue("mlflow.note.content", "why")], conflictStyle: .single)
        #expect(try await s.getRun(id: id).tags.contains(KeyValue("mlflow.note.content", "why")))
        // Deleting the version unseals the run.
        try await s.deleteModelVersion(name: "m", version: 1)
        try await s.logBatch(runID: id, metrics: [], params: [], tags: [KeyValue("team", "x")], conflictStyle: .single)
    }

    /// Every write appends an event with its actor; the chain verifies; queries by entity work.
    /// - Parameter tamper: runs raw SQL against the store's database, as an attacker with file access would.
    public func auditChain(tamper: @Sendable (Store, String) async throws -> Void) async throws {
        let s = try await make()
        let exp = try await Self.as("alice") { try await s.createExperiment(name: "audited", artifactLocation: nil, tags: []) }
        let run = try await Self.as("alice") { try await s.createRun(CreateRunInput(experimentID: exp, userID: "alice", runName: "r", startTime: 1, tags: [])) }
        try await Self.as("bob") {
            try await s.logBatch(runID: run.info.runID, metrics: [Metric(key: "m", value: 1, timestamp: 1)], params: [KeyValue("p", "1")], tags: [], conflictStyle: .batch)
        }
        // A refused write leaves no event.
        _ = try? await s.logBatch(runID: run.info.runID, metrics: [], params: [KeyValue("p", "2")], tags: [], conflictStyle: .batch)
        try await model(s, "audited-model", aucs: [0.5])
        try await Self.as("carol") { try await s.setAlias(name: "audited-model", alias: "prod", version: 1) }
        // Names that share the prefix are other models, whatever sorts next to `name/` and `name@`.
        for other in ["audited-model-b", "audited-model0", "audited-modelA", "audited-model."] { try await model(s, other, aucs: [0.5]) }

        let events = try await s.auditEvents(entityType: nil, entityID: nil, afterSeq: 0, limit: 1000)
        #expect(events.map(\.seq) == Array(1...Int64(events.count)))
        #expect(events.first?.action == "experiment.create" && events.first?.actor == "alice")
        #expect(events.first?.authenticated == false && events.first?.requestID == "req-of-alice")
        #expect(events.contains { $0.action == "run.log" && $0.actor == "bob" && $0.entityID == run.info.runID })
        #expect(events.filter { $0.action == "run.log" && $0.entityID == run.info.runID }.count == 1)
        for (a, b) in zip(events, events.dropFirst()) { #expect(b.prevHash == a.hash) }
        let modelEvents = try await s.auditEvents(entityType: nil, entityID: "audited-model", afterSeq: 0, limit: 100)
        #expect(modelEvents.map(\.action) == ["registered_model.create", "model_version.create", "alias.move"])
        #expect(modelEvents.last?.actor == "carol")
        let ok = try await s.verifyAudit()
        #expect(ok.ok && ok.checked == Int64(events.count) && ok.headHash == events.last?.hash)

        try await tamper(s, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 3")
        var broken = try await s.verifyAudit()
        #expect(!broken.ok && broken.firstBadSeq == 3 && broken.checked == 2)
        #expect(broken.problem?.contains("altered") == true)
        try await tamper(s, "UPDATE audit_events SET actor = '\(events[2].actor)' WHERE seq = 3")
        #expect(try await s.verifyAudit().ok)
        try await tamper(s, "DELETE FROM audit_events WHERE seq = 4")
        broken = try await s.verifyAudit()
        #expect(!broken.ok && broken.firstBadSeq == 4)
        #expect(broken.problem?.contains("missing") == true)
    }
}
