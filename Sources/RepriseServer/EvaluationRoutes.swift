import Foundation
import Hummingbird
import RepriseCore

// MLflow 3 GenAI evaluation: evaluation datasets and the scorer registry (`/api/3.0/mlflow/…`).
extension RepriseAPI {
    func evaluationStore() throws -> any EvaluationStore {
        guard let evaluation else { throw RepriseError(.notImplemented, "This server's store does not keep evaluation datasets or scorers.") }
        return evaluation
    }

    /// Who made or changed a dataset: the authenticated caller, or the name the client sent.
    static func evaluationUser(_ sent: String?) -> String {
        if let p = Caller.principal { return p.username }
        return sent ?? ""
    }

    func registerEvaluation() {
        let base = "/api/3.0/mlflow/datasets"
        let dataset = "\(base)/{dataset_id}"
        let read = Access.experiment(.read, .pathEvalDataset("dataset_id"))
        let update = Access.experiment(.update, .pathEvalDataset("dataset_id"))
        route(.post, "\(base)/create", access: .authenticated) { [self] call in
            let p = try await call.params()
            let experiments = try p.stringList("experiment_ids")
            for e in experiments { try await requireCaller(.update, experiment: Authorizer.canonicalExperimentID(e) ?? e) }
            let tags = try EvalDataset.tags(from: try p.raw("tags"))
            let user = Self.evaluationUser(try p.string("created_by") ?? tags.first { $0.key == "mlflow.user" }?.value)
            let created = try await evaluationStore().createEvalDataset(
                name: try p.requiredString("name"), experimentIDs: experiments, tags: tags, user: user)
            return Self.json(["dataset": created.json])
        }
        let search: Handler = { [self] call in
            let p = try await call.params()
            let experiments = try p.stringList("experiment_ids")
            let canRead = try await callerPredicate(.read, .experiment)
            if let denied = experiments.first(where: { !canRead(Authorizer.canonicalExperimentID($0) ?? $0) }) {
                throw RepriseError(.permissionDenied, "Permission denied: you may not read the datasets of experiment \(denied).")
            }
            let query = try EvalDatasetSearchQuery(
                experimentIDs: experiments, filter: try p.string("filter_string"), orderBy: try p.stringList("order_by"),
                maxResults: try p.int64("max_results").map { Int(clamping: $0) }, pageToken: try p.string("page_token"))
            let page = try await evaluationStore().searchEvalDatasets(query)
            let visible = page.items.filter { d in d.experimentIDs.isEmpty || d.experimentIDs.contains(where: canRead) }
            var o = JSONObject()
            if !visible.isEmpty { o["datasets"] = .array(visible.map(\.json)) }
            if let next = page.nextOffset { o["next_page_token"] = .string(PageToken.encode(offset: next)) }
            return Self.json(.object(o))
        }
        route(.post, "\(base)/search", access: .authenticated, search)
        route(.get, "\(base)/search", access: .authenticated, search)
        route(.get, dataset, access: read) { [self] call in
            Self.json(["dataset": try await evaluationStore().getEvalDataset(id: try call.pathParameter("dataset_id")).json])
        }
        route(.delete, dataset, access: .experiment(.delete, .pathEvalDataset("dataset_id"))) { [self] call in
            try await evaluationStore().deleteEvalDataset(id: try call.pathParameter("dataset_id"))
            return Self.json(Self.empty)
        }
        route(.patch, "\(dataset)/tags", access: update) { [self] call in
            let p = try await call.params()
            try await evaluationStore().setEvalDatasetTags(
                id: try call.pathParameter("dataset_id"), tags: try EvalDataset.tags(from: try p.raw("tags")), user: Self.evaluationUser(nil))
            return Self.json(Self.empty)
        }
        route(.delete, "\(dataset)/tags/{key}", access: update) { [self] call in
            try await evaluationStore().deleteEvalDatasetTag(id: try call.pathParameter("dataset_id"), key: try call.pathParameter("key"))
            return Self.json(Self.empty)
        }
        route(.post, "\(dataset)/records", access: update) { [self] call in
            let p = try await call.params()
            let records = try EvalRecord.incoming(try p.raw("records"))
            var sent: String? = nil
            for r in records { if case .string(let u)? = r.tags["mlflow.user"] { sent = u } }
            let (inserted, updated) = try await evaluationStore().mergeEvalRecords(
                datasetID: try call.pathParameter("dataset_id"), records, user: Self.evaluationUser(sent))
            return Self.json(["inserted_count": .int(Int64(inserted)), "updated_count": .int(Int64(updated))])
        }
        route(.get, "\(dataset)/records", access: read) { [self] call in
            let p = try await call.params()
            let max = Int(clamping: try p.int64("max_results") ?? 1000)
            guard max >= 1, max <= 10_000 else { throw RepriseError.invalid("Invalid value \(max) for parameter 'max_results' supplied.") }
            let page = try await evaluationStore().evalRecords(
                datasetID: try call.pathParameter("dataset_id"), offset: try PageToken.decode(try p.string("page_token")), limit: max)
            var o = JSONObject([("records", .string(JSONValue.array(page.items.map(\.json)).pythonDumps))])
            if let next = page.nextOffset { o["next_page_token"] = .string(PageToken.encode(offset: next)) }
            return Self.json(.object(o))
        }
        route(.delete, "\(dataset)/records", access: update) { [self] call in
            let p = try await call.params()
            var ids = try p.stringList("dataset_record_ids")
            if ids.isEmpty { ids = (call.query["dataset_record_ids"] ?? []) }
            if ids.isEmpty { throw RepriseError.missing("dataset_record_ids") }
            let n = try await evaluationStore().deleteEvalRecords(datasetID: try call.pathParameter("dataset_id"), ids: ids)
            return Self.json(["deleted_count": .int(Int64(n))])
        }
        route(.get, "\(dataset)/experiment-ids", access: read) { [self] call in
            let ids = try await evaluationStore().experimentIDs(ofEvalDataset: try call.pathParameter("dataset_id"))
            return Self.json(ids.isEmpty ? Self.empty : ["experiment_ids": .array(ids.map(JSONValue.string))])
        }
        for (suffix, adding) in [("add-experiments", true), ("remove-experiments", false)] {
            route(.post, "\(dataset)/\(suffix)", access: update) { [self] call in
                let p = try await call.params()
                let ids = try p.stringList("experiment_ids")
                for e in ids { try await requireCaller(.update, experiment: Authorizer.canonicalExperimentID(e) ?? e) }
                let d = try await evaluationStore().setEvalDatasetExperiments(
                    id: try call.pathParameter("dataset_id"), add: adding ? ids : [], remove: adding ? [] : ids, user: Self.evaluationUser(nil))
                return Self.json(["dataset": d.json])
            }
        }

        // Scorers: versioned definitions, stored verbatim and never run here.
        let scorers = "/api/3.0/mlflow/scorers"
        route(.post, "\(scorers)/register", access: .experiment(.update, .field("experiment_id"))) { [self] call in
            let p = try await call.params()
            let v = try await evaluationStore().registerScorer(
                experimentID: try p.requiredString("experiment_id"), name: try p.requiredString("name"),
                serialized: try p.requiredString("serialized_scorer"))
            return Self.json(v.registeredJSON)
        }
        route(.get, "\(scorers)/list", access: .experiment(.read, .field("experiment_id"))) { [self] call in
            let list = try await evaluationStore().listScorers(experimentID: try await call.params().requiredString("experiment_id"))
            return Self.json(list.isEmpty ? Self.empty : ["scorers": .array(list.map(\.json))])
        }
        route(.get, "\(scorers)/versions", access: .experiment(.read, .field("experiment_id"))) { [self] call in
            let p = try await call.params()
            let list = try await evaluationStore().scorerVersions(experimentID: try p.requiredString("experiment_id"), name: try p.requiredString("name"))
            return Self.json(["scorers": .array(list.map(\.json))])
        }
        route(.get, "\(scorers)/get", access: .experiment(.read, .field("experiment_id"))) { [self] call in
            let p = try await call.params()
            let v = try await evaluationStore().getScorer(
                experimentID: try p.requiredString("experiment_id"), name: try p.requiredString("name"), version: try p.int64("version"))
            return Self.json(["scorer": v.json])
        }
        route(.delete, "\(scorers)/delete", access: .experiment(.delete, .field("experiment_id"))) { [self] call in
            let p = try await call.params()
            try await evaluationStore().deleteScorer(
                experimentID: try p.requiredString("experiment_id"), name: try p.requiredString("name"), version: try p.int64("version"))
            return Self.json(Self.empty)
        }
        // Online scoring (the server running scorers on incoming traces) is not offered: no configs.
        route(.get, "\(scorers)/online-configs", access: .authenticated) { _ in Self.json(["configs": []]) }
    }
}
