import RepriseCore
import Testing

/// The model registry behaviour every backend must show.
public struct RegistryConformance: Sendable {
    public typealias Store = any TrackingStore & RegistryStore
    let make: @Sendable () async throws -> Store

    /// - Parameter make: returns a new, empty, migrated store each time it is called.
    public init(make: @escaping @Sendable () async throws -> Store) { self.make = make }

    func code(_ body: () async throws -> Void) async -> RepriseError.Code? {
        await StoreConformance.code(of: body)
    }

    /// A run with a logged model, as `log_model` leaves them.
    func modelSource(_ s: Store) async throws -> (run: Run, model: LoggedModel) {
        let run = try await s.createRun(CreateRunInput(experimentID: "0", userID: "u", runName: "train", startTime: 1, tags: []))
        let model = try await s.createLoggedModel(
            CreateLoggedModelInput(experimentID: "0", name: "model", modelType: nil, sourceRunID: run.info.runID, params: [], tags: []))
        return (run, model)
    }

    public func registeredModels() async throws {
        let s = try await make()
        let m = try await s.createRegisteredModel(name: "fraud", tags: [KeyValue("team", "risk")], description: "d", userID: "alice")
        #expect(m.name == "fraud" && m.description == "d" && m.tags == [KeyValue("team", "risk")])
        #expect(await code { _ = try await s.createRegisteredModel(name: "fraud", tags: [], description: nil, userID: "") } == .resourceAlreadyExists)
        for bad in ["a/b", "a:b", " "] {
            #expect(await code { _ = try await s.createRegisteredModel(name: bad, tags: [], description: nil, userID: "") } != nil, "\(bad)")
        }
        #expect(await code { _ = try await s.getRegisteredModel(name: "nope") } == .resourceDoesNotExist)
        _ = try await s.updateRegisteredModel(name: "fraud", description: "new")
        #expect(try await s.getRegisteredModel(name: "fraud").description == "new")
        try await s.setRegisteredModelTag(name: "fraud", tag: KeyValue("k", "v"))
        try await s.deleteRegisteredModelTag(name: "fraud", key: "team")
        #expect(try await s.getRegisteredModel(name: "fraud").tags == [KeyValue("k", "v")])

        let (run, model) = try await modelSource(s)
        let v1 = try await s.createModelVersion(
            CreateModelVersionInput(name: "fraud", source: "models:/\(model.modelID)", runID: nil, tags: [], runLink: nil, description: nil, modelID: model.modelID))
        #expect(v1.version == 1 && v1.runID == run.info.runID && v1.status == "READY" && v1.currentStage == "None")
        #expect(v1.storageLocation == model.artifactURI)
        try await s.setAlias(name: "fraud", alias: "champion", version: 1)
        _ = try await s.createRegisteredModel(name: "other", tags: [], description: nil, userID: "")
        #expect(await code { _ = try await s.renameRegisteredModel(name: "fraud", newName: "other") } == .resourceAlreadyExists)
        let renamed = try await s.renameRegisteredModel(name: "fraud", newName: "fraud2")
        #expect(renamed.aliases.map(\.0) == ["champion"])
        #expect(try await s.getModelVersion(name: "fraud2", version: 1).aliases == ["champion"])
        try await s.deleteRegisteredModel(name: "fraud2")
        #expect(await code { _ = try await s.getModelVersion(name: "fraud2", version: 1) } == .resourceDoesNotExist)
        // The logged model remembers the versions registered from it.
        let tagged = try await s.getLoggedModel(id: model.modelID, allowDeleted: false)
        #expect(tagged.tags.first { $0.key == "mlflow.modelVersions" }?.value == #"[{"name": "fraud", "version": 1}]"#, "as Python's json.dumps spells it")
    }

