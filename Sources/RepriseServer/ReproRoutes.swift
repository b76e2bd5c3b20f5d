import Foundation
import Hummingbird
import RepriseCore

extension RepriseAPI {
    func registerRepro() {
        guard let repro = self.repro else { return }
        let store = self.store
        let p = Self.extensionPrefix

        route(.get, "\(p)/experiments/{experiment_id}/policy", access: .experiment(.read, .pathParameter("experiment_id"))) { call in
            let id = try call.pathParameter("experiment_id")
            guard let policy = try await repro.experimentPolicy(experimentID: id) else {
                throw RepriseError.notFound("Experiment \(id) has no policy.")
            }
            return Self.json(["policy": policy.json])
        }
        route(.put, "\(p)/experiments/{experiment_id}/policy", access: .experiment(.manage, .pathParameter("experiment_id"))) { call in
            let id = try call.pathParameter("experiment_id")
            let q = try await call.params()
            let modeText = try q.string("mode") ?? "soft"
            guard let mode = PolicyMode(rawValue: modeText.lowercased()) else {
                throw RepriseError.invalid("Invalid policy mode '\(modeText)'. Valid modes are strict and soft.")
            }
            let required = try q.stringList("required").map(PassportField.parse)
            let policy = ExperimentPolicy(
                experimentID: id, mode: mode, required: required.reduce(into: [PassportField]()) { if !$0.contains($1) { $0.append($1) } },
                refuseDirty: try q.bool("refuse_dirty") ?? false, refuseDuplicates: try q.bool("refuse_duplicates") ?? false)
            return Self.json(["policy": try await repro.setExperimentPolicy(policy).json])
        }
        route(.delete, "\(p)/experiments/{experiment_id}/policy", access: .experiment(.manage, .pathParameter("experiment_id"))) { call in
            try await repro.deleteExperimentPolicy(experimentID: try call.pathParameter("experiment_id"))
            return Self.json(Self.empty)
        }

        route(.post, "\(p)/reproductions", access: .experiment(.update, .runField("original_run_id"))) { [self] call in
            let q = try await call.params()
            if try q.raw("verdict") != nil {
                throw RepriseError.invalid(
                    "The server computes reproduction verdicts itself: send original_run_id and rerun_run_id (and optional tolerances), or incomplete_reason when no rerun could be made, but not a verdict."
                )
            }
            let original = try await store.getRun(id: try q.requiredString("original_run_id"))
            let clientDetails = try q.raw("details") ?? [:]
            if let reason = try q.string("incomplete_reason"), !reason.isEmpty {
                // A failure to rerun at all (data drift, missing code) can only lower the record.
                guard (try q.string("rerun_run_id") ?? "").isEmpty else {
                    throw RepriseError.invalid("incomplete_reason is for attempts that made no rerun; omit rerun_run_id, or omit the reason to have the rerun judged.")
                }
                let r = try await repro.recordReproduction(
                    originalRunID: original.info.runID, rerunRunID: "", verdict: .incomplete, summary: reason,
                    details: ["judged_by": "server", "reported": clientDetails])
                return Self.json(["reproduction": r.json])
            }
            let rerun = try await store.getRun(id: try q.requiredString("rerun_run_id"))
            try await requireCaller(.read, experiment: rerun.info.experimentID)
            var requested: [Tolerance] = []
            for text in try q.stringList("tolerances") { requested.append(try Tolerance(parsing: text)) }
            let judged = try ReproductionJudge.judge(original: original, rerun: rerun, requested: requested)
            var details = judged.details
            if case .object(var o) = details, clientDetails != [:] {
                o["reported"] = clientDetails
                details = .object(o)
            }
            let r = try await repro.recordReproduction(
                originalRunID: original.info.runID, rerunRunID: rerun.info.runID, verdict: judged.verdict, summary: judged.summary,
                details: details)
            return Self.json(["reproduction": r.json])
        }
        route(.get, "\(p)/reproductions", access: .experiment(.read, .run)) { call in
            let q = try await call.params()
            let list = try await repro.reproductions(runID: try q.requiredString("run_id"))
            return Self.json(["reproductions": .array(list.map(\.json))])
        }
        // The graph crosses experiments and models: nodes the caller may not read are left out,
        // and 403 when the starting entity itself is one of them.
        route(.get, "\(p)/lineage", access: .authenticated) { [self] call in
            let q = try await call.params()
            let graph = try await readableLineage(try await repro.lineage(
                entity: try q.requiredString("entity"), depth: Int(clamping: try q.int64("depth") ?? 10)))
            return Self.json(["lineage": graph.json])
        }
    }
}
