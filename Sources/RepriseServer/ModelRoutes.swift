import Hummingbird
import RepriseCore

extension RepriseAPI {
    func registerLoggedModels() {
        let store = self.store
        route(.post, "/api/2.0/mlflow/logged-models", access: .experiment(.update, .field("experiment_id"))) { [self] call in
            let p = try await call.params()
            if let source = try p.string("source_run_id"), !source.isEmpty, let authorizer,
                let experiment = try await authorizer.existingExperimentID(ofRun: source)
            {
                try await requireCaller(.read, experiment: experiment)
            }
            let model = try await store.createLoggedModel(
                CreateLoggedModelInput(
                    experimentID: try p.requiredString("experiment_id"), name: try p.string("name"),
                    modelType: try p.string("model_type"), sourceRunID: try p.string("source_run_id"),
                    params: try p.keyValues("params"), tags: try p.keyValues("tags")))
            return Self.json(["model": model.json])
        }
        route(.post, "/api/2.0/mlflow/logged-models/search", access: .authenticated) { [self] call in
            let p = try await call.params()
            let order = try p.array("order_by").map { item -> (field: String, ascending: Bool) in
                guard case .object(let o) = item else { throw RepriseError.invalid("Invalid order_by entry.") }
                let op = Params(source: .json(o))
                return (try op.requiredString("field_name"), try op.bool("ascending") ?? true)
            }
            var query = try LoggedModelSearchQuery(
                experimentIDs: try p.stringList("experiment_ids"), filter: try p.string("filter"), orderBy: order,
                maxResults: try p.int64("max_results").map { Int(clamping: $0) }, pageToken: try p.string("page_token"))
            query.datasets = try p.array("datasets").map { item in
                guard case .object(let o) = item else { throw RepriseError.invalid("Invalid datasets entry: expected {dataset_name, dataset_digest?}.") }
                let d = Params(source: .json(o))
                return (try d.requiredString("dataset_name"), try d.string("dataset_digest").flatMap { $0.isEmpty ? nil : $0 })
            }
            let canRead = try await self.callerPredicate(.read, .experiment)
            let page = try await self.readable(
                offset: query.offset, maxResults: query.maxResults,
                fetch: { offset in
                    query.offset = offset
                    return try await store.searchLoggedModels(query)
                },
                readable: { canRead($0.experimentID) })
            var o = JSONObject()
            if !page.items.isEmpty { o["models"] = .array(page.items.map(\.json)) }
            if let next = page.next { o["next_page_token"] = .string(PageToken.encode(offset: next)) }
            return Self.json(.object(o))
        }
        let base = "/api/2.0/mlflow/logged-models/{model_id}"
        let read = Access.experiment(.read, .pathLoggedModel("model_id"))
        let update = Access.experiment(.update, .pathLoggedModel("model_id"))
        route(.get, base, access: read) { call in
            let p = try await call.params()
            let model = try await store.getLoggedModel(id: try call.pathParameter("model_id"), allowDeleted: try p.bool("allow_deleted") ?? false)
            return Self.json(["model": model.json])
        }
        route(.get, base + "/artifacts/directories", access: read) { [self] call in
            let p = try await call.params()
            let model = try await store.getLoggedModel(id: try call.pathParameter("model_id"), allowDeleted: false)
            return try await listUnder(rootURI: model.artifactURI, relative: try p.string("artifact_directory_path") ?? "")
        }
        route(.get, base + "/artifacts/files", access: read) { [self] call in
            let p = try await call.params()
            let model = try await store.getLoggedModel(id: try call.pathParameter("model_id"), allowDeleted: false)
            return try await downloadUnder(rootURI: model.artifactURI, relative: try p.requiredString("artifact_file_path"))
        }
        route(.patch, base, access: update) { call in
            let statusText = try await call.params().requiredString("status")
            guard let status = LoggedModelStatus(wire: statusText) else {
                throw RepriseError.invalid("Invalid logged model status '\(statusText)'.")
            }
            let model = try await store.finalizeLoggedModel(id: try call.pathParameter("model_id"), status: status)
            return Self.json(["model": model.json])
        }
        route(.patch, base + "/tags", access: update) { call in
            try await store.setLoggedModelTags(id: try call.pathParameter("model_id"), tags: try await call.params().keyValues("tags"))
            return Self.json(Self.empty)
        }
        route(.delete, base, access: .experiment(.delete, .pathLoggedModel("model_id"))) { call in
            try await store.deleteLoggedModel(id: try call.pathParameter("model_id"))
            return Self.json(Self.empty)
        }
        route(.delete, base + "/tags/{tag_key}", access: .experiment(.delete, .pathLoggedModel("model_id"))) { call in
            try await store.deleteLoggedModelTag(id: try call.pathParameter("model_id"), key: try call.pathParameter("tag_key"))
            return Self.json(Self.empty)
        }
        route(.post, base + "/params", access: update) { call in
            try await store.logLoggedModelParams(id: try call.pathParameter("model_id"), params: try await call.params().keyValues("params"))
            return Self.json(Self.empty)
        }
    }
}