    public func versionsStagesAndAliases() async throws {
        let s = try await make()
        _ = try await s.createRegisteredModel(name: "m", tags: [], description: nil, userID: "")
        let (run, _) = try await modelSource(s)
        func create(_ source: String, runID: String? = nil) async throws -> ModelVersion {
            try await s.createModelVersion(
                CreateModelVersionInput(name: "m", source: source, runID: runID, tags: [], runLink: nil, description: nil, modelID: nil))
        }
        let v1 = try await create("runs:/\(run.info.runID)/model", runID: run.info.runID)
        #expect(await code { _ = try await create("runs:/\(run.info.runID)/model") } == .invalidParameterValue)
        #expect(await code { _ = try await create(run.info.artifactURI + "/model") } == .invalidParameterValue)
        #expect(v1.storageLocation == run.info.artifactURI + "/model")
        let v2 = try await create(run.info.artifactURI + "/model", runID: run.info.runID)
        let v3 = try await create("s3://bucket/path")
        #expect([v1.version, v2.version, v3.version] == [1, 2, 3])
        #expect(await code { _ = try await create("/tmp/model") } == .invalidParameterValue)
        #expect(await code { _ = try await create("mlflow-artifacts:/0/x/../../etc") } == .invalidParameterValue)
        #expect(await code { _ = try await create("s3://b/%2e%2e/x") } == .invalidParameterValue)
        #expect(await code { _ = try await create("runs:/\(run.info.runID)/model", runID: "someotherrun") } == .invalidParameterValue)

        _ = try await s.transitionStage(name: "m", version: 1, stage: .production, archiveExisting: false)
        _ = try await s.transitionStage(name: "m", version: 2, stage: .production, archiveExisting: true)
        #expect(try await s.getModelVersion(name: "m", version: 1).currentStage == "Archived")
        #expect(try await s.latestVersions(name: "m", stages: [.production]).map(\.version) == [2])
        #expect(try await s.latestVersions(name: "m", stages: []).map(\.version) == [1, 2, 3])
        #expect(await code { _ = try await s.transitionStage(name: "m", version: 3, stage: .none, archiveExisting: true) } == .invalidParameterValue)
        #expect(throws: RepriseError.self) { try ModelStage(wire: "prod") }
        #expect(try ModelStage(wire: "staging") == .staging)

        try await s.setAlias(name: "m", alias: "champion", version: 1)
        try await s.setAlias(name: "m", alias: "champion", version: 2)
        #expect(try await s.versionByAlias(name: "m", alias: "champion").version == 2)
        #expect(try await s.versionByAlias(name: "m", alias: "LATEST").version == 3)
        for reserved in ["latest", "v1", "V22", "bad alias"] {
            #expect(await code { try await s.setAlias(name: "m", alias: reserved, version: 1) } == .invalidParameterValue, "\(reserved)")
        }
        #expect(await code { try await s.setAlias(name: "m", alias: "x", version: 99) } == .resourceDoesNotExist)
        #expect(await code { _ = try await s.versionByAlias(name: "m", alias: "nope") } == .invalidParameterValue)
        // Deleting a version hides it, removes its aliases, and its number is never reused.
        try await s.deleteModelVersion(name: "m", version: 2)
        #expect(await code { _ = try await s.versionByAlias(name: "m", alias: "champion") } == .invalidParameterValue)
        #expect(await code { _ = try await s.getModelVersion(name: "m", version: 2) } == .resourceDoesNotExist)
        try await s.deleteModelVersion(name: "m", version: 3)
        #expect(try await create("s3://bucket/again").version == 4)
        try await s.deleteAlias(name: "m", alias: "never-set")

        try await s.setModelVersionTag(name: "m", version: 1, tag: KeyValue("k", "v"))
        #expect(try await s.getModelVersion(name: "m", version: 1).tags == [KeyValue("k", "v")])
        try await s.deleteModelVersionTag(name: "m", version: 1, key: "k")
        #expect(try await s.getModelVersion(name: "m", version: 1).tags.isEmpty)
    }

    public func registrySearch() async throws {
        let s = try await make()
        for name in ["alpha", "Beta", "gamma", "prompt-x"] {
            _ = try await s.createRegisteredModel(
                name: name, tags: name == "prompt-x" ? [KeyValue("mlflow.prompt.is_prompt", "true")] : [KeyValue("kind", name.lowercased())],
                description: nil, userID: "")
            _ = try await s.createModelVersion(
                CreateModelVersionInput(name: name, source: "s3://b/\(name)", runID: "run-\(name)", tags: [], runLink: nil, description: nil, modelID: nil))
        }
        func names(_ filter: String?, _ order: [String] = [], max: Int? = nil, token: String? = nil) async throws -> Page<RegisteredModel> {
            try await s.searchRegisteredModels(RegisteredModelSearchQuery(filter: filter, orderBy: order, maxResults: max, pageToken: token))
        }
        let promptFilter = "tag.`mlflow.prompt.is_prompt` != 'true'"
        #expect(try await names(promptFilter).items.map(\.name) == ["Beta", "alpha", "gamma"])
        #expect(try await names("name ILIKE 'b%' AND \(promptFilter)").items.map(\.name) == ["Beta"])
        #expect(try await names("name LIKE 'b%'").items.isEmpty)
        #expect(try await names("name IN ('alpha', 'gamma')", ["name DESC"]).items.map(\.name) == ["gamma", "alpha"])
        #expect(try await names("tags.kind = 'beta'").items.map(\.name) == ["Beta"])
        // `!=` on a tag matches only models that have the tag with another value; prompts stay hidden
        // unless asked for.
        #expect(try await names("tags.kind != 'beta'").items.map(\.name) == ["alpha", "gamma"])
        #expect(try await names(nil).items.map(\.name) == ["Beta", "alpha", "gamma"])
        #expect(try await names("tag.`mlflow.prompt.is_prompt` = 'true'").items.map(\.name) == ["prompt-x"])
        let first = try await names(promptFilter, max: 2)
        #expect(first.items.map(\.name) == ["Beta", "alpha"])
        let rest = try await names(promptFilter, max: 2, token: PageToken.encode(offset: try #require(first.nextOffset)))
        #expect(rest.items.map(\.name) == ["gamma"] && rest.nextOffset == nil)
        #expect(throws: RepriseError.self) { try RegisteredModelSearchQuery(filter: nil, orderBy: [], maxResults: 1001, pageToken: nil) }
        #expect(throws: RepriseError.self) { try RegisteredModelSearchQuery(filter: "description = 'x'", orderBy: [], maxResults: nil, pageToken: nil) }

        func versions(_ filter: String?, _ order: [String] = []) async throws -> [String] {
            try await s.searchModelVersions(ModelVersionSearchQuery(filter: filter, orderBy: order, maxResults: nil, pageToken: nil))
                .items.map { "\($0.name)/\($0.version)" }
        }
        _ = try await s.createModelVersion(
            CreateModelVersionInput(name: "alpha", source: "s3://b/alpha2", runID: "run-2", tags: [KeyValue("t", "1")], runLink: nil, description: nil, modelID: nil))
        #expect(try await versions("name = 'alpha'", ["version_number ASC"]) == ["alpha/1", "alpha/2"])
        #expect(try await versions("name = 'alpha' AND version_number > 1") == ["alpha/2"])
        #expect(try await versions("run_id = 'run-gamma'") == ["gamma/1"])
        #expect(try await versions("tags.t = '1'") == ["alpha/2"])
        #expect(try await versions(nil).count == 4)  // the prompt's version is hidden
        #expect(try await versions(nil).first == "alpha/2")  // last updated first
    }
}
