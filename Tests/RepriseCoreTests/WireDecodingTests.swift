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
        #expect(try Run(wire: JSONValue.parse(run.jsonBytes)) == run)
    }

    /// A run's bytes are MLflow's shape, key for key and in order: lists only when they have members,
    /// `end_time` only when set, NaN and infinities as strings, strings escaped.
    @Test func runBytesAreMLflowsShape() throws {
        let bare = Run(
            info: RunInfo(
                runID: "r1", experimentID: "0", runName: "a\"b", userID: "", status: .running, startTime: 10, endTime: nil,
                artifactURI: "mlflow-artifacts:/0/r1/artifacts", lifecycleStage: .active))
        #expect(
            String(decoding: bare.jsonBytes, as: UTF8.self)
                == #"{"info":{"run_uuid":"r1","run_id":"r1","experiment_id":"0","run_name":"a\"b","user_id":"","status":"RUNNING","start_time":10,"artifact_uri":"mlflow-artifacts:/0/r1/artifacts","lifecycle_stage":"active"},"data":{},"inputs":{},"outputs":{}}"#
        )
        var full = bare
        full.info.endTime = 20
        full.metrics = [Metric(key: "a", value: 0.5, timestamp: 1, step: 2), Metric(key: "n", value: .nan, timestamp: 1, step: 0)]
        full.params = [KeyValue("p", "1")]
        full.tags = [KeyValue("t", "line\nbreak")]
        full.datasetInputs = [DatasetInput(tags: [], dataset: Dataset(name: "d", digest: "x", sourceType: "local", source: "{}", schema: nil, profile: nil))]
        full.modelInputs = ["m-in"]
        full.modelOutputs = [ModelOutput(modelID: "m-out", step: 4)]
        #expect(
            String(decoding: full.jsonBytes, as: UTF8.self)
                == #"{"info":{"run_uuid":"r1","run_id":"r1","experiment_id":"0","run_name":"a\"b","user_id":"","status":"RUNNING","start_time":10,"end_time":20,"artifact_uri":"mlflow-artifacts:/0/r1/artifacts","lifecycle_stage":"active"},"data":{"metrics":[{"key":"a","value":0.5,"timestamp":1,"step":2},{"key":"n","value":"NaN","timestamp":1,"step":0}],"params":[{"key":"p","value":"1"}],"tags":[{"key":"t","value":"line\nbreak"}]},"inputs":{"dataset_inputs":[{"dataset":{"name":"d","digest":"x","source_type":"local","source":"{}"}}],"model_inputs":[{"model_id":"m-in"}]},"outputs":{"model_outputs":[{"model_id":"m-out","step":4}]}}"#
        )
        // A key/value pair written as bytes is the same as its tree, escapes included.
        for kv in [KeyValue("k", "v"), KeyValue("q\"", "\u{1}\\é")] {
            var bytes: [UInt8] = []
            kv.writeJSON(to: &bytes)
            #expect(bytes == kv.json.serialized())
        }
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

    /// The identity endpoints' entities, as `reprise users`, `groups`, `tokens` and `whoami` read them.
    @Test func identityRoundTrip() throws {
        let group = RoleListing(
            role: Role(id: 7, name: "ml-leads", workspace: "default", description: "approvers"),
            grants: [
                Grant(id: 3, holder: .role(7), resourceType: .registeredModel, pattern: "churn", permission: .manage),
                Grant(id: 4, holder: .role(7), resourceType: .experiment, pattern: "*", permission: .read),
            ])
        #expect(try RoleListing(wire: reparsed(group.json)) == group)
        var bare = group
        bare.role.description = ""
        bare.grants = []
        #expect(bare.json["description"] == .null)
        #expect(try RoleListing(wire: reparsed(bare.json)) == bare)

        let listed = UserListing(id: 2, username: "ana", isAdmin: false, isService: true, roles: [group, RoleListing(role: Role(id: 9, name: "__user_2__", workspace: "default", description: ""), grants: [])])
        let back = try UserListing(wire: reparsed(listed.json))
        #expect(back == listed && back.groupNames == ["ml-leads"])
        // MLflow's own user objects (users/get, users/create) carry neither field.
        let plain = UserListing(id: 1, username: "admin", isAdmin: true)
        #expect(plain.json.jsonString == #"{"id":1,"username":"admin","is_admin":true}"#)
        #expect(try UserListing(wire: reparsed(plain.json)) == plain)

        #expect(try RoleAssignment(wire: reparsed(RoleAssignment(userID: 5, roleID: 7).json)) == RoleAssignment(userID: 5, roleID: 7))

        let token = AccessToken(id: "tok1", userID: 0, username: "ana", name: "ci", createdTime: 10, expiresTime: nil, lastUsedTime: 12, revoked: true)
        let created = CreatedToken(token: token, secret: "rpt_secret")
        #expect(try CreatedToken(wire: reparsed(created.json)) == created)

        let me = WhoAmI(authenticated: true, authEnabled: true, username: "svc", isService: true, method: "token", groups: ["ml-leads"], tokenID: "tok1")
        #expect(try WhoAmI(wire: reparsed(me.json)) == me)
        let off = WhoAmI(authenticated: false, authEnabled: false, username: "claimed")
        #expect(off.json.jsonString == #"{"authenticated":false,"username":"claimed","auth_enabled":false}"#)
        #expect(try WhoAmI(wire: reparsed(off.json)) == off)

        // A grant the CLI cannot name is refused, not guessed.
        #expect(throws: WireDecodingError.self) {
            try Grant(rolePermission: JSONValue.parse(#"{"id":1,"role_id":2,"resource_type":"cluster","resource_pattern":"*","permission":"READ"}"#))
        }
    }

    /// Reprise's extension entities, as the CLI reads them (`reprise models`, `reproduce`, `policy`, `audit`).
    @Test func governanceAndReproRoundTrip() throws {
        let request = ApprovalRequest(
            id: "ar-1", model: "churn", alias: "production", targetVersion: 3, previousVersion: 2, kind: "move", requester: "ana",
            rationale: "better recall", state: .approved, requiredApprovals: 2, approvers: ["bo", "group:leads"],
            checks: [.runComplete, .metricNotWorse(metric: "acc", margin: 0.01, higherIsBetter: true), .evaluated(metric: nil, margin: 0, higherIsBetter: true)],
            votes: [ApprovalRequest.Vote(approver: "bo", decision: "approve", rationale: "ok", time: 1_700_000_000_123)],
            createdTime: 1_700_000_000_000, updatedTime: 1_700_000_000_123, resolution: "moved")
        #expect(try ApprovalRequest(wire: reparsed(request.json)) == request)
        var first = request
        first.previousVersion = nil
        first.resolution = ""
        first.state = .open
        #expect(try ApprovalRequest(wire: reparsed(first.json)) == first)
        #expect(throws: WireDecodingError.self) { try ApprovalRequest(wire: JSONValue.parse(#"{"id":"x","model":"m","alias":"a","state":"open"}"#)) }
        #expect(throws: WireDecodingError.self) { try ApprovalRequest(wire: JSONValue.parse(#"{"id":"x","model":"m","alias":"a","state":"maybe","target_version":"1"}"#)) }

        let policy = ExperimentPolicy(
            experimentID: "4", mode: .strict, required: [.code, .data], refuseDirty: true, refuseDuplicates: false, updatedTime: 9, updatedBy: "ana")
        #expect(try ExperimentPolicy(wire: reparsed(policy.json)) == policy)

        let rep = Reproduction(
            id: "rp-1", originalRunID: "a", rerunRunID: "b", verdict: .diverged, summary: "acc outside", details: #"{"metrics":[{"key":"acc"}]}"#,
            time: 5, actor: "ana")
        let back = try Reproduction(wire: reparsed(rep.json))
        #expect(back == rep && back.detailsJSON.wireArray("metrics").first?["key"] == "acc")
        var incomplete = rep
        incomplete.rerunRunID = ""
        incomplete.verdict = .incomplete
        incomplete.details = ""
        #expect(try Reproduction(wire: reparsed(incomplete.json)) == incomplete)

        let event = AuditEvent(
            seq: 7, time: 8, actor: "ana", authenticated: true, action: "alias.move", entityType: "registered_model", entityID: "churn",
            summary: #"{"alias":"production","to":"3"}"#, requestID: "rq", prevHash: "p", hash: "h", auth: #"{"method":"token","token_id":"t1"}"#)
        let e = try AuditEvent(wire: reparsed(event.json))
        #expect(e == event)
        #expect(e.canonicalBytes == event.canonicalBytes, "the hash a client recomputes from what it read is the server's")
    }

    @Test func mlflowSpellings() throws {
        let m = try Metric(wire: JSONValue.parse(#"{"key":"k","value":"Infinity","timestamp":"1700000000000","step":"3"}"#))
        #expect(m.value == .infinity && m.timestamp == 1_700_000_000_000 && m.step == 3)
        #expect(try Metric(wire: JSONValue.parse(#"{"key":"k","value":"NaN","timestamp":1}"#)).value.isNaN)
        #expect(throws: WireDecodingError.self) { try Metric(wire: JSONValue.parse(#"{"key":"k"}"#)) }
        #expect(throws: WireDecodingError.self) { try Run(wire: JSONValue.parse(#"{"info":{"experiment_id":"1"}}"#)) }
    }
}
