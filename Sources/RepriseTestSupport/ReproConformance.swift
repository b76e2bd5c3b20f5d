import RepriseCore
import Testing

/// The server side of reproducibility every backend must show: experiment policies (strict and
/// soft), server-owned tags, reproduction verdicts (also on sealed runs), the approval checks that
/// use them, and lineage.
public struct ReproConformance: Sendable {
    public typealias Store = any TrackingStore & RegistryStore & GovernanceStore & ReproStore
    let make: @Sendable () async throws -> Store

    public init(make: @escaping @Sendable () async throws -> Store) { self.make = make }

    static func error(_ body: () async throws -> Void) async -> RepriseError? { await GovernanceConformance.error(body) }

    static let fullPassport: [KeyValue] = [
        KeyValue(PassportTag.commit, "abc123"), KeyValue(PassportTag.dataDigest, "d1"), KeyValue(PassportTag.envDigest, "e1"),
        KeyValue(PassportTag.seed, "7"), KeyValue(PassportTag.command, "[\"python\",\"t.py\"]"), KeyValue(PassportTag.dirty, "false"),
    ]

    public func policies() async throws {
        let s = try await make()
        let exp = try await s.createExperiment(name: "strict", artifactLocation: nil, tags: [])
        #expect(try await s.experimentPolicy(experimentID: exp) == nil)
        let p = try await s.setExperimentPolicy(
            ExperimentPolicy(experimentID: exp, mode: .strict, required: [.code, .data, .environment, .seed, .purpose], refuseDirty: true))
        #expect(p.updatedTime > 0 && p.mode == .strict)
        #expect(try await s.experimentPolicy(experimentID: exp) == p)

        // A plain run misses every field; the error names each one.
        let e = await Self.error { _ = try await s.createRun(CreateRunInput(experimentID: exp, userID: "u", runName: nil, startTime: 1, tags: [])) }
        #expect(e?.code == .invalidParameterValue)
        for field in ["code", "data", "environment", "seed", "purpose"] { #expect(e?.message.contains(field) == true, "\(field)") }
        #expect(e?.message.contains("at creation") == true && e?.message.contains("reprise run") == true)
        // mlflow.source.git.commit satisfies `code`; a dirty tree is refused when the policy says so.
        var tags = Self.fullPassport + [KeyValue(PassportTag.purpose, "p")]
        let ok = try await s.createRun(CreateRunInput(experimentID: exp, userID: "u", runName: nil, startTime: 1, tags: tags))
        #expect(ok.tags.contains(KeyValue(PassportTag.compliant, "true")))
        tags.removeAll { $0.key == PassportTag.dirty }
        tags.append(KeyValue(PassportTag.dirty, "true"))
        let dirty = await Self.error { _ = try await s.createRun(CreateRunInput(experimentID: exp, userID: "u", runName: nil, startTime: 1, tags: tags)) }
        #expect(dirty?.message.contains("clean working tree") == true)

        // Soft: accepted, flagged, searchable; finishing re-judges with datasets counted.
        _ = try await s.setExperimentPolicy(ExperimentPolicy(experimentID: exp, mode: .soft, required: [.data, .seed]))
        let soft = try await s.createRun(CreateRunInput(experimentID: exp, userID: "u", runName: nil, startTime: 1, tags: [KeyValue(PassportTag.seed, "1")]))
        #expect(soft.tags.contains(KeyValue(PassportTag.compliant, "false")))
        #expect(soft.tags.contains(KeyValue(PassportTag.complianceMissing, "data")))
        let flagged = try await s.searchRuns(
            RunSearchQuery(experimentIDs: [exp], filter: "tags.\"reprise.compliant\" = 'false'", orderBy: [], viewType: .activeOnly, maxResults: 100, pageToken: nil))
        #expect(flagged.items.map(\.info.runID) == [soft.info.runID])
        try await s.logInputs(
            runID: soft.info.runID,
            datasets: [DatasetInput(tags: [], dataset: Dataset(name: "train", digest: "d", sourceType: "local", source: "{}", schema: nil, profile: nil))],
            modelIDs: [])
        _ = try await s.updateRun(id: soft.info.runID, status: .finished, endTime: 2, runName: nil)
        let finished = try await s.getRun(id: soft.info.runID)
        #expect(finished.tags.contains(KeyValue(PassportTag.compliant, "true")))
        #expect(!finished.tags.contains { $0.key == PassportTag.complianceMissing })

        // Strict at finish: a run created before the policy became strict cannot finish incomplete,
        // but can still end FAILED.
        let early = try await s.createRun(CreateRunInput(experimentID: exp, userID: "u", runName: nil, startTime: 1, tags: []))
        _ = try await s.setExperimentPolicy(ExperimentPolicy(experimentID: exp, mode: .strict, required: [.seed]))
        let atFinish = await Self.error { _ = try await s.updateRun(id: early.info.runID, status: .finished, endTime: 2, runName: nil) }
        #expect(atFinish?.message.contains("at finish") == true && atFinish?.message.contains("seed") == true)
        #expect(try await s.getRun(id: early.info.runID).info.status == .running, "nothing changed")
        _ = try await s.updateRun(id: early.info.runID, status: .failed, endTime: 2, runName: nil)
        #expect(try await s.getRun(id: early.info.runID).tags.contains(KeyValue(PassportTag.compliant, "false")))

        // Server-owned tags cannot be written by clients.
        for key in [PassportTag.compliant, PassportTag.complianceMissing, PassportTag.verdict] {
            let e1 = await Self.error {
                try await s.logBatch(runID: ok.info.runID, metrics: [], params: [], tags: [KeyValue(key, "true")], conflictStyle: .batch)
            }
            #expect(e1?.code == .invalidParameterValue && e1?.message.contains("reserved") == true)
            #expect(await Self.error { try await s.deleteTag(runID: ok.info.runID, key: key) }?.code == .invalidParameterValue)
            #expect(await Self.error {
                _ = try await s.createRun(CreateRunInput(experimentID: "0", userID: "u", runName: nil, startTime: 1, tags: [KeyValue(key, "x")]))
            }?.code == .invalidParameterValue)
        }
        try await s.deleteExperimentPolicy(experimentID: exp)
        #expect(try await s.experimentPolicy(experimentID: exp) == nil)
        #expect(await Self.error { try await s.deleteExperimentPolicy(experimentID: exp) }?.code == .resourceDoesNotExist)
        let events = try await s.auditEvents(entityType: "experiment", entityID: exp, afterSeq: 0, limit: 100).map(\.action)
        #expect(events.filter { $0 == "experiment.set_policy" }.count == 3 && events.last == "experiment.delete_policy")
    }

    public func reproductionsChecksAndLineage() async throws {
        let s = try await make()
        let exp = try await s.createExperiment(name: "repro", artifactLocation: nil, tags: [])
        let original = try await s.createRun(CreateRunInput(experimentID: exp, userID: "u", runName: "orig", startTime: 1, tags: Self.fullPassport))
        try await s.logInputs(
            runID: original.info.runID,
            datasets: [DatasetInput(tags: [], dataset: Dataset(name: "train", digest: "feedbeef", sourceType: "local", source: "{}", schema: nil, profile: nil))],
            modelIDs: [])
        try await s.logBatch(runID: original.info.runID, metrics: [Metric(key: "auc", value: 0.9, timestamp: 1)], params: [], tags: [], conflictStyle: .batch)
        _ = try await s.updateRun(id: original.info.runID, status: .finished, endTime: 2, runName: nil)
        _ = try await s.createRegisteredModel(name: "m", tags: [], description: nil, userID: "")
        _ = try await s.createModelVersion(
            CreateModelVersionInput(
                name: "m", source: "runs:/\(original.info.runID)/model", runID: original.info.runID, tags: [], runLink: nil, description: nil,
                modelID: nil))
        // The run is now sealed, but a completion tag can be added once, and a verdict can always be recorded.
        try await s.logBatch(
            runID: original.info.runID, metrics: [], params: [], tags: [KeyValue(PassportTag.exitStatus, "0")], conflictStyle: .batch)
        #expect(await Self.error {
            try await s.logBatch(runID: original.info.runID, metrics: [], params: [], tags: [KeyValue(PassportTag.exitStatus, "1")], conflictStyle: .batch)
        }?.code == .permissionDenied, "written once, never replaced")

        // Checks: `reproduced` and `run_complete` gate the alias.
        try await s.setAliasPolicy(
            AliasPolicy(model: "m", alias: "prod", requiredApprovals: 1, approvers: [], checks: [.reproduced, .runComplete], rollbackRequiresApproval: true))
        let req = try #require(try await GovernanceConformance.as("ann") {
            try await s.requestAliasMove(model: "m", alias: "prod", version: 1, rationale: "ship")
        })
        let blocked = await Self.error { _ = try await GovernanceConformance.as("ben") { try await s.vote(requestID: req.id, approve: true, rationale: "ok") } }
        #expect(blocked?.message.contains("reproduced") == true && blocked?.message.contains("run_complete") == true)

        let rerun = try await s.createRun(
            CreateRunInput(experimentID: exp, userID: "u", runName: "rerun", startTime: 3, tags: Self.fullPassport + [KeyValue(PassportTag.reproduces, original.info.runID)]))
        let diverged = try await s.recordReproduction(
            originalRunID: original.info.runID, rerunRunID: rerun.info.runID, verdict: .diverged, summary: "auc 0.9 -> 0.8", details: ["metrics": []])
        #expect(try await s.getRun(id: original.info.runID).tags.contains(KeyValue(PassportTag.verdict, "DIVERGED")))
        #expect(try await s.getRun(id: rerun.info.runID).tags.contains(KeyValue(PassportTag.verdictOf, original.info.runID)))
        _ = try await s.setExperimentPolicy(ExperimentPolicy(experimentID: exp, mode: .soft, required: [.code, .data, .seed]))
        let stillBlocked = await Self.error { _ = try await GovernanceConformance.as("ben") { try await s.vote(requestID: req.id, approve: true, rationale: "ok") } }
        #expect(stillBlocked?.message.contains("DIVERGED") == true && stillBlocked?.message.contains("run_complete") == false)
        let good = try await s.recordReproduction(
            originalRunID: original.info.runID, rerunRunID: rerun.info.runID, verdict: .reproduced, summary: "1 metric within tolerance", details: [:])
        let approved = try await GovernanceConformance.as("ben") { try await s.vote(requestID: req.id, approve: true, rationale: "reproduced") }
        #expect(approved.state == .approved)
        #expect(try await s.reproductions(runID: original.info.runID).map(\.id) == [good.id, diverged.id])
        #expect(try await s.reproductions(runID: rerun.info.runID).count == 2)
        #expect(await Self.error {
            _ = try await s.recordReproduction(originalRunID: "nope", rerunRunID: "", verdict: .incomplete, summary: "", details: [:])
        }?.code == .resourceDoesNotExist)
        #expect(await Self.error {
            _ = try await s.recordReproduction(originalRunID: rerun.info.runID, rerunRunID: rerun.info.runID, verdict: .reproduced, summary: "", details: [:])
        }?.code == .invalidParameterValue)

        // Lineage from the alias: data → run → version → alias, the reproduction one hop away.
        let up = try await s.lineage(entity: "alias:m@prod", depth: 10)
        let keys = Set(up.nodes.map(\.key))
        #expect(keys.isSuperset(of: ["alias:m@prod", "model_version:m/1", "run:\(original.info.runID)", "dataset:feedbeef", "run:\(rerun.info.runID)"]))
        #expect(up.edges.contains(LineageEdge(from: "dataset:feedbeef", to: "run:\(original.info.runID)", relation: "input_of")))
        #expect(up.edges.contains(LineageEdge(from: "run:\(rerun.info.runID)", to: "run:\(original.info.runID)", relation: "reproduces")))
        #expect(up.edges.contains(LineageEdge(from: "model_version:m/1", to: "alias:m@prod", relation: "aliased_as")))
        // From the data: which runs and models used it.
        let down = try await s.lineage(entity: "dataset:feedbeef", depth: 10)
        #expect(Set(down.nodes.map(\.key)).isSuperset(of: ["run:\(original.info.runID)", "model_version:m/1", "alias:m@prod"]))
        #expect(await Self.error { _ = try await s.lineage(entity: "run:nope", depth: 3) }?.code == .resourceDoesNotExist)
        #expect(await Self.error { _ = try await s.lineage(entity: "bogus", depth: 3) }?.code == .invalidParameterValue)
    }
}
