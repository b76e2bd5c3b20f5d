import Hummingbird
import RepriseCore

extension RepriseAPI {
    func registerLoggedModels() {
        let store = self.store
        route(.post, "/api/2.0/mlflow/logged-models", access: .experiment(.update, .field("experiment_id"))) { [self] call in
            let p = try await call.params()
            if let source = try p.string("source_run_id"), !source.isEmpty, let authorizer {
                try await requireCaller(.read, experiment: try await authorizer.experimentID(ofRun: source))
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
        let prefix = "/api/2.0/mlflow/logged-models/"
        // {id} | {id}/tags | {id}/tags/{key} | {id}/params | {id}/artifacts/directories | {id}/artifacts/files
        @Sendable func split(_ rest: String) throws -> (String, [String]) {
            let parts = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard let id = parts.first.flatMap({ Validation.percentDecode($0) }), !id.isEmpty else {
                throw RepriseError(.endpointNotFound, "No API endpoint at \(prefix)\(rest).")
            }
            return (id, Array(parts.dropFirst()))
        }
        routePrefix(.get, prefix, access: .experiment(.read, .loggedModelInPath(prefix))) { [self] call in
            let (id, sub) = try split(call.rest)
            let p = try await call.params()
            switch sub {
            case []:
                let model = try await store.getLoggedModel(id: id, allowDeleted: try p.bool("allow_deleted") ?? false)
                return Self.json(["model": model.json])
            case ["artifacts", "directories"]:
                let model = try await store.getLoggedModel(id: id, allowDeleted: false)
                let relative = try p.string("artifact_directory_path") ?? ""
                return try await listUnder(rootURI: model.artifactURI, relative: relative)
            case ["artifacts", "files"]:
                let model = try await store.getLoggedModel(id: id, allowDeleted: false)
                let relative = try p.requiredString("artifact_file_path")
                return try await downloadUnder(rootURI: model.artifactURI, relative: relative)
            default:
                throw RepriseError(.endpointNotFound, "No API endpoint at \(call.path).")
            }
        }
        routePrefix(.patch, prefix, access: .experiment(.update, .loggedModelInPath(prefix))) { call in
            let (id, sub) = try split(call.rest)
            let p = try await call.params()
            switch sub {
            case []:
                let statusText = try p.requiredString("status")
                guard let status = LoggedModelStatus(wire: statusText) else {
                    throw RepriseError.invalid("Invalid logged model status '\(statusText)'.")
                }
                let model = try await store.finalizeLoggedModel(id: id, status: status)
                return Self.json(["model": model.json])
            case ["tags"]:
                try await store.setLoggedModelTags(id: id, tags: try p.keyValues("tags"))
                return Self.json(Self.empty)
            default:
                throw RepriseError(.endpointNotFound, "No API endpoint at \(call.path).")
            }
        }
        routePrefix(.delete, prefix, access: .experiment(.delete, .loggedModelInPath(prefix))) { call in
            let (id, sub) = try split(call.rest)
            switch sub {
            case []:
                try await store.deleteLoggedModel(id: id)
            case let s where s.count == 2 && s[0] == "tags":
                guard let key = Validation.percentDecode(s[1]), !key.isEmpty else { throw RepriseError.missing("tag_key") }
                try await store.deleteLoggedModelTag(id: id, key: key)
            default:
                throw RepriseError(.endpointNotFound, "No API endpoint at \(call.path).")
            }
            return Self.json(Self.empty)
        }
        routePrefix(.post, prefix, access: .experiment(.update, .loggedModelInPath(prefix))) { call in
            let (id, sub) = try split(call.rest)
            guard sub == ["params"] else { throw RepriseError(.endpointNotFound, "No API endpoint at \(call.path).") }
            let p = try await call.params()
            try await store.logLoggedModelParams(id: id, params: try p.keyValues("params"))
            return Self.json(Self.empty)
        }
    }
}
