import RepriseCore
import Testing

/// Each entity read back from the JSON it is served as is the entity itself (the decoders are the
/// inverse of `json`), through serialized text as a server sends it, and what MLflow spells
/// differently (int64 as strings, NaN and ±inf as strings) reads the same.
@Suite("Wire decoding")
struct WireDecodingTests {
    func reparsed(_ j: JSONValue) throws -> JSONValue { try JSONValue.parse(j.jsonString) }

    @Test func runsRoundTrip() throws {
        let run = Run(
            info: RunInfo(
                runID: "r1", experimentID: "3", runName: "n", userID: "ana", status: .failed, startTime: 10, endTime: 20,
                artifactURI: "mlflow-artifacts:/3/r1/artifacts", lifecycleStage: .deleted),
            metrics: [
                Metric(key: "a", value: 0.5, timestamp: 1, step: 2), Metric(key: "nan", value: .nan, timestamp: 1, step: 0),
                Metric(key: "inf", value: -.infinity, timestamp: 1, step: 0),
            ],
            params: [KeyValue("p", "1")], tags: [KeyValue("t", "v")],
            datasetInputs: [
                DatasetInput(
                    tags: [KeyValue("mlflow.data.context", "train")],
                    dataset: Dataset(name: "d", digest: "x", sourceType: "local", source: "{}", schema: "{\"a\":1}", profile: nil))
            ],
            modelInputs: ["m-in"], modelOutputs: [ModelOutput(modelID: "m-out", step: 4)])
        #expect(try Run(wire: reparsed(run.json)) == run)
    }

    @Test func registryAndWebhooksRoundTrip() throws {
        let version = ModelVersion(
            name: "m", version: 7, creationTime: 1, lastUpdatedTime: 2, description: "d", userID: "u", currentStage: "Staging",
            source: "models:/m-1", runID: "r", runLink: "", status: "READY", statusMessage: "", modelID: "m-1", storageLocation: "models:/m-1",
            tags: [KeyValue("k", "v")], aliases: ["prod"])
        #expect(try ModelVersion(wire: reparsed(version.json())) == version)
        let model = RegisteredModel(
            name: "m", creationTime: 1, lastUpdatedTime: 2, description: "x", userID: "u", latestVersions: [], tags: [KeyValue("a", "b")],
            aliases: [("prod", 7)])
        #expect(try RegisteredModel(wire: reparsed(model.json)) == model)
        let hook = Webhook(
            id: "w", name: "n", description: "d", url: "https://h/x", events: [WebhookEvent(entity: "model_version", action: "created")],
            status: .disabled, creationTime: 3, lastUpdatedTime: 4)
        #expect(try Webhook(wire: reparsed(hook.json)) == hook)
        let logged = LoggedModel(
            modelID: "m-1", experimentID: "3", name: "model", creationTime: 5, lastUpdatedTime: 6, artifactURI: "a", status: .ready,
            statusMessage: nil, modelType: "t", sourceRunID: "r", lifecycleStage: .active, tags: [KeyValue("k", "v")], params: [KeyValue("p", "1")],
            metrics: [Metric(key: "acc", value: 0.9, timestamp: 7, step: 1, runID: "r")])
        #expect(try LoggedModel(wire: reparsed(logged.json)) == logged)
        let experiment = Experiment(
            experimentID: "3", name: "e", artifactLocation: "mlflow-artifacts:/3", lifecycleStage: .active, creationTime: 1, lastUpdateTime: 2,
            tags: [KeyValue("t", "1")])
        #expect(try Experiment(wire: reparsed(experiment.json)) == experiment)
    }

    @Test func mlflowSpellings() throws {
        let m = try Metric(wire: JSONValue.parse(#"{"key":"k","value":"Infinity","timestamp":"1700000000000","step":"3"}"#))
        #expect(m.value == .infinity && m.timestamp == 1_700_000_000_000 && m.step == 3)
        #expect(try Metric(wire: JSONValue.parse(#"{"key":"k","value":"NaN","timestamp":1}"#)).value.isNaN)
        #expect(throws: WireDecodingError.self) { try Metric(wire: JSONValue.parse(#"{"key":"k"}"#)) }
        #expect(throws: WireDecodingError.self) { try Run(wire: JSONValue.parse(#"{"info":{"experiment_id":"1"}}"#)) }
    }
}
