import Hummingbird
import RepriseCore

extension Params {
    /// `version`: a string on the wire (`"1"`), an integer accepted too.
    func version() throws -> Int64 {
        guard let v = try raw("version") else { throw RepriseError.missing("version") }
        switch v {
        case .string(let s):
            if s.isEmpty { throw RepriseError.missing("version") }
            return try Validation.validateVersion(s)
        case .int(let i): return i
        default: throw RepriseError.wrongType("version", v, "Expected a string.")
        }
    }
}

extension RepriseAPI {
    func registerRegistry() {
        let registry = self.registry
        let base = "/api/2.0/mlflow"
        route(.post, "\(base)/registered-models/create", access: .authenticated) { [self] call in
            let p = try await call.params()
            let model = try await registry.createRegisteredModel(
                name: try p.requiredString("name"), tags: try p.keyValues("tags"), description: try p.string("description"),
                userID: "")
            try await grantCreator(.registeredModel, model.name)
            return Self.json(["registered_model": model.json])
        }
        route(.post, "\(base)/registered-models/rename", access: .registeredModel(.update, .field("name"))) { [self] call in
            let p = try await call.params()
            let model = try await registry.renameRegisteredModel(
                name: try p.requiredString("name"), newName: try p.requiredString("new_name"))
            // Grants follow the model to its new name (MLflow's after-request hook).
            if let identities {
                try await identities.moveGrants(type: .registeredModel, from: try p.requiredString("name"), to: model.name)
                grantsChanged()
            }
            return Self.json(["registered_model": model.json])
        }
        route(.patch, "\(base)/registered-models/update", access: .registeredModel(.update, .field("name"))) { call in
            let p = try await call.params()
            let model = try await registry.updateRegisteredModel(
                name: try p.requiredString("name"), description: try p.string("description") ?? "")
            return Self.json(["registered_model": model.json])
        }
        route(.delete, "\(base)/registered-models/delete", access: .registeredModel(.delete, .field("name"))) { [self] call in
            let name = try await call.params().requiredString("name")
            try await registry.deleteRegisteredModel(name: name)
            if let identities {
                try await identities.moveGrants(type: .registeredModel, from: name, to: nil)
                grantsChanged()
            }
            return Self.json(Self.empty)
        }
        route(.get, "\(base)/registered-models/get", access: .registeredModel(.read, .field("name"))) { call in
            let model = try await registry.getRegisteredModel(name: try await call.params().requiredString("name"))
            return Self.json(["registered_model": model.json])
        }
        route(.get, "\(base)/registered-models/search", access: .authenticated) { [self] call in
            let p = try await call.params()
            var query = try RegisteredModelSearchQuery(
                filter: try p.string("filter"), orderBy: try p.stringList("order_by"),
                maxResults: try p.int64("max_results").map { Int(clamping: $0) }, pageToken: try p.string("page_token"))
            let canRead = try await callerPredicate(.read, .registeredModel)
            let page = try await readable(
                offset: query.offset, maxResults: query.maxResults,
                fetch: { offset in
                    query.offset = offset
                    return try await registry.searchRegisteredModels(query)
                },
                readable: { canRead($0.name) })
            var o = JSONObject()
            if !page.items.isEmpty { o["registered_models"] = .array(page.items.map(\.json)) }
            if let next = page.next { o["next_page_token"] = .string(PageToken.encode(offset: next)) }
            return Self.json(.object(o))
        }
        let latest: Handler = { call in
            let p = try await call.params()
            let stages = try p.stringList("stages").map { try ModelStage(wire: $0) }
            let versions = try await registry.latestVersions(name: try p.requiredString("name"), stages: stages)
            if versions.isEmpty { return Self.json(Self.empty) }
            return Self.json(["model_versions": .array(versions.map { $0.json() })])
        }
        route(.post, "\(base)/registered-models/get-latest-versions", access: .registeredModel(.read, .field("name")), latest)
        route(.get, "\(base)/registered-models/get-latest-versions", access: .registeredModel(.read, .field("name")), latest)
        route(.post, "\(base)/registered-models/set-tag", access: .registeredModel(.update, .field("name"))) { call in
            let p = try await call.params()
            try await registry.setRegisteredModelTag(
                name: try p.requiredString("name"), tag: KeyValue(try p.requiredString("key"), try p.string("value") ?? ""))
            return Self.json(Self.empty)
        }
        route(.delete, "\(base)/registered-models/delete-tag", access: .registeredModel(.update, .field("name"))) { call in
            let p = try await call.params()
            try await registry.deleteRegisteredModelTag(name: try p.requiredString("name"), key: try p.requiredString("key"))
            return Self.json(Self.empty)
        }

        route(.post, "\(base)/model-versions/create", access: .registeredModel(.update, .field("name"))) { [self] call in
            let p = try await call.params()
            try await requireReadableSource(source: try p.requiredString("source"), runID: try p.string("run_id"), modelID: try p.string("model_id"))
            let version = try await registry.createModelVersion(
                CreateModelVersionInput(
                    name: try p.requiredString("name"), source: try p.requiredString("source"), runID: try p.string("run_id"),
                    tags: try p.keyValues("tags"), runLink: try p.string("run_link"), description: try p.string("description"),
                    modelID: try p.string("model_id")))
            return Self.json(["model_version": version.json()])
        }
        route(.patch, "\(base)/model-versions/update", access: .registeredModel(.update, .field("name"))) { call in
            let p = try await call.params()
            let v = try await registry.updateModelVersion(
                name: try p.requiredString("name"), version: try p.version(), description: try p.string("description") ?? "")
            return Self.json(["model_version": v.json()])
        }
        route(.post, "\(base)/model-versions/transition-stage", access: .registeredModel(.update, .field("name"))) { call in
            let p = try await call.params()
            let name = try p.requiredString("name")
            let version = try p.version()
            let stage = try ModelStage(wire: try p.requiredString("stage"))
            let v = try await registry.transitionStage(
                name: name, version: version, stage: stage, archiveExisting: try p.bool("archive_existing_versions") ?? false)
            return Self.json(["model_version": v.json()])
        }
        route(.delete, "\(base)/model-versions/delete", access: .registeredModel(.delete, .field("name"))) { call in
            let p = try await call.params()
            try await registry.deleteModelVersion(name: try p.requiredString("name"), version: try p.version())
            return Self.json(Self.empty)
        }
        route(.get, "\(base)/model-versions/get", access: .registeredModel(.read, .field("name"))) { call in
            let p = try await call.params()
            let v = try await registry.getModelVersion(name: try p.requiredString("name"), version: try p.version())
            return Self.json(["model_version": v.json()])
        }
        route(.get, "\(base)/model-versions/search", access: .authenticated) { [self] call in
            let p = try await call.params()
            var query = try ModelVersionSearchQuery(
                filter: try p.string("filter"), orderBy: try p.stringList("order_by"),
                maxResults: try p.int64("max_results").map { Int(clamping: $0) }, pageToken: try p.string("page_token"))
            let canRead = try await callerPredicate(.read, .registeredModel)
            let page = try await readable(
                offset: query.offset, maxResults: query.maxResults,
                fetch: { offset in
                    query.offset = offset
                    return try await registry.searchModelVersions(query)
                },
                readable: { canRead($0.name) })
            var o = JSONObject()
            if !page.items.isEmpty { o["model_versions"] = .array(page.items.map { $0.json() }) }
            if let next = page.next { o["next_page_token"] = .string(PageToken.encode(offset: next)) }
            return Self.json(.object(o))
        }
        route(.get, "\(base)/model-versions/get-download-uri", access: .registeredModel(.read, .field("name"))) { call in
            let p = try await call.params()
            let uri = try await registry.downloadURI(name: try p.requiredString("name"), version: try p.version())
            return Self.json(["artifact_uri": .string(uri)])
        }
        route(.post, "\(base)/model-versions/set-tag", access: .registeredModel(.update, .field("name"))) { call in
            let p = try await call.params()
            try await registry.setModelVersionTag(
                name: try p.requiredString("name"), version: try p.version(),
                tag: KeyValue(try p.requiredString("key"), try p.string("value") ?? ""))
            return Self.json(Self.empty)
        }
        route(.delete, "\(base)/model-versions/delete-tag", access: .registeredModel(.delete, .field("name"))) { call in
            let p = try await call.params()
            try await registry.deleteModelVersionTag(
                name: try p.requiredString("name"), version: try p.version(), key: try p.requiredString("key"))
            return Self.json(Self.empty)
        }
        route(.post, "\(base)/registered-models/alias", access: .registeredModel(.update, .field("name"))) { call in
            let p = try await call.params()
            try await registry.setAlias(
                name: try p.requiredString("name"), alias: try p.requiredString("alias"), version: try p.version())
            return Self.json(Self.empty)
        }
        route(.delete, "\(base)/registered-models/alias", access: .registeredModel(.delete, .field("name"))) { call in
            let p = try await call.params()
            try await registry.deleteAlias(name: try p.requiredString("name"), alias: try p.requiredString("alias"))
            return Self.json(Self.empty)
        }
        route(.get, "\(base)/registered-models/alias", access: .registeredModel(.read, .field("name"))) { call in
            let p = try await call.params()
            let v = try await registry.versionByAlias(name: try p.requiredString("name"), alias: try p.requiredString("alias"))
            return Self.json(["model_version": v.json()])
        }
        route(.get, "/model-versions/get-artifact", access: .registeredModel(.read, .field("name"))) { [self] call in
            let p = try await call.params()
            let relative = try p.requiredString("path")
            _ = try Self.filePath(relative)
            let uri = try await registry.downloadURI(name: try p.requiredString("name"), version: try p.version())
            return try await downloadUnder(rootURI: uri, relative: relative)
        }
    }
}
